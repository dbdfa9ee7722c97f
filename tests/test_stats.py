"""Paired statistics (cam.stats) and map agreement (cam.metrics), checked against answers worked out
by hand in the comments or computed by scipy — never by restating the code."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from cam.eval.metrics import spearman_rank_correlation, top_fraction_iou
from cam.eval.stats import (
    PairedDifference,
    bootstrap_ci,
    bootstrap_mean_ci,
    mcnemar_exact,
    paired_difference,
)


def outcomes(a_only: int, b_only: int, both: int = 0, neither: int = 0) -> tuple[list, list]:
    """Paired 0/1 outcomes with the given counts of (1,0), (0,1), (1,1) and (0,0) pairs."""
    a = [1] * a_only + [0] * b_only + [1] * both + [0] * neither
    b = [0] * a_only + [1] * b_only + [1] * both + [0] * neither
    return a, b


# --- bootstrap_mean_ci ---------------------------------------------------------------------------

def test_bootstrap_two_values_spans_both():
    # A resample of [0, 1] has 0, 1 or 2 ones with probabilities 1/4, 1/2, 1/4: its mean is
    # 0, 0.5 or 1. The 2.5 % point lies inside the mass at 0 and the 97.5 % point inside the mass
    # at 1, so the 95 % percentile interval is [0, 1] around the mean 0.5.
    ci = bootstrap_mean_ci([0.0, 1.0])
    assert (ci.mean, ci.low, ci.high, ci.n, ci.confidence) == (0.5, 0.0, 1.0, 2, 0.95)


def test_bootstrap_skewed_binary_values():
    # A resample of [0, 0, 0, 1] has K ~ Binomial(4, 1/4) ones, mean K/4.
    # P(K=0..4) = 81, 108, 54, 12, 1 (/256); CDF = .316, .738, .949, .996, 1.
    # 95 %: 2.5 % point at K=0 (.316 >= .025); 97.5 % point at K=3 (.949 < .975 <= .996) → 0.75.
    ci = bootstrap_mean_ci([0, 0, 0, 1])
    assert (ci.mean, ci.low, ci.high) == (0.25, 0.0, 0.75)
    # 60 %: 20 % point at K=0; 80 % point at K=2 (.738 < .8 <= .949) → 0.5.
    ci = bootstrap_mean_ci([0, 0, 0, 1], confidence=0.6)
    assert (ci.low, ci.high) == (0.0, 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_bounds_are_resample_means_not_interpolations(seed):
    # Efron & Tibshirani's percentile bounds are order statistics of the B resample means. With
    # B = 7 resamples of the 8 items 0..7 every resample mean is (whole number)/8, so both bounds
    # must be too; interpolating between two neighbouring resample means would not be.
    ci = bootstrap_mean_ci(list(range(8)), n_resamples=7, seed=seed)
    assert (ci.low * 8).is_integer() and (ci.high * 8).is_integer()
    assert ci.low < ci.high


def test_bootstrap_is_seeded():
    values = np.random.default_rng(7).normal(size=20)
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    other = bootstrap_mean_ci(values, seed=4)
    assert (other.low, other.high) != (bootstrap_mean_ci(values, seed=3).low,
                                       bootstrap_mean_ci(values, seed=3).high)
    assert other.low < values.mean() < other.high
    assert other.mean == pytest.approx(values.mean(), abs=1e-12)


def test_bootstrap_constant_values_are_exact():
    # sum([0.1] * 3) / 3 is 0.10000000000000002 in floating point; the answer must be 0.1 itself.
    ci = bootstrap_mean_ci([0.1, 0.1, 0.1])
    assert (ci.mean, ci.low, ci.high, ci.n) == (0.1, 0.1, 0.1, 3)
    single = bootstrap_mean_ci([-2.5])
    assert (single.mean, single.low, single.high, single.n) == (-2.5, -2.5, -2.5, 1)


def test_bootstrap_covers_the_true_mean_about_95_percent_of_the_time():
    # 400 simulated samples of n = 30 from N(1, 2²); a 95 % interval should cover the true mean 1
    # in roughly 90-98 % of them. The percentile interval runs a little short at n = 30 (about
    # 93 % over 3000 such samples), and 400 samples add a standard error of about 1.3 points.
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(400):
        ci = bootstrap_mean_ci(rng.normal(1.0, 2.0, size=30), n_resamples=2000, seed=i)
        covered += ci.low <= 1.0 <= ci.high
    assert 0.90 <= covered / 400 <= 0.98


def test_bootstrap_of_many_items_matches_normal_theory():
    # 3000 items × 10 000 resamples are drawn in several chunks of indices; the mean of 3000 draws
    # of N(0, 1) has standard error 1/sqrt(3000) ≈ 0.018, so the 95 % interval is about ±0.036.
    values = np.random.default_rng(5).normal(size=3000)
    ci = bootstrap_mean_ci(values)
    half_width = 1.96 / math.sqrt(3000) * values.std()
    assert ci.low == pytest.approx(values.mean() - half_width, abs=0.006)
    assert ci.high == pytest.approx(values.mean() + half_width, abs=0.006)


@pytest.mark.parametrize("bad, message", [
    ([], "no values"),
    ([1.0, None], "None or NaN"),
    ([1.0, float("nan")], "None or NaN"),
    ([1.0, float("inf")], "infinite"),
    ([[1.0, 2.0]], "one-dimensional"),
])
def test_bootstrap_refuses_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_mean_ci(bad)


@pytest.mark.parametrize("kwargs", [{"n_resamples": 0}, {"confidence": 0.0}, {"confidence": 1.0}])
def test_bootstrap_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError):
        bootstrap_mean_ci([0.0, 1.0], **kwargs)


# --- mcnemar_exact -------------------------------------------------------------------------------

def test_mcnemar_one_against_six():
    # m = 7 discordant pairs, min = 1: P(X <= 1) = (C(7,0) + C(7,1)) / 2^7 = 8/128; p = 16/128.
    a, b = outcomes(a_only=1, b_only=6, both=10, neither=5)
    result = mcnemar_exact(a, b)
    assert (result.a_only, result.b_only) == (1, 6)
    assert result.p == 0.125


def test_mcnemar_zero_against_five():
    # m = 5, min = 0: P(X <= 0) = 1/32; p = 2/32.
    result = mcnemar_exact(*outcomes(a_only=5, b_only=0, both=3))
    assert (result.a_only, result.b_only, result.p) == (5, 0, 0.0625)


@pytest.mark.parametrize("a_only, b_only", [(4, 4), (0, 0)])
def test_mcnemar_balanced_or_no_discordance_is_one(a_only, b_only):
    # Equal counts: 2·P(X <= m/2) > 1, capped at 1. No discordant pair: nothing to test, p = 1.
    assert mcnemar_exact(*outcomes(a_only, b_only, both=2, neither=3)).p == 1.0


def test_mcnemar_accepts_bools():
    assert mcnemar_exact([True, True, False], [False, False, False]).p == 0.5  # 2·(1/4)


@settings(max_examples=60, deadline=None)
@given(a_only=st.integers(0, 60), b_only=st.integers(0, 60), both=st.integers(0, 5))
def test_mcnemar_matches_scipy_binomtest(a_only, b_only, both):
    m = a_only + b_only
    expected = 1.0 if m == 0 else scipy.stats.binomtest(min(a_only, b_only), m, 0.5).pvalue
    assert mcnemar_exact(*outcomes(a_only, b_only, both)).p == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("a, b, message", [
    ([1, 0, 2], [1, 0, 1], "0/1"),
    ([1, 0.5], [1, 0], "0/1"),
    ([1, 0], [1, 0, 1], "2 outcomes but b has 3"),
    ([1, None], [1, 0], "None or NaN"),
])
def test_mcnemar_refuses_bad_outcomes(a, b, message):
    with pytest.raises(ValueError, match=message):
        mcnemar_exact(a, b)


# --- paired_difference ---------------------------------------------------------------------------

def test_paired_constant_difference_is_exact():
    b = [0.25, 1.5, -2.0, 7.75, 0.5]
    a = [x + 3 for x in b]
    d = paired_difference(a, b)
    assert (d.mean, d.low, d.high, d.n) == (3.0, 3.0, 3.0, 5)
    assert (d.p, d.a_only, d.b_only) == (None, None, None)


def test_paired_resamples_images_not_models_separately():
    # a spreads widely across images (sd 10) but b = a - 1 + tiny noise: the per-image differences
    # are 1 ± 0.01, so a paired interval is about ±0.004 around 1. Resampling a and b independently
    # would add the between-image spread (±5) and could not be this narrow.
    rng = np.random.default_rng(11)
    a = rng.normal(0.0, 10.0, size=30)
    b = a - 1.0 + rng.normal(0.0, 0.01, size=30)
    d = paired_difference(a, b)
    assert d.low < d.mean < d.high
    assert d.mean == pytest.approx(1.0, abs=0.01)
    assert d.high - d.low < 0.02


def test_paired_drops_pairs_with_a_missing_side():
    # Pairs 1 (a None), 2 (b None) and 4 (b NaN) go; pairs 0 and 3 remain: differences 1 - 0 and
    # 0 - 0 → mean 0.5.
    a = [1, None, 0, 0, 1]
    b = [0, 1, None, 0, float("nan")]
    d = paired_difference(a, b, binary=True)
    assert (d.n, d.mean, d.a_only, d.b_only) == (2, 0.5, 1, 0)
    assert d.p == 1.0  # one discordant pair: 2 · P(X <= 0) = 2 · 1/2


def test_paired_binary_reports_mcnemar_and_a_difference_of_proportions():
    # 32 images: a alone right on 6, b alone right on 1, both right on 20, neither on 5.
    # Proportions 26/32 and 21/32 → difference 5/32; McNemar p = 2·(1 + 7)/128 = 0.125.
    a, b = outcomes(a_only=6, b_only=1, both=20, neither=5)
    d = paired_difference(a, b, binary=True)
    assert (d.n, d.mean, d.a_only, d.b_only, d.p) == (32, 5 / 32, 6, 1, 0.125)
    assert d.low <= d.mean <= d.high
    # Every resample's difference is a whole number of images out of 32.
    assert (d.low * 32).is_integer() and (d.high * 32).is_integer()


@pytest.mark.parametrize("a, b, kwargs, message", [
    ([1, 0, 2], [1, 0, 1], {"binary": True}, "0/1"),
    ([1, 2], [1, 2, 3], {}, "equal-length"),
    ([None, 1], [1, None], {}, "no image"),
    ([1, float("inf")], [1, 2], {}, "infinite"),
])
def test_paired_refuses_bad_input(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b, **kwargs)


# --- PairedDifference.sentence -------------------------------------------------------------------

def test_sentence_binary_metric_in_points():
    d = PairedDifference(mean=5 / 32, low=1 / 32, high=9 / 32, n=32, confidence=0.95, p=0.02,
                         a_only=6, b_only=1)
    assert d.sentence("compound", "baseline", "GT-known Loc", points=True) == (
        "compound − baseline, GT-known Loc: +15.6 points (95 % CI +3.1 to +28.1; "
        "McNemar p = 0.02, n = 32)")


def test_sentence_binary_metric_the_exact_test_does_not_separate():
    """5 images better, none worse: the percentile interval excludes 0 but the exact McNemar
    p is 2/2^5 = 0.0625, so the sentence does not claim a difference."""
    d = PairedDifference(mean=5 / 32, low=1 / 32, high=9 / 32, n=32, confidence=0.95,
                         p=0.0625, a_only=5, b_only=0)
    assert d.sentence("compound", "baseline", "GT-known Loc", points=True) == (
        "compound − baseline, GT-known Loc: +15.6 points (95 % CI +3.1 to +28.1; "
        "McNemar p = 0.06, n = 32) — not distinguishable at this sample size")


def test_sentence_continuous_metric():
    d = PairedDifference(mean=0.063, low=0.011, high=0.118, n=32, confidence=0.95)
    assert d.sentence("compound", "baseline", "Energy in box") == (
        "compound − baseline, Energy in box: +0.063 (95 % CI +0.011 to +0.118, n = 32)")


def test_sentence_interval_containing_zero():
    d = PairedDifference(mean=-0.021, low=-0.054, high=0.012, n=30, confidence=0.9)
    assert d.sentence("depth", "width", "Energy in box") == (
        "depth − width, Energy in box: −0.021 (90 % CI −0.054 to +0.012, n = 30)"
        " — not distinguishable at this sample size")


@pytest.mark.parametrize("p, shown", [
    (0.13, "p = 0.13"), (0.0096, "p = 0.01"), (0.004, "p = 0.004"), (0.001, "p = 0.001"),
    (0.0004, "p < 0.001"), (1.0, "p = 1.00"),
])
def test_sentence_p_values(p, shown):
    d = PairedDifference(mean=0.25, low=0.125, high=0.375, n=32, confidence=0.95, p=p,
                         a_only=9, b_only=1)
    tail = "" if p < 0.05 else " — not distinguishable at this sample size"
    assert d.sentence("compound", "baseline", "Top-1 Loc", points=True) == (
        f"compound − baseline, Top-1 Loc: +25.0 points (95 % CI +12.5 to +37.5; "
        f"McNemar {shown}, n = 32){tail}")


def test_bootstrap_ci_of_a_statistic_by_hand():
    """The maximum of two items {0, 1}: a resample has max 0 only if both draws are 0
    (probability 1/4), so the 2.5 % quantile is 0 and the 97.5 % quantile is 1."""
    values = np.array([0.0, 1.0])
    interval = bootstrap_ci(lambda idx: values[idx].max(axis=1), 2, point=1.0)
    assert (interval.mean, interval.low, interval.high, interval.n) == (1.0, 0.0, 1.0, 2)
    with pytest.raises(ValueError):
        bootstrap_ci(lambda idx: values[idx].max(axis=1), 0, point=0.0)


def test_sentence_zero_bound_is_unsigned_and_not_distinguishable():
    d = PairedDifference(mean=1 / 32, low=0.0, high=3 / 32, n=32, confidence=0.95, p=1.0,
                         a_only=1, b_only=0)
    assert d.sentence("width", "baseline", "GT-known Loc", points=True) == (
        "width − baseline, GT-known Loc: +3.1 points (95 % CI 0.0 to +9.4; McNemar p = 1.00, "
        "n = 32) — not distinguishable at this sample size")


# --- spearman_rank_correlation -------------------------------------------------------------------

def test_spearman_hand_example():
    # Ranks are the values themselves: a = 1,2,3,4 and b = 1,3,2,4 in raster order, d = 0,-1,1,0,
    # Σd² = 2, n = 4: ρ = 1 - 6·2 / (4·(16 - 1)) = 1 - 12/60 = 0.8.
    rho = spearman_rank_correlation(np.array([[1, 2], [3, 4]]), np.array([[1, 3], [2, 4]]))
    assert rho == pytest.approx(0.8, abs=1e-12)


def test_spearman_ties_get_mean_ranks():
    # a = 0,0,1,1 → ranks 1.5,1.5,3.5,3.5 (deviations -1,-1,1,1); b = 0,1,0,1 → 1.5,3.5,1.5,3.5
    # (deviations -1,1,-1,1): Σ dev_a·dev_b = 1 - 1 - 1 + 1 = 0 → ρ = 0.
    a = np.array([[0, 0], [1, 1]])
    assert spearman_rank_correlation(a, np.array([[0, 1], [0, 1]])) == pytest.approx(0, abs=1e-12)
    # b = 0,0,1,2 → ranks 1.5,1.5,3,4 (deviations -1,-1,0.5,1.5): Σ dev_a·dev_b = 1+1+0.5+1.5 = 4,
    # Σ dev_a² = 4, Σ dev_b² = 1+1+0.25+2.25 = 4.5 → ρ = 4/√18. (Ranking ties in raster order
    # instead would give both maps the ranks 1,2,3,4 and ρ = 1.)
    rho = spearman_rank_correlation(a, np.array([[0, 0], [1, 2]]))
    assert rho == pytest.approx(4 / math.sqrt(18), abs=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_spearman_matches_scipy(tied):
    rng = np.random.default_rng(3)
    for _ in range(20):
        if tied:  # 4 levels over 42 pixels: many ties on both sides
            a, b = rng.integers(0, 4, (2, 6, 7)).astype(float)
        else:
            a = rng.normal(size=(6, 7))
            b = a + rng.normal(size=(6, 7))
        expected = scipy.stats.spearmanr(a.ravel(), b.ravel()).statistic
        assert spearman_rank_correlation(a, b) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("shape", [(2, 2), (7, 7), (19, 23), (56, 56)])
def test_spearman_same_ranking_is_exactly_one(shape):
    rng = np.random.default_rng(sum(shape))
    m = rng.normal(size=shape)
    assert spearman_rank_correlation(m, m) == 1.0
    assert spearman_rank_correlation(m, np.exp(3 * m) + 2) == 1.0
    coarse = np.round(m)  # ties kept by the strictly increasing transform 2x + 1
    assert spearman_rank_correlation(coarse, 2 * coarse + 1) == 1.0


def test_spearman_negation_is_minus_one():
    m = np.random.default_rng(8).normal(size=(9, 11))
    assert spearman_rank_correlation(m, -m) == pytest.approx(-1.0, abs=1e-12)


def test_spearman_constant_map_has_no_ranking():
    m = np.arange(12.0).reshape(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nan by definition, not from a 0/0 that warns
        assert math.isnan(spearman_rank_correlation(m, np.full((3, 4), 0.5)))
        assert math.isnan(spearman_rank_correlation(np.zeros((3, 4)), m))
        assert math.isnan(spearman_rank_correlation(np.ones((3, 4)), np.ones((3, 4))))


@pytest.mark.parametrize("a, b", [
    (np.zeros((3, 4)), np.zeros((4, 3))),
    (np.zeros(12), np.zeros(12)),
    (np.array([[0.0, np.nan]]), np.array([[0.0, 1.0]])),
])
def test_spearman_refuses_bad_maps(a, b):
    with pytest.raises(ValueError):
        spearman_rank_correlation(a, b)


# --- top_fraction_iou ----------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.5, 1.0])
def test_top_fraction_identical_maps_is_exactly_one(fraction):
    m = np.random.default_rng(4).normal(size=(13, 17))
    assert top_fraction_iou(m, m, fraction) == 1.0


def test_top_fraction_mirror_has_no_overlap():
    # m[y, x] = x on 5×5: k = ⌈0.2·25⌉ = 5 and the five 4s are exactly the rightmost column;
    # the left-right mirror's five 4s are the leftmost column → no shared pixel, IoU 0.
    m = np.tile(np.arange(5.0), (5, 1))
    assert top_fraction_iou(m, m[:, ::-1]) == 0.0


def test_top_fraction_partial_overlap():
    # a = 0..24 in raster order: its top 5 is the bottom row, pixels (4,0)..(4,4). Its transpose
    # has the same values down the columns: top 5 is the right column, (0,4)..(4,4). They share
    # only the corner (4,4): IoU = 1 / (5 + 5 - 1) = 1/9.
    a = np.arange(25.0).reshape(5, 5)
    assert top_fraction_iou(a, a.T) == pytest.approx(1 / 9, abs=1e-12)


def test_top_fraction_ties_go_to_the_first_pixels_in_raster_order():
    # A constant 5×5 map ties everywhere: its top 5 is the first five pixels in raster order,
    # i.e. the top row — the same region as a map that is 1 on the top row and 0 elsewhere.
    top_row = np.zeros((5, 5))
    top_row[0] = 1.0
    assert top_fraction_iou(np.full((5, 5), 0.3), top_row) == 1.0
    bottom_row = np.zeros((5, 5))
    bottom_row[4] = 1.0
    assert top_fraction_iou(np.full((5, 5), 0.3), bottom_row) == 0.0


def test_top_fraction_region_size_rounds_up_on_the_decimal_fraction():
    # 4×4 at 0.2: 3.2 pixels round up to k = 4. a = 0..15: top 4 = pixels 12..15. b swaps the
    # values of pixels 11 and 12: top 4 = 11, 13, 14, 15. Shared 3 → IoU 3 / (4 + 4 - 3) = 0.6
    # (with k = 3 both regions would be 13..15 and the IoU 1).
    a = np.arange(16.0)
    b = a.copy()
    b[[11, 12]] = b[[12, 11]]
    assert top_fraction_iou(a.reshape(4, 4), b.reshape(4, 4)) == pytest.approx(0.6, abs=1e-12)
    # 5×5 at 0.28: k = 7 (0.28·25 is 7.000000000000001 in binary floating point, whose ceiling
    # would be 8). a = 0..24: top 7 = 18..24; b swaps 17 and 18: top 7 = 17, 19..24.
    # Shared 6 → IoU 6 / (7 + 7 - 6) = 0.75 (with k = 8 both regions would be 17..24, IoU 1).
    a = np.arange(25.0)
    b = a.copy()
    b[[17, 18]] = b[[18, 17]]
    iou = top_fraction_iou(a.reshape(5, 5), b.reshape(5, 5), 0.28)
    assert iou == pytest.approx(0.75, abs=1e-12)


def test_top_fraction_whole_map_always_overlaps_fully():
    rng = np.random.default_rng(6)
    assert top_fraction_iou(rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), 1.0) == 1.0


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_top_fraction_refuses_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        top_fraction_iou(np.zeros((3, 3)), np.zeros((3, 3)), fraction)


def test_top_fraction_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        top_fraction_iou(np.zeros((3, 4)), np.zeros((4, 3)))


def test_a_handful_of_images_is_never_distinguishable():
    """One image's bootstrap interval is [d, d]: it excludes 0 whenever d does, which used to
    read as a result in the app's Evaluate tab ("+0.051 (95 % CI +0.051 to +0.051, n = 1)")."""
    one = paired_difference([0.9], [0.85])
    assert one.low == one.high == pytest.approx(0.05)
    assert not one.distinguishable
    sentence = one.sentence("a", "b", "Energy in box")
    assert sentence.endswith("not distinguishable at this sample size")
    # the same consistent difference on enough images is a result
    many = paired_difference([0.9 + 0.001 * i for i in range(12)], [0.85] * 12)
    assert many.distinguishable
