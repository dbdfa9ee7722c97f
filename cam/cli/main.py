"""scalecam on the command line (python -m cam, or the scalecam command): draw the Figure 7 grid,
measure it, write a report, time the engine. Every argument is checked before any model runs."""
from __future__ import annotations

import argparse

from cam.engine.methods import EXACT
from cam.eval.run import FAITHFULNESS_STEPS, QUICK_FAITHFULNESS_STEPS
from scaled_models.cli import (
    TABLE_DESCRIPTION,
    TABLE_HELP,
    add_table_arguments,
    add_zoo_arguments,
    request_from_args,
)
from scaled_models.cli.argtypes import positive_int, whole_number

from .args import (
    add_grid_arguments,
    add_measure_arguments,
    folder,
    methods_type,
    output_file,
)
from .bench import MAX_BENCH_IMAGES, add_serve_arguments, cmd_bench
from .evaluate import cmd_evaluate
from .figure import cmd_figure
from .report import cmd_report


def build_parser(serve_options: bool = False) -> argparse.ArgumentParser:
    """The four commands and ``table``; ``serve_options``: also ``bench --serve``'s own
    options, which the serve benchmark defines (imported only then: ``python -m cam figure``
    imports no benchmark)."""
    parser = argparse.ArgumentParser(prog="python -m cam", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fig = sub.add_parser("figure", help="draw the Figure 7 grid for some images",
                         description="Draw the Figure 7 grid (PNG, or a PDF paginated for A4/"
                                     "Letter) and write its JSON manifest beside it.")
    add_grid_arguments(fig, "predicted")
    fig.add_argument("--val-dir", type=folder,
                     help="ImageNet validation folder (needed by --preset; default: none)")
    fig.add_argument("--out", type=output_file(".png", ".pdf"), required=True,
                     help="fig.png or fig.pdf (the manifest goes to fig.json)")
    add_zoo_arguments(fig)
    fig.set_defaults(func=cmd_figure)

    ev = sub.add_parser("evaluate", help="metrics, paired differences and map agreement",
                        description="Score every model's maps on an ImageNet validation folder: "
                                    "a CSV row per image and model, an agreement CSV, a summary "
                                    "(printed, and OUT.summary.json) and plots.")
    ev.add_argument("--val-dir", type=folder, required=True,
                    help="ImageNet validation folder (flat + XML or devkit, Kaggle CSV, or "
                         "val/<wnid>/)")
    ev.add_argument("--method", type=methods_type, default=[EXACT],
                    help="CAM method, or several comma-separated (one CSV each; default: "
                         f"{EXACT.key})")
    ev.add_argument("--batch-size", type=positive_int, default=16,
                    help="images per chunk and forward pass (default: 16)")
    ev.add_argument("--out", type=output_file(".csv"), required=True,
                    help="results.csv; beside it results.agreement.csv, results.summary.json, "
                         "results.png and results.agreement.png")
    ev.add_argument("--resume", action="store_true",
                    help="keep the rows already in --out and compute only the missing ones")
    ev.add_argument("--save-maps", action="store_true",
                    help="also write results.maps.MODEL.npz per model: the maps, photos and "
                         "box masks on the grid the metrics use (Quantus' x_batch, y_batch, "
                         "a_batch, s_batch); about 0.85 MB per image and model before "
                         "compression, and a quarter of that again while the run goes")
    add_measure_arguments(ev, FAITHFULNESS_STEPS, "")
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="one PDF: grid, provenance, metrics, agreement",
                         description="Write a PDF report: the grid (of --preset figure7 or "
                                     "--images), what each column is, the metrics of --val-dir "
                                     "with 95 % intervals, paired differences and map "
                                     "agreement.")
    add_grid_arguments(rep, "gt")
    rep.add_argument("--val-dir", type=folder, required=True,
                     help="labelled ImageNet validation folder the metrics are computed on")
    rep.add_argument("--out", type=output_file(".pdf"), required=True, help="report.pdf")
    add_measure_arguments(rep, QUICK_FAITHFULNESS_STEPS,
                           f", half of evaluate's {FAITHFULNESS_STEPS}: half the forward passes")
    rep.set_defaults(func=cmd_report)

    bench = sub.add_parser("bench", help="time the engine; with --serve, the app's memory",
                           description="Time the engine against a naive GradCAM loop and the "
                                       "bare forward pass; with --serve, drive the real app "
                                       "with concurrent browser sessions and report the "
                                       "server's peak and idle memory.")
    bench.add_argument("--images", type=whole_number(1, MAX_BENCH_IMAGES), default=8,
                       help=f"number of images, 1..{MAX_BENCH_IMAGES}, run as one batch "
                            "(default: 8)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--skip-naive", action="store_true", help="skip the slow naive loop")
    bench.add_argument("--first-grid-starts", type=whole_number(0, 10), default=3,
                       help="fresh app servers timed from start to the page's first grid in "
                            "headless Chromium (the page's own first screen, whatever "
                            "--ladder says; 0: none; skipped without Chromium; default: 3)")
    add_zoo_arguments(bench)
    bench.add_argument("--serve", action="store_true",
                       help="measure the Streamlit server's memory under concurrent sessions "
                            "(headless Chromium; about an hour on 2 cores; from a checkout)")
    if serve_options:
        add_serve_arguments(bench.add_argument_group("--serve options"))
    bench.set_defaults(func=cmd_bench)

    table = sub.add_parser("table", help=TABLE_HELP + " (as python -m scaled_models table)",
                           description=TABLE_DESCRIPTION)
    add_table_arguments(table)
    return parser


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(serve_options=argv[:1] == ["bench"])
    args = parser.parse_args(argv)
    if getattr(args, "preset", None) and not getattr(args, "val_dir", None):
        parser.error("--preset figure7 picks its images from --val-dir: give --val-dir")
    request_from_args(parser, args)
    return args.func(args)
