"""Pointing: is the map's peak on the object?"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .base import BoxLike, boxes_array, checked_map


def pointing_hit(cam: np.ndarray, gt_boxes: Iterable[BoxLike], tolerance: int = 15) -> bool:
    """Pointing game (Zhang et al., ECCV 2016, "Top-down Neural Attention by Excitation Backprop").

    Hit iff the map's maximum ``(x, y)`` lies in some GT box enlarged by ``tolerance`` pixels on
    each side: ``x1 - t <= x <= x2 + t`` and ``y1 - t <= y <= y2 + t`` (a square tolerance;
    TorchRay's implementation uses a Euclidean disc, which differs only near box corners). Tied
    maxima: the first in raster order (``np.argmax``). A constant map points nowhere: a miss.
    """
    m = checked_map(cam)
    if m.max() == m.min():
        return False
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    g = boxes_array(gt_boxes)
    t = tolerance
    inside = (g[:, 0] - t <= x) & (x <= g[:, 2] + t) & (g[:, 1] - t <= y) & (y <= g[:, 3] + t)
    return bool(inside.any())
