"""The small base every metric family stands on: what a map and a box are, and the one box IoU.

* A map (``cam``) is a finite float array H×W in the same pixel coordinates as the boxes
  (``checked_map``, ``cam.engine.maps``).
* A box is ``safe_io.imagenet_val.Box`` (the one box type) or its corners ``(x1, y1, x2, y2)``.
  Boxes are INCLUSIVE, as in ILSVRC annotations: ``x2`` is the last pixel column inside the box,
  so ``area = (x2 - x1 + 1) * (y2 - y1 + 1)`` and pixel ``(x, y)`` lies in the box iff
  ``x1 <= x <= x2 and y1 <= y <= y2``. Boxes the metrics return follow the same convention.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np

from cam.engine.maps import checked_map
from safe_io.imagenet_val import Box

BoxLike = Union[Box, Sequence[float]]  # the one Box type, or its four corners

__all__ = ["BoxLike", "boxes_array", "box_iou", "checked_map", "iou_matrix", "matching_maps",
           "xyxy"]


def xyxy(box: BoxLike) -> tuple[float, float, float, float]:
    """Duck-type a box: attribute access first (safe_io.imagenet_val.Box), else a 4-sequence."""
    if hasattr(box, "x1"):
        return (float(box.x1), float(box.y1), float(box.x2), float(box.y2))
    x1, y1, x2, y2 = box
    return (float(x1), float(y1), float(x2), float(y2))


def boxes_array(boxes: Iterable[BoxLike]) -> np.ndarray:
    """Boxes as a float (N, 4) array, N may be 0."""
    return np.array([xyxy(b) for b in boxes], dtype=np.float64).reshape(-1, 4)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), inclusive convention."""
    a, b = a[:, None, :], b[None, :, :]

    def extent(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # pixels in [lo, hi], inclusive
        return np.clip(hi - lo + 1, 0, None)

    inter = (extent(np.maximum(a[..., 0], b[..., 0]), np.minimum(a[..., 2], b[..., 2]))
             * extent(np.maximum(a[..., 1], b[..., 1]), np.minimum(a[..., 3], b[..., 3])))
    area_a = extent(a[..., 0], a[..., 2]) * extent(a[..., 1], a[..., 3])
    area_b = extent(b[..., 0], b[..., 2]) * extent(b[..., 1], b[..., 3])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou(a: BoxLike, b: BoxLike) -> float:
    """Intersection over union of two inclusive boxes.

    ``|A ∩ B| / |A ∪ B|`` with areas counted in pixels, ``area = (x2-x1+1)(y2-y1+1)``; so
    ``(0,0,9,9)`` vs ``(5,0,14,9)`` is 50/150 and a single pixel with itself is 1. Degenerate boxes
    (empty union) give 0.
    """
    return float(iou_matrix(boxes_array([a]), boxes_array([b]))[0, 0])


def matching_maps(map_a: np.ndarray, map_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both maps validated by ``checked_map`` and required to have the same shape."""
    a, b = checked_map(map_a), checked_map(map_b)
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape, got {a.shape} and {b.shape}")
    return a, b
