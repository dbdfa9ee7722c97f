"""``python -m cam bench``: the engine's speed (``benchmarks.engine``) and, with ``--serve``, the
app's memory under concurrent sessions (``benchmarks.serve``). The benchmarks run from a
checkout (they are not installed), and are imported only when this command runs."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from scaled_models.cli import zoo_from_args

from .args import log

if TYPE_CHECKING:  # the benchmarks are imported only when the command runs
    from benchmarks.engine import BenchResult

MAX_BENCH_IMAGES = 64  # the bench runs its images as one batch: 8 take 1.7 GB on a CPU
NOT_INSTALLED = ("the benchmarks run from a checkout of scalecam (benchmarks/ beside cam/), not "
                 "from an installed package")


def add_serve_arguments(group: argparse._ArgumentGroup) -> None:
    """``--serve``'s options, as the serve benchmark defines them (without its own --json)."""
    try:
        from benchmarks.serve import add_arguments
    except ImportError:
        group.description = f"unavailable: {NOT_INSTALLED}"
        return
    add_arguments(group, with_json=False)

def cmd_bench(args: argparse.Namespace) -> int:
    import json

    try:
        from benchmarks.engine import format_report, run_bench
    except ImportError:
        log(f"error: python -m cam bench: {NOT_INSTALLED}")
        return 2
    if args.serve:
        from benchmarks.serve import run_from_args

        return run_from_args(args)

    result = run_bench(zoo_from_args(args), args.images, naive=not args.skip_naive)
    if args.first_grid_starts:
        result = _with_first_grid(result, args.first_grid_starts)
    print(json.dumps(result.as_json(), indent=2) if args.json else format_report(result))
    return 0


def _with_first_grid(result: BenchResult, starts: int) -> BenchResult:
    """``result`` with the first grid timed, or with why it was not (no Chromium; the page
    failed): the engine's figures are kept either way."""
    import dataclasses

    from benchmarks.first_grid import time_first_grid

    try:
        timed = time_first_grid(starts)
        return dataclasses.replace(result, first_grid=timed.first_start,
                                   first_grid_second=timed.second_start)
    except Exception as exc:  # noqa: BLE001 - a browser or server failure: say it, keep the rest
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return dataclasses.replace(result, first_grid_skipped=why)
