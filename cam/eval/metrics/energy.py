"""Energy: how much of the map's mass lies on the object (and the box mask it counts in)."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .base import BoxLike, boxes_array, checked_map


def box_mask(gt_boxes: Iterable[BoxLike], shape: tuple[int, int]) -> np.ndarray:
    """The ground-truth region as a boolean mask (Quantus' ``s_batch``), the one energy in box
    counts: pixels inside any box, ``x1 <= x <= x2`` on integer pixel coordinates, clipped to
    the map."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    for x1, y1, x2, y2 in boxes_array(gt_boxes):
        c0, c1 = max(int(np.ceil(x1)), 0), min(int(np.floor(x2)), w - 1)
        r0, r1 = max(int(np.ceil(y1)), 0), min(int(np.floor(y2)), h - 1)
        if c0 <= c1 and r0 <= r1:
            mask[r0:r1 + 1, c0:c1 + 1] = True
    return mask


def energy_in_boxes(cam: np.ndarray, gt_boxes: Iterable[BoxLike]) -> float:
    """Energy-based pointing game (Wang et al., CVPRW 2020, Score-CAM §4.2).

    Share of the map's mass inside the UNION of the GT boxes (overlaps counted once):
    ``sum(relu(cam)[inside]) / sum(relu(cam))``. Negative values are clipped to 0 rather than
    min-shifted, so a constant offset does not leak energy outside the boxes. An all-zero (or
    all-negative) map has no energy and gives 0.0.
    """
    m = np.clip(checked_map(cam), 0.0, None)
    total = m.sum()
    if total <= 0:
        return 0.0
    return float(m[box_mask(gt_boxes, m.shape)].sum() / total)
