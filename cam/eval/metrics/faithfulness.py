"""Faithfulness: does the model's score follow the map? Deletion and insertion (Petsiuk et al.,
BMVC 2018, RISE), the one metric family that needs the model, through a caller's ``score_fn``."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .base import checked_map

# RISE (Petsiuk et al. 2018; eclique/RISE ``evaluation.py``) blurs the insertion canvas with
# an 11×11 kernel made from a Gaussian of sigma 5 (``gkern(11, 5)``).
RISE_BLUR_SIZE = 11
RISE_BLUR_SIGMA = 5.0


def _perturbation_curve(score_fn: Callable[[np.ndarray], np.ndarray], rank: np.ndarray,
                        counts: np.ndarray, start: np.ndarray, end: np.ndarray,
                        batch_size: int) -> np.ndarray:
    """Scores of the images that take their ``k`` top-ranked pixels from ``end``, the rest from
    ``start``, for each ``k`` in ``counts``; ``score_fn`` is called on chunks of ``batch_size``."""
    scores = []
    for i in range(0, len(counts), batch_size):
        k = counts[i:i + batch_size]
        swapped = (rank[None] < k[:, None, None])[..., None]
        batch = np.where(swapped, end[None], start[None])
        s = np.asarray(score_fn(batch), dtype=np.float64).reshape(-1)
        if s.shape != (len(k),):
            raise ValueError(f"score_fn returned {s.shape[0]} scores for a batch of {len(k)}")
        scores.append(s)
    return np.concatenate(scores)


def rise_blur_kernel() -> np.ndarray:
    """RISE's blur kernel, made as its ``gkern(11, 5)`` makes it: a centred unit impulse on an
    11×11 grid smoothed by ``scipy.ndimage.gaussian_filter`` with sigma 5 (reflecting edges, so
    the Gaussian's tails fold back into the window and the kernel sums to 1)."""
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((RISE_BLUR_SIZE, RISE_BLUR_SIZE))
    impulse[RISE_BLUR_SIZE // 2, RISE_BLUR_SIZE // 2] = 1.0
    return gaussian_filter(impulse, RISE_BLUR_SIGMA)


def rise_blur(image: np.ndarray, fill: Sequence[float]) -> np.ndarray:
    """RISE's insertion canvas for an H×W×3 image: each channel convolved with
    ``rise_blur_kernel`` as RISE convolves the *normalised* input ``(x - fill) / std``, with
    zero padding. Convolution is linear, so mapping that result back (``· std + fill``) is
    blurring ``image - fill`` with zero padding and adding ``fill``, whatever the std: edge
    pixels are drawn towards the mean colour, as RISE's are towards normalised zero."""
    img = np.asarray(image, dtype=np.float32)
    base = np.asarray(fill, dtype=np.float32).reshape(1, 1, -1)
    kernel = rise_blur_kernel().astype(np.float32)
    blurred = cv2.filter2D(img - base, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return blurred.reshape(img.shape) + base


def deletion_insertion_auc(score_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                           cam: np.ndarray, fill: Sequence[float], steps: int = 16, *,
                           batch_size: int = 32) -> tuple[float, float]:
    """Deletion and insertion AUC (Petsiuk et al., BMVC 2018, "RISE", §4.1; reference code
    eclique/RISE ``evaluation.py``, ``CausalMetric``). Returns ``(del, ins)``.

    ``image`` is the model's input crop, H×W×3 in the [0, 1] RGB space the model's
    normalisation starts from, and ``fill`` that normalisation's mean colour: the pixel value it
    maps to zero. RISE deletes to zero in the normalised space (``torch.zeros_like`` of the
    normalised input), i.e. to the mean colour, not to black, which is an out-of-distribution
    colour that models with different normalisations (Lite's 0.5 grey vs torchvision's ImageNet
    mean) react to differently. Insertion starts from ``rise_blur(image, fill)``, as RISE's
    ``substrate_fn = blur``, and restores pixels into it.

    Pixels are ranked by ``cam`` descending (ties in raster order). For k = 0..steps, the top
    ``round(k/steps · H·W)`` pixels are switched (RISE switches a fixed 224 pixels a step and
    scores every step; ``steps`` trades that resolution for time). ``score_fn(batch[N,H,W,3])
    -> [N]`` scores the target class (its probability, as RISE's softmax output) and is called
    in chunks of ``batch_size``. AUC is the trapezoidal area over the switched fraction in
    [0, 1], as RISE's ``auc``: lower deletion and higher insertion are better. ``cam`` must be
    H×W like ``image`` (the caller resizes).
    """
    img = np.asarray(image, dtype=np.float32)
    m = checked_map(cam)
    if img.ndim != 3 or img.shape[:2] != m.shape:
        raise ValueError(f"image {img.shape} must be H×W×C, H×W equal to the map's {m.shape}")
    colour = np.asarray(fill, dtype=np.float32)
    if colour.shape != (img.shape[2],):
        raise ValueError(f"fill must be one value per channel ({img.shape[2]}), got {colour.shape}")
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    h, w = m.shape
    n = h * w
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-m.ravel(), kind="stable")] = np.arange(n)
    rank = rank.reshape(h, w)
    counts = np.round(np.linspace(0, n, steps + 1)).astype(np.int64)
    deleted = np.broadcast_to(colour, img.shape)
    fractions = counts / n
    deletion = _perturbation_curve(score_fn, rank, counts, img, deleted, batch_size)
    insertion = _perturbation_curve(score_fn, rank, counts, rise_blur(img, colour), img,
                                    batch_size)
    return float(np.trapezoid(deletion, fractions)), float(np.trapezoid(insertion, fractions))


@dataclass(frozen=True)
class Faithfulness:
    """One map's deletion and insertion AUC, raw and over the unperturbed probability ``p0``
    (``None`` where ``p0 <= 0``)."""

    deletion_auc: float
    insertion_auc: float
    deletion_auc_norm: float | None
    insertion_auc_norm: float | None


def normalised_faithfulness(deletion_auc: float, insertion_auc: float,
                            unperturbed_prob: float) -> Faithfulness:
    """Deletion and insertion AUC, raw and divided by the unperturbed probability ``p0`` of the
    explained class (the score of the untouched crop, where both curves start or end).

    A raw deletion AUC rewards a model whose probability starts near zero: its curve cannot fall
    far, so its area is small whatever its map shows. Dividing by ``p0`` measures the area in
    units of the model's own confidence (a map that deletes nothing useful scores about 1 on
    deletion). The scale dependence of these curves is among the weaknesses of DAUC/IAUC that
    Gomez et al. discuss (ICPR 2022, "Metrics for saliency map evaluation of deep learning
    explanation methods"); this normalisation is scalecam's. ``p0 <= 0`` gives ``None`` for the
    normalised values.
    """
    scale = 1.0 / unperturbed_prob if unperturbed_prob > 0 else None
    return Faithfulness(deletion_auc, insertion_auc,
                        deletion_auc * scale if scale is not None else None,
                        insertion_auc * scale if scale is not None else None)
