"""Paired statistics for comparing two models on the same images: percentile-bootstrap intervals
of a mean, paired differences of per-image metrics, and the exact McNemar test.

Pure numpy/scipy and model-agnostic: every function takes per-image values (one number per
image, in the same image order for both models) and returns frozen dataclasses.

Conventions shared by every function here:

* Values are finite floats; a 0/1 outcome may be given as bools or 0/1 numbers.
* ``None`` or NaN marks an image where a metric is undefined. ``paired_difference`` drops such
  pairs (its ``n`` says how many remain); the other functions refuse them, so a caller never gets
  an average silently taken over fewer images than it passed.
* Randomness comes only from ``numpy.random.default_rng(seed)``: the same inputs and seed give
  identical results on every call.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Union

import numpy as np

Values = Union[Sequence[Optional[float]], np.ndarray]

# Bootstrap index matrices are drawn in chunks of at most this many indices (8 bytes each), so
# memory stays bounded (~32 MiB) whatever n_resamples × n is.
_MAX_INDICES_PER_CHUNK = 1 << 22

RESAMPLES = 10_000  # the floor for every bootstrap reported
CONFIDENCE = 0.95
# Fewer paired images than this never make a difference "distinguishable": n images have at
# most C(2n-1, n) distinct bootstrap resamples (126 at n = 5), and a percentile interval from so
# few undercovers badly (Efron & Tibshirani 1993, ch. 13-14, on small samples).
MIN_PAIRED_IMAGES = 10


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` items with its percentile-bootstrap interval ``[low, high]`` at
    ``confidence`` (e.g. 0.95)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of paired 0/1 outcomes: ``a_only`` = #(a=1, b=0), ``b_only`` =
    #(a=0, b=1), and the two-sided p-value."""

    a_only: int
    b_only: int
    p: float


@dataclass(frozen=True)
class PairedDifference:
    """Mean of the per-image differences a − b over the ``n`` images where both are defined, its
    paired percentile-bootstrap interval ``[low, high]`` at ``confidence``, and — for 0/1
    metrics only, else ``None`` — the exact McNemar p-value and the discordant counts
    ``a_only`` = #(a=1, b=0), ``b_only`` = #(a=0, b=1)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float
    p: Optional[float] = None
    a_only: Optional[int] = None
    b_only: Optional[int] = None

    def sentence(self, a_name: str, b_name: str, metric_label: str, *,
                 points: bool = False) -> str:
        """One-sentence summary, e.g. for a 0/1 metric with ``points=True`` (one line)::

            compound − baseline, GT-known Loc: +15.6 points (95 % CI +3.1 to +28.1;
            McNemar p = 0.02, n = 32)

        and for a continuous metric (no p-value)::

            compound − baseline, Energy in box: +0.063 (95 % CI +0.011 to +0.118, n = 32)

        ``points=True`` says the metric is a fraction in [0, 1] (a 0/1 outcome or a rate): the
        difference is shown ×100 in percentage points with one decimal. Otherwise the raw
        difference is shown with three decimals and no unit. Values carry their sign (``+`` or the
        minus sign ``−``); one that rounds to zero is shown unsigned. The p-value is shown with two
        decimals (``p = 0.02``), with three when two would read 0.00 (``p = 0.004``), and as
        ``p < 0.001`` below that. The sentence ends with ``— not distinguishable at this sample
        size`` when the interval contains 0, for a 0/1 metric also when the exact McNemar
        test does not reject equality at 5 % (percentile intervals run narrow at small n, and the
        exact test is the stricter of the two there), and whenever n < ``MIN_PAIRED_IMAGES``.
        """
        scale, decimals, unit = (100.0, 1, " points") if points else (1.0, 3, "")

        def signed(value: float) -> str:
            magnitude = f"{abs(value) * scale:.{decimals}f}"
            if float(magnitude) == 0.0:
                return magnitude
            return ("+" if value > 0 else "−") + magnitude

        level = f"{self.confidence * 100:g} %"
        text = (f"{a_name} − {b_name}, {metric_label}: {signed(self.mean)}{unit} "
                f"({level} CI {signed(self.low)} to {signed(self.high)}")
        if self.p is not None:
            text += f"; McNemar {_format_p(self.p)}, n = {self.n})"
        else:
            text += f", n = {self.n})"
        if not self.distinguishable:
            text += " — not distinguishable at this sample size"
        return text

    @property
    def distinguishable(self) -> bool:
        """The interval excludes 0, for a 0/1 metric McNemar's p is below 0.05, and there are at
        least ``MIN_PAIRED_IMAGES`` images: below that a percentile bootstrap has too few
        distinct resamples to mean anything (one image gives the interval [d, d])."""
        return (self.n >= MIN_PAIRED_IMAGES and not (self.low <= 0.0 <= self.high)
                and (self.p is None or self.p < 0.05))


def _format_p(p: float) -> str:
    """``p = 0.02`` (two decimals), ``p = 0.004`` (three where two read 0.00), ``p < 0.001``."""
    if p < 0.001:
        return "p < 0.001"
    if round(p, 2) >= 0.01:
        return f"p = {p:.2f}"
    return f"p = {p:.3f}"


def _finite_vector(values: Values, what: str) -> np.ndarray:
    """``values`` as a 1-D float array; ``None``, NaN and infinities are refused."""
    v = np.asarray(values, dtype=np.float64)  # None becomes NaN here
    if v.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {v.shape}")
    if np.isnan(v).any():
        raise ValueError(f"{what} contain None or NaN; drop undefined images first")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} contain infinite values")
    return v


def _binary_vector(values: Values, what: str) -> np.ndarray:
    """``values`` as a 1-D bool array; anything other than 0/1/bool is refused."""
    v = _finite_vector(values, what)
    if not np.isin(v, (0.0, 1.0)).all():
        raise ValueError(f"{what} must be 0/1 or bool")
    return v == 1.0


def bootstrap_mean_ci(values: Values, *, n_resamples: int = RESAMPLES,
                      confidence: float = CONFIDENCE, seed: int = 0) -> Interval:
    """Mean of ``values`` with its percentile-bootstrap interval (Efron & Tibshirani 1993, *An
    Introduction to the Bootstrap*, ch. 13).

    Draws ``n_resamples`` resamples of the n items with replacement (indices from
    ``numpy.random.default_rng(seed)``), takes each resample's mean, and returns the empirical
    ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of those B means as
    ``[low, high]``. The quantile is the smallest bootstrap mean whose empirical CDF reaches the
    level (``numpy.quantile(method="inverted_cdf")``), i.e. the (B·α)-th ordered value as in
    Efron & Tibshirani when B·α is an integer — no interpolation between replications.

    Values that are all equal have no spread: ``mean == low == high ==`` that value exactly
    (summing and dividing could otherwise drift by an ulp). Empty input, ``None``/NaN or infinite
    entries, ``n_resamples < 1`` and ``confidence`` outside (0, 1) raise ``ValueError``.
    """
    v = _finite_vector(values, "values")
    n = len(v)
    if n == 0:
        raise ValueError("cannot bootstrap the mean of no values")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if (v == v[0]).all():
        constant = float(v[0])
        return Interval(constant, constant, constant, n, confidence)

    return bootstrap_ci(lambda indices: v[indices].mean(axis=1), n, point=float(v.mean()),
                        n_resamples=n_resamples, confidence=confidence, seed=seed)


def bootstrap_ci(statistic: Callable[[np.ndarray], np.ndarray], n: int, *, point: float,
                 n_resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                 seed: int = 0) -> Interval:
    """Percentile-bootstrap interval of any statistic of n items (Efron & Tibshirani 1993,
    ch. 13), for statistics that are not a plain mean, such as MaxBoxAccV2 (the best threshold
    is chosen once per resample) or a difference of two such statistics on the same images.

    ``statistic(indices)`` maps a ``(B, n)`` matrix of resampled item indices (rows drawn with
    replacement from ``numpy.random.default_rng(seed)``) to the B resampled values; ``point`` is
    its value on the original items. Quantiles as in ``bootstrap_mean_ci``.
    """
    if n < 1:
        raise ValueError("cannot bootstrap a statistic of no items")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    rows_per_chunk = max(1, _MAX_INDICES_PER_CHUNK // n)
    values = np.empty(n_resamples)
    for start in range(0, n_resamples, rows_per_chunk):
        rows = min(rows_per_chunk, n_resamples - start)
        values[start:start + rows] = statistic(rng.integers(0, n, size=(rows, n)))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha], method="inverted_cdf")
    return Interval(float(point), float(low), float(high), n, confidence)


def mcnemar_exact(a: Values, b: Values) -> McNemar:
    """Exact (conditional binomial) McNemar test of paired 0/1 outcomes ``a[i]``, ``b[i]``.

    McNemar (1947), "Note on the sampling error of the difference between correlated proportions
    or percentages", Psychometrika 12:153–157; exact conditional form as in Fagerland, Lydersen &
    Laake (2013), BMC Medical Research Methodology 13:91. With ``a_only`` = #(a=1, b=0),
    ``b_only`` = #(a=0, b=1) and m = a_only + b_only discordant pairs, under H0 (both outcomes
    equally likely to be the one that succeeds) ``a_only ~ Binomial(m, 1/2)``, and

        p = min(1, 2 · P(X <= min(a_only, b_only))),   X ~ Binomial(m, 1/2);  m = 0 gives p = 1.

    Computed exactly with integer binomial coefficients (no chi-square approximation). Fagerland
    et al. note this exact test is conservative (they prefer its mid-p variant). ``a`` and ``b``
    must have the same length and hold only 0/1/bool values, else ``ValueError``.
    """
    x = _binary_vector(a, "a")
    y = _binary_vector(b, "b")
    if len(x) != len(y):
        raise ValueError(f"a has {len(x)} outcomes but b has {len(y)}")
    a_only = int(np.count_nonzero(x & ~y))
    b_only = int(np.count_nonzero(~x & y))
    m = a_only + b_only
    tail = sum(math.comb(m, i) for i in range(min(a_only, b_only) + 1))
    p = min(Fraction(1), Fraction(2 * tail, 2 ** m))
    return McNemar(a_only, b_only, float(p))


def paired_difference(a: Values, b: Values, *, binary: bool = False, n_resamples: int = RESAMPLES,
                      confidence: float = CONFIDENCE, seed: int = 0) -> PairedDifference:
    """Paired comparison of one per-image metric between two models on the same images.

    ``a[i]`` and ``b[i]`` are the metric of models A and B on image i. Pairs where either side is
    ``None`` or NaN are dropped; ``n`` is the number left. Returns the mean of the differences
    ``d_i = a_i - b_i`` and its percentile-bootstrap interval resampling images (the same resampled
    images for a and b, which is ``bootstrap_mean_ci`` of the d_i with the same settings and seed).
    A constant difference c gives ``mean == low == high == c`` exactly.

    With ``binary=True`` the metric is a 0/1 outcome (bools or 0/1; anything else raises
    ``ValueError``): the mean is a difference of proportions, and ``p``, ``a_only``, ``b_only``
    come from ``mcnemar_exact`` on the kept pairs. Unequal lengths, infinite values or no pair
    left raise ``ValueError``.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"a and b must be equal-length 1-D sequences, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) == 0:
        raise ValueError("no image has a value for both models")
    test = mcnemar_exact(x, y) if binary else None
    ci = bootstrap_mean_ci(_finite_vector(x, "a") - _finite_vector(y, "b"),
                           n_resamples=n_resamples, confidence=confidence, seed=seed)
    if test is None:
        return PairedDifference(ci.mean, ci.low, ci.high, ci.n, confidence)
    return PairedDifference(ci.mean, ci.low, ci.high, ci.n, confidence,
                            test.p, test.a_only, test.b_only)
