"""`python -m cam bench` measures what the performance table reports, in this process on one
image (speed targets are the benchmark's to report, never asserted here)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from benchmarks.engine import format_report, run_bench
    from scaled_models import get_family, load_zoo

    zoo = load_zoo(get_family("lite"), tmp_path_factory.mktemp("none"), device="cpu")
    result = run_bench(zoo, 1)
    return result, format_report(result)


def test_every_table7_column_is_timed_and_the_stand_ins_are_said(bench):
    result, _ = bench
    assert result["models"] == ["baseline", "depth", "width", "resolution", "compound"]
    assert result["random_init"] == ["depth", "width"]  # timed on random weights, and said
    assert result["engine_s"] > 0 and result["forward_s"] > 0 and result["naive_s"] > 0
    assert result["engine_cached_s"] < result["engine_s"]  # the cache serves without a model


def test_the_report_prints_the_figures_it_measured(bench):
    result, text = bench
    for figure in (f"{result['engine_s']:.3f} s", f"{result['forward_s']:.3f} s",
                   f"{result['rerender_ms']:.1f} ms", f"{result['peak_rss_mb']:.0f} MB"):
        assert figure in text
    assert "random-init" in text and "depth, width" in text
