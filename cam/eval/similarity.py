"""How alike two maps are, and how complex one map is: the measures the sanity checks use
(``sanity``), written from their papers.

- ``ssim``: the structural similarity index of Wang, Bovik, Sheikh & Simoncelli ("Image Quality
  Assessment: From Error Visibility to Structural Similarity", IEEE TIP 13(4), 2004), as they
  define it: local means, variances and covariance under an 11×11 Gaussian window of σ = 1.5,
  K1 = 0.01, K2 = 0.03, averaged over the windows that lie wholly inside the image. Adebayo et
  al. (NeurIPS 2018) and Sixt et al. (ICML 2020) compare saliency maps with it.
- ``histogram_entropy``: the Shannon entropy of a map's values binned into a histogram, the
  "discrete entropy" Hedström et al. (2023) take as a map's complexity for Efficient MPRT.

Spearman's ρ, the third measure, is ``metrics.spearman_rank_correlation`` (one home). Pure numpy;
tests/test_sanity.py checks ``ssim`` against scikit-image's ``structural_similarity`` and the
entropy against ``scipy.stats.entropy``.
"""
from __future__ import annotations

import numpy as np

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
