"""How alike two maps are, and how complex one map is: map agreement between models and the
sanity checks' similarities, written from their papers.

- ``spearman_rank_correlation``: Spearman's ρ of the pixel values (Adebayo et al., NeurIPS
  2018; Ghorbani, Abid & Zou, AAAI 2019);
- ``top_fraction_iou``: IoU of the two maps' top regions (Ghorbani et al.);
- ``ssim``: the structural similarity index of Wang, Bovik, Sheikh & Simoncelli ("Image Quality
  Assessment: From Error Visibility to Structural Similarity", IEEE TIP 13(4), 2004), as they
  define it: local means, variances and covariance under an 11×11 Gaussian window of σ = 1.5,
  K1 = 0.01, K2 = 0.03, averaged over the windows that lie wholly inside the image. Adebayo et
  al. (NeurIPS 2018) and Sixt et al. (ICML 2020) compare saliency maps with it.
- ``histogram_entropy``: the Shannon entropy of a map's values binned into a histogram, the
  "discrete entropy" Hedström et al. (2023) take as a map's complexity for Efficient MPRT.

Pure numpy; tests check them against ``scipy.stats.spearmanr``, scikit-image's
``structural_similarity`` and ``scipy.stats.entropy``.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .base import matching_maps


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array; tied values share the mean of the ranks they occupy."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group_of = np.cumsum(starts_group) - 1
    first = np.flatnonzero(starts_group)  # 0-based position where each group starts
    past_last = np.r_[first[1:], len(values)]  # ranks first+1 .. past_last
    ranks = np.empty(len(values))
    ranks[order] = ((first + 1 + past_last) / 2.0)[group_of]
    return ranks


def spearman_rank_correlation(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Spearman's rank correlation ρ between the pixel values of two H×W maps (Spearman 1904,
    "The proof and measurement of association between two things", Am. J. Psychol. 15:72–101),
    as used to compare saliency maps by Adebayo et al. (NeurIPS 2018, "Sanity Checks for Saliency
    Maps") and Ghorbani, Abid & Zou (AAAI 2019, "Interpretation of Neural Networks is Fragile").

    ρ is the Pearson correlation of the two maps' pixel ranks, tied pixels getting the mean of the
    ranks they span (as ``scipy.stats.spearmanr``); without ties it equals
    ``1 - 6 Σ d² / (n (n² - 1))`` with d the rank differences. Maps with identical rankings — a
    map and itself, or any strictly increasing transform of it — give exactly 1.0. A constant map
    has no ranking: the result is ``nan``. Shapes must match (``ValueError`` otherwise).
    """
    a, b = matching_maps(map_a, map_b)
    if a.min() == a.max() or b.min() == b.max():
        return float("nan")
    rank_a, rank_b = _average_ranks(a.ravel()), _average_ranks(b.ravel())
    if np.array_equal(rank_a, rank_b):  # exactly 1, whatever order the dot products sum in
        return 1.0
    dev_a, dev_b = rank_a - rank_a.mean(), rank_b - rank_b.mean()
    rho = (dev_a @ dev_b) / np.sqrt((dev_a @ dev_a) * (dev_b @ dev_b))
    return float(np.clip(rho, -1.0, 1.0))


def top_fraction_iou(map_a: np.ndarray, map_b: np.ndarray, fraction: float = 0.2) -> float:
    """IoU of the two maps' top-``fraction`` regions; an IoU variant of the top-k intersection
    Ghorbani, Abid & Zou (AAAI 2019, "Interpretation of Neural Networks is Fragile") use to compare
    saliency maps.

    A map's region is exactly its k = ⌈fraction · H·W⌉ highest pixels, ties broken in raster order
    (stable sort on −value), so both regions have k pixels and ``IoU = |A ∩ B| / (2k − |A ∩ B|)``.
    k is computed on the decimal value of ``fraction`` (0.07 of 100 pixels is 7, not the 8 that
    ⌈0.07 · 100⌉ gives in binary floating point). Identical maps give exactly 1.0. Shapes must
    match and ``0 < fraction <= 1``, else ``ValueError``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    a, b = matching_maps(map_a, map_b)
    k = math.ceil(Fraction(str(fraction)) * a.size)
    top_a = np.argsort(-a.ravel(), kind="stable")[:k]
    top_b = np.argsort(-b.ravel(), kind="stable")[:k]
    shared = len(np.intersect1d(top_a, top_b, assume_unique=True))
    return shared / (2 * k - shared)


SSIM_WINDOW = 11  # Wang et al.'s Gaussian window, 11 × 11 ...
SSIM_SIGMA = 1.5  # ... of standard deviation 1.5 pixels
SSIM_K1, SSIM_K2 = 0.01, 0.03
ENTROPY_BINS = 100  # Hedström et al.'s default number of histogram bins


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
    weights = np.exp(-offsets ** 2 / (2 * SSIM_SIGMA ** 2))
    return weights / weights.sum()


def _local_mean(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Gaussian-weighted mean over every window wholly inside ``image`` (separable, 'valid')."""
    size = len(window)
    rows = np.lib.stride_tricks.sliding_window_view(image, size, axis=0) @ window
    return np.lib.stride_tricks.sliding_window_view(rows, size, axis=1) @ window


def ssim(map_a: np.ndarray, map_b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM of two equally shaped H×W maps (Wang et al. 2004, eq. 13 and §III-C):

        SSIM(x, y) = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))

    with C1 = (K1 L)², C2 = (K2 L)², L = ``data_range``, μ, σ², σxy the Gaussian-weighted local
    moments (population form, as the paper), averaged over all window positions inside the map
    (no padding). Identical maps give exactly 1. Maps smaller than the window are refused."""
    a, b = np.asarray(map_a, dtype=np.float64), np.asarray(map_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two H×W maps of one shape, got {a.shape} and {b.shape}")
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"ssim needs maps of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, "
                         f"got {a.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("ssim: a map contains NaN or infinite values")
    if np.array_equal(a, b):
        return 1.0
    window = _gaussian_window()
    mu_a, mu_b = _local_mean(a, window), _local_mean(b, window)
    var_a = _local_mean(a * a, window) - mu_a ** 2
    var_b = _local_mean(b * b, window) - mu_b ** 2
    cov = _local_mean(a * b, window) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
             / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))
    return float(index.mean())


def histogram_entropy(values: np.ndarray, bins: int = ENTROPY_BINS) -> float:
    """Shannon entropy (nats) of ``values`` binned into ``bins`` equal-width bins spanning their
    own minimum to maximum: −Σ p log p over the non-empty bins. A constant map has one value,
    so entropy 0; the most spread-out map, ``log(bins)``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("histogram_entropy needs a non-empty array of finite values")
    if v.min() == v.max():
        return 0.0
    counts, _ = np.histogram(v, bins=bins)
    p = counts[counts > 0] / v.size
    return float(-(p * np.log(p)).sum())
