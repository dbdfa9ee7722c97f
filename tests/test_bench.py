"""`python -m cam bench` measures what the performance table reports, in this process on one
image (speed targets are the benchmark's to report, never asserted here)."""
from __future__ import annotations

import json

import pytest

from benchmarks.engine import Spread


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from benchmarks.engine import format_report, run_bench
    from scaled_models import get_family, load_zoo

    zoo = load_zoo(get_family("lite"), tmp_path_factory.mktemp("none"), device="cpu")
    result = run_bench(zoo, 1)
    return result, format_report(result)


def test_every_table7_column_is_timed_and_the_stand_ins_are_said(bench):
    result, _ = bench
    assert result.models == ["baseline", "depth", "width", "resolution", "compound"]
    assert result.random_init == ["depth", "width"]  # timed on random weights, and said
    for spread in (result.engine, result.forward, result.forward_kept_heap):
        assert len(spread.seconds) == 5 and min(spread.seconds) > 0  # five rounds, in turn
    for spread in (result.engine_cached, result.engine_as_served, result.naive):
        assert len(spread.seconds) == 3 and min(spread.seconds) > 0
    assert len(result.rerender.seconds) == 7
    # the cache serves without a model
    assert max(result.engine_cached.seconds) < min(result.engine.seconds)


def test_the_report_prints_the_medians_it_measured_and_the_json_holds_every_run(bench):
    result, text = bench
    for figure in (f"{result.engine.median:.3f} s", f"{result.forward.median:.3f} s",
                   f"{result.rerender.median * 1000:.1f} ms", f"{result.peak_rss_mb:.0f} MB",
                   f"{result.forward_kept_heap.median:.3f} s",
                   f"{result.engine_as_served.median:.3f} s",
                   f"{result.engine.median / result.forward.median:.2f}",
                   f"{result.engine.median / result.forward_kept_heap.median:.2f}"):
        assert figure in text
    assert "random-init" in text and "depth, width" in text
    assert "OpenMP's threads" in text  # how the as-served engine's threads waited
    data = json.loads(json.dumps(result.as_json()))
    assert data["engine"]["runs"] == [round(s, 5) for s in result.engine.seconds]
    assert data["first_grid"] is None


def test_a_spread_is_the_median_of_its_runs_with_the_lowest_and_highest():
    spread = Spread((0.30, 0.10, 0.20, 0.90))
    assert spread.median == pytest.approx(0.25)  # the mean of the middle two
    assert spread.text() == "0.250 s [0.100–0.900, 4 runs]"
    assert Spread((0.0123, 0.0101, 0.0456)).text("ms") == "12.3 ms [10.1–45.6, 3 runs]"


@pytest.mark.browser
def test_the_first_grid_is_timed_from_a_fresh_server_to_the_grid_on_the_page():
    from benchmarks.first_grid import time_first_grid
    from benchmarks.launch import browser_available

    if not browser_available():
        pytest.skip("Chromium and chromedriver are not installed")
    timed = time_first_grid(starts=1)
    assert len(timed.first_start.seconds) == len(timed.second_start.seconds) == 1
    assert min(timed.first_start.seconds + timed.second_start.seconds) > 0
