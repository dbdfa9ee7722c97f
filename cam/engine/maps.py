"""What a map is to everything that computes, measures or draws one: a finite H×W array,
and its min-max scaling — the one normalisation every display and metric uses."""
from __future__ import annotations

import numpy as np


def checked_map(cam: np.ndarray) -> np.ndarray:
    """Reject maps a metric cannot interpret instead of returning a silently wrong number."""
    m = np.asarray(cam, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"expected a non-empty H×W map, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("map contains NaN or infinite values")
    return m


def minmax(cam: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1]: ``(cam - min) / (max - min)``; a constant map becomes all
    zeros (as wsolevaluation does). The one normalisation every display and metric uses."""
    m = checked_map(cam)
    lo, hi = m.min(), m.max()
    return np.zeros_like(m) if hi == lo else (m - lo) / (hi - lo)
