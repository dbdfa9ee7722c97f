"""`python -m cam bench` runs and reports every figure the performance issue asks for.
(Speed targets are checked by running the benchmark, not asserted here.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import REPO


def test_bench_json_reports_all_measurements(tmp_path):
    env = dict(os.environ, SCALECAM_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "cam", "bench", "--images", "2", "--json",
                           "--family", "lite", "--checkpoints", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("engine_s", "naive_s", "forward_s", "engine_over_forward", "naive_over_engine",
                "rerender_ms", "peak_rss_mb", "device"):
        assert key in result
    assert result["models"] == ["baseline", "depth", "width", "resolution", "compound"]
    assert result["random_init"] == ["depth", "width"]  # said, not hidden
    assert result["engine_s"] > 0 and result["forward_s"] > 0 and result["naive_s"] > 0
    assert result["engine_cached_s"] < result["engine_s"]
    assert abs(result["engine_over_forward"] - result["engine_s"] / result["forward_s"]) < 0.01
