"""``python -m cam figure|evaluate|bench`` — the engine without the browser."""
from __future__ import annotations

import argparse
import sys
import time

from scaled_models.zoo import add_zoo_arguments, device_label, zoo_from_args

from .engine import ModelRun
from .methods import EXACT, METHODS
from .targets import parse_target


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(run: ModelRun) -> None:
    _log(f"  {run.model_key:<10} {run.computed} computed, {run.cached} cached, "
         f"{run.elapsed_s:.2f}s")


def cmd_figure(args: argparse.Namespace) -> int:
    from .engine import CamEngine
    from .figure import make_figure
    from .inputs import collect_images
    from .render import RenderStyle, compose_grid, save_figure

    try:
        target = parse_target(args.target)
    except ValueError as exc:
        _log(f"error: {exc}")
        return 2
    report = collect_images(args.images)
    for name, reason in report.failures:
        _log(f"skipped {name}: {reason}")
    if not report.images:
        _log("error: no image could be read, so there is nothing to draw")
        return 1
    zoo = zoo_from_args(args)
    _log(f"family {zoo.family.name} ({zoo.family_reason}); device {device_label(zoo.device)}")
    for model in zoo.models:
        if not model.available:
            _log(f"  {model.key}: unavailable — {model.provenance.unavailable_reason}; "
                 f"to make it available: {model.provenance.make_available}")
    engine = CamEngine(zoo, batch_size=args.batch_size)
    start = time.perf_counter()
    spec = make_figure(engine, report.images, args.method, target, progress=_progress)
    style = RenderStyle(colormap=args.colormap, alpha=args.alpha,
                        normalisation=args.normalisation, show_boxes=args.boxes, dpi=args.dpi)
    out, manifest_path = save_figure(compose_grid(spec, style), spec, style, args.out)
    print(f"wrote {out} and {manifest_path} ({len(spec.rows)} images × {len(spec.models)} "
          f"models, {time.perf_counter() - start:.1f}s)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from .bench import format_report, run_bench

    result = run_bench(zoo_from_args(args), args.images, naive=not args.skip_naive)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .data import AnnotationError, open_val_dir
    from .engine import CamEngine
    from .evaluate import run_evaluation, summarize, summary_markdown, summary_plot

    try:
        dataset = open_val_dir(args.val_dir)
    except (AnnotationError, OSError, ValueError) as exc:
        _log(f"error: {exc}")
        return 2
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        _log(f"error: unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        return 2
    from scaled_models.distributed import init_distributed

    dist = init_distributed(args.device)
    rank, world = dist.rank, dist.world
    if rank == 0:
        _log(f"{len(dataset)} images ({dataset.layout} layout) in {args.val_dir}"
             + (f"; {len(dataset.skipped)} not usable" if dataset.skipped else ""))
        for path, reason in dataset.skipped[:20]:
            _log(f"  skipped {path}: {reason}")
    if world > 1:  # one GPU (or the CPU) per process
        args.device = str(dist.device)
    zoo = zoo_from_args(args)
    if rank == 0:
        _log(f"family {zoo.family.name} ({zoo.family_reason}); device {device_label(zoo.device)}; "
             f"models: {', '.join(m.key for m in zoo.available())}")
    engine = CamEngine(zoo, batch_size=args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, method in enumerate(methods):
        report = run_evaluation(engine, dataset, out if i == 0 else out.with_name(
            f"{out.stem}.{method}{out.suffix}"), method, limit=args.limit,
            batch_size=args.batch_size, resume=args.resume,
            faithfulness_steps=args.faithfulness_steps, rank=rank, world_size=world,
            progress=rank == 0 and not args.quiet)
        for path, reason in report.skipped:
            _log(f"skipped {path}: {reason}")
        rows += report.rows
    dist.close()
    if rank != 0:
        return 0
    summary = summarize(rows)
    print(summary_markdown(summary))
    plot = out.with_suffix(".png")
    plot.write_bytes(summary_plot(summary))
    print(f"\nwrote {out} ({len(rows)} rows) and {plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cam", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figure", help="render the Figure 7 grid for some images")
    fig.add_argument("--images", nargs="+", required=True,
                     help="image files and/or folders (an ImageNet val folder brings its labels)")
    fig.add_argument("--method", default=EXACT, choices=list(METHODS))
    fig.add_argument("--target", default="predicted",
                     help="predicted | gt | an ImageNet class (index, wnid or name)")
    fig.add_argument("--out", required=True, help="fig.png or fig.pdf (manifest: fig.json)")
    fig.add_argument("--dpi", type=int, default=150)
    fig.add_argument("--colormap", default="jet")
    fig.add_argument("--alpha", type=float, default=0.5)
    fig.add_argument("--normalisation", default="per-map", choices=["per-map", "shared"])
    fig.add_argument("--boxes", action="store_true", help="draw ground-truth boxes")
    fig.add_argument("--batch-size", type=int, default=16)
    add_zoo_arguments(fig)
    fig.set_defaults(func=cmd_figure)

    ev = sub.add_parser("evaluate", help="localization and faithfulness metrics per model")
    ev.add_argument("--val-dir", required=True, help="ImageNet validation directory")
    ev.add_argument("--method", default=EXACT,
                    help="CAM method, or several comma-separated (one CSV each)")
    ev.add_argument("--limit", type=int, default=None, help="first N images only")
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--out", required=True, help="results.csv (plot: results.png beside it)")
    ev.add_argument("--resume", action="store_true", help="keep rows already in --out")
    ev.add_argument("--faithfulness-steps", type=int, default=16,
                    help="deletion/insertion curve steps (0 skips them)")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    add_zoo_arguments(ev)
    ev.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser("bench", help="time the engine against naive GradCAM and bare forward")
    bench.add_argument("--images", type=int, default=8, help="number of images (default 8)")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--skip-naive", action="store_true", help="skip the slow naive loop")
    add_zoo_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
