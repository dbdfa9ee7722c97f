"""scalecam on the command line (python -m cam, or the scalecam command): draw the Figure 7 grid,
measure it, write a report, time the engine. Every argument is checked before any model runs."""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

from safe_io.argtypes import comma_separated, positive_int
from scaled_models.provenance import (
    TABLE_DESCRIPTION,
    TABLE_HELP,
    add_table_arguments,
)
from scaled_models.zoo import add_zoo_arguments, device_label, request_from_args, zoo_from_args

from .engine import ModelRun
from .evaluate import FAITHFULNESS_STEPS, QUICK_FAITHFULNESS_STEPS
from .figure import PRESETS
from .methods import EXACT, METHODS, CamMethod, get_method
from .sanity import GRANULARITIES
from .sanity import SEED as SANITY_SEED
from .style import COLORMAPS, DEFAULT_STYLE, DPI_RANGE, NORMALISATIONS, RenderStyle
from .targets import Target, parse_target


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(run: ModelRun) -> None:
    _log(f"  {run.model_key:<10} {run.computed} computed, {run.cached} cached, "
         f"{run.elapsed_s:.2f}s")


# --- argument types: a bad value stops the command before anything is computed ---------------

def _opacity(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


def _dpi(text: str) -> int:
    value = int(text)
    if not DPI_RANGE[0] <= value <= DPI_RANGE[1]:
        raise argparse.ArgumentTypeError(f"must be {DPI_RANGE[0]}..{DPI_RANGE[1]}, got {text}")
    return value


def _steps(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be 0..64 (0 skips the curves), got {text}")
    return value


def _target(text: str) -> Target:
    try:
        return parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _method(text: str) -> CamMethod:
    """The method named on the command line, resolved here once: it travels as the object."""
    try:
        return get_method(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _methods(text: str) -> list[CamMethod]:
    return [METHODS[key] for key in comma_separated(METHODS, "method")(text)]


def _output(*suffixes: str):
    def check(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{path.name}: the file name must end in {' or '.join(suffixes)}")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} is a folder, not a file name")
        return path
    check.__name__ = "output file"
    return check


def _folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return path


# --- commands --------------------------------------------------------------------------------

def _grid_images(args: argparse.Namespace):
    """The images a figure or report shows: --images, or the Figure 7 preset of --val-dir."""
    from .figure import figure7_preset
    from .inputs import collect_images, image_from_sample

    if args.preset:
        from safe_io.imagenet_val import open_val_dir

        samples, missing = figure7_preset(open_val_dir(args.val_dir))
        for name in missing:
            _log(f"figure7 preset: no image of {name} in {args.val_dir}")
        images, failures = [], []
        for sample in samples:
            try:
                images.append(image_from_sample(sample))
            except ValueError as exc:
                failures.append((str(sample.path), str(exc)))
        return images, failures, [f"Figure 7 preset: no image of {m} in the validation folder."
                                  for m in missing]
    report = collect_images(args.images)
    return report.images, report.failures, []


def _style(args: argparse.Namespace) -> RenderStyle:
    return RenderStyle(colormap=args.colormap, alpha=args.alpha,
                       normalisation=args.normalisation, show_boxes=args.boxes, dpi=args.dpi)


def _engine(args: argparse.Namespace, verbose: bool = True):
    from .engine import CamEngine

    zoo = zoo_from_args(args)
    for model in zoo.models if verbose else ():
        if model is zoo.models[0]:
            _log(f"family {zoo.family.name} ({zoo.family_reason}); "
                 f"device {device_label(zoo.device)}")
        if not model.available:
            _log(f"  {model.key}: unavailable — {model.provenance.unavailable_reason}; "
                 f"to make it available: {model.provenance.make_available}")
    return CamEngine(zoo, batch_size=args.batch_size)


def _grid(args: argparse.Namespace):
    """(engine, figure spec, notes) for the images a command draws, or ``None`` after saying
    that no image could be read."""
    from .figure import make_figure

    images, failures, notes = _grid_images(args)
    for name, reason in failures:
        _log(f"skipped {name}: {reason}")
    if not images:
        _log("error: no image could be read, so there is nothing to draw")
        return None
    engine = _engine(args)
    return engine, make_figure(engine, images, args.method, args.target,
                               progress=_progress), notes


def cmd_figure(args: argparse.Namespace) -> int:
    from .export import save_figure

    start = time.perf_counter()
    grid = _grid(args)
    if grid is None:
        return 1
    _, spec, _ = grid
    written, manifest_path = save_figure(spec, _style(args), args.out)
    if len(written) > 1:
        _log(f"the grid is too large for one PNG: split into {len(written)} files")
    print(f"wrote {', '.join(map(str, written))} and {manifest_path} ({len(spec.rows)} images "
          f"× {len(spec.models)} models, {time.perf_counter() - start:.1f}s)")
    return 0


def _val_dataset(args: argparse.Namespace):
    """--val-dir read, or ``None`` after saying why it cannot be."""
    from safe_io.imagenet_val import AnnotationError, open_val_dir

    try:
        return open_val_dir(args.val_dir)
    except (AnnotationError, OSError, ValueError) as exc:
        _log(f"error: {exc}")
        return None


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from scaled_models.distributed import init_distributed

    from .evaluate import ResumeMismatch, agreement_path, run_evaluation
    from .summary import Lineup, summarize
    from .summary_plots import agreement_plot, summary_plot
    from .summary_text import summary_markdown

    dataset = _val_dataset(args)
    if dataset is None:
        return 2
    if not len(dataset):
        _log(f"error: {args.val_dir} holds no labelled image to evaluate")
        return 1
    dist = init_distributed(args.device)
    if dist.is_main:
        _log(f"{len(dataset)} images ({dataset.layout} layout) in {args.val_dir}"
             + (f"; {len(dataset.skipped)} not usable" if dataset.skipped else ""))
        for path, reason in dataset.skipped[:20]:
            _log(f"  skipped {path}: {reason}")
    if dist.world > 1:  # one GPU (or the CPU) per process
        args.zoo = dataclasses.replace(args.zoo, device=dist.device)
    engine = _engine(args, verbose=dist.is_main)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    outputs, sanity_reports = [], []
    for i, method in enumerate(args.method):
        out = args.out if i == 0 else args.out.with_name(f"{args.out.stem}.{method.key}.csv")
        start = time.perf_counter()
        try:
            report = run_evaluation(engine, dataset, out, method, limit=args.limit,
                                    batch_size=args.batch_size, resume=args.resume,
                                    faithfulness_steps=args.faithfulness_steps, rank=dist.rank,
                                    world_size=dist.world, save_maps=args.save_maps,
                                    progress=dist.is_main and not args.quiet)
        except ResumeMismatch as exc:
            _log(f"error: {exc}")
            return 2
        sanity = _run_sanity(args, engine, dataset, out, method, dist) if args.sanity else None
        for path, reason in report.skipped:
            _log(f"skipped {path}: {reason}")
        if dist.is_main and report.computed_images:
            seconds = time.perf_counter() - start
            models = len(engine.zoo.available())
            _log(f"{method.key}: {report.computed_images} images × {models} models in "
                 f"{seconds:.1f} s ({report.computed_images / seconds:.2f} images/s)")
        if sanity is False:
            return 2
        outputs.append((out, report))
        if sanity is not None:
            sanity_reports.append((out, sanity))
    dist.close()
    if not dist.is_main:
        return 0
    for out, report in outputs:
        if not report.rows:
            _log(f"error: no image of {args.val_dir} could be evaluated, so {out} is empty")
            return 1
        lineup = Lineup.of([m.column for m in engine.zoo.models])
        for summary in summarize(report.rows, report.agreement_rows, lineup):
            print(summary_markdown(summary) + "\n")
            out.with_suffix(".summary.json").write_text(
                json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8")
            out.with_suffix(".png").write_bytes(summary_plot(summary))
            out.with_suffix(".agreement.png").write_bytes(agreement_plot(summary))
        print(f"wrote {out} ({len(report.rows)} rows), {agreement_path(out)}, "
              f"{out.with_suffix('.summary.json')}, {out.with_suffix('.png')} and "
              f"{out.with_suffix('.agreement.png')}")
    for out, sanity in sanity_reports:
        _write_sanity(out, sanity, [m.key for m in engine.zoo.models])
    for out, report in outputs + sanity_reports:  # the maps last: the results above stand
        if report.write_maps is not None:
            try:
                print(f"wrote the maps: {', '.join(map(str, report.write_maps()))}")
            except OSError as exc:
                _log(f"error: the maps of {out} could not be written ({exc}); the results "
                     f"above are complete, and --resume --save-maps writes the maps again")
                return 1
    return 0


def _run_sanity(args: argparse.Namespace, engine, dataset, out: Path, method: CamMethod, dist):
    """``--sanity``: the sanity checks of the same images beside ``out`` (``sanity_run``); the
    report, or ``False`` after saying why a resume was refused."""
    from .evaluate import ResumeMismatch
    from .sanity_run import run_sanity

    start = time.perf_counter()
    try:
        report = run_sanity(engine, dataset, out, method, limit=args.limit,
                            batch_size=args.batch_size, resume=args.resume,
                            seed=args.sanity_seed, granularity=args.sanity_steps,
                            rank=dist.rank, world_size=dist.world, save_maps=args.save_maps,
                            progress=dist.is_main and not args.quiet)
    except ResumeMismatch as exc:
        _log(f"error: {exc}")
        return False
    if dist.is_main and report.computed_images:
        per_model = ", ".join(f"{k} {s / report.computed_images:.2f} s/image"
                              for k, s in report.seconds.items())
        _log(f"{method.key} sanity checks: {report.computed_images} images in "
             f"{time.perf_counter() - start:.1f} s ({per_model})")
    return report


def _write_sanity(out: Path, report, model_order: list[str]) -> None:
    """The sanity summary: printed, as JSON and as the cascade-curve PNG."""
    import json

    from .sanity_plots import cascade_plot
    from .sanity_run import sanity_path, sanity_summary_path
    from .sanity_summary import summarize_sanity
    from .sanity_text import sanity_markdown

    if not report.rows:
        return
    summary = summarize_sanity(report.rows, model_order)
    print(sanity_markdown(summary) + "\n")
    json_path = sanity_summary_path(out)
    json_path.write_text(json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8")
    png = json_path.with_name(f"{out.stem}.sanity.png")
    png.write_bytes(cascade_plot(summary))
    print(f"wrote {sanity_path(out)} ({len(report.rows)} rows), {json_path} and {png}")


def _report_sanity(args: argparse.Namespace, engine, samples):
    """``report --sanity``: the checks of the report's images, summarised for its page."""
    from scaled_models.architectures import CamNet

    from .evaluate import runnable
    from .inputs import image_from_sample
    from .sanity import cascade_maps, sanity_row
    from .sanity_summary import summarize_sanity

    rows = []
    for start in range(0, len(samples), args.batch_size):
        images = []
        for sample in samples[start:start + args.batch_size]:
            try:
                images.append(image_from_sample(sample))
            except ValueError as exc:
                _log(f"skipped {exc}")
        for model in runnable(engine, args.method):
            if isinstance(model.net, CamNet):  # the cascade walks a CamNet's layers
                rows += [sanity_row(m, engine.zoo.family.name) for m in cascade_maps(
                    engine, images, model, args.method, args.sanity_seed, args.sanity_steps)]
    return summarize_sanity(rows, [m.key for m in engine.zoo.models])


def cmd_report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from safe_io.images import ImageLoadError

    from .evaluate import evaluate_images
    from .inputs import image_from_sample
    from .report import build_report
    from .summary import Lineup, summarize

    dataset = _val_dataset(args)
    if dataset is None:
        return 2
    grid = _grid(args)
    if grid is None:
        return 1
    engine, spec, notes = grid
    samples = dataset.samples[:args.limit]
    rows, agreement, measured = [], [], 0
    bar = tqdm(total=len(samples), unit="img", desc="measuring", disable=args.quiet)
    # In chunks, as evaluate does: a whole validation set decoded at once would not fit.
    for start in range(0, len(samples), args.batch_size):
        chunk = []
        for sample in samples[start:start + args.batch_size]:
            try:
                chunk.append(image_from_sample(sample))
            except ImageLoadError as exc:
                _log(f"skipped {exc}")
        new_rows, new_agreement = evaluate_images(engine, chunk, args.method,
                                                  faithfulness_steps=args.faithfulness_steps)
        rows += new_rows
        agreement += new_agreement
        measured += len(chunk)
        bar.update(len(samples[start:start + args.batch_size]))
    bar.close()
    summaries = summarize(rows, agreement, Lineup.of([m.column for m in engine.zoo.models]))
    sanity = _report_sanity(args, engine, samples) if args.sanity else None
    labelled = summaries[0].n_labelled if summaries else 0
    notes = notes + [f"Metrics: {labelled} labelled of the {measured} images read from "
                     f"{args.val_dir}; the grid "
                     f"shows {len(spec.rows)} image(s), target: {args.target.label}."]
    pdf = build_report(spec, _style(args), engine.zoo, summaries[0] if summaries else None,
                       notes, sanity)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(pdf)
    print(f"wrote {args.out} ({len(pdf) / 1e6:.1f} MB)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from benchmarks.engine import format_report, run_bench

    if args.serve:
        from benchmarks.serve import run_from_args

        return run_from_args(args)

    result = run_bench(zoo_from_args(args), args.images, naive=not args.skip_naive)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


# --- the parser ------------------------------------------------------------------------------

def _add_grid_arguments(parser: argparse.ArgumentParser, default_target: str) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="PATH",
                        help="image files and/or folders (an ImageNet val folder brings its "
                             "labels and boxes)")
    source.add_argument("--preset", choices=PRESETS,
                        help="the paper's own images: the bakeshop and maze classes of "
                             "--val-dir")
    parser.add_argument("--method", type=_method, default=EXACT, metavar="METHOD",
                        help=f"CAM method: {', '.join(METHODS)} (default: {EXACT.key}, the exact "
                             "CAM the paper used)")
    parser.add_argument("--target", type=_target, default=default_target,
                        help="the class each map explains: predicted (each model's top-1), gt "
                             "(the label; unlabelled images: the prediction), or one ImageNet "
                             f"class by index, wnid or name (default: {default_target})")
    parser.add_argument("--dpi", type=_dpi, default=DEFAULT_STYLE.dpi,
                        help=f"output resolution, {DPI_RANGE[0]}..{DPI_RANGE[1]} "
                             "(default: %(default)s, the app's default too)")
    parser.add_argument("--colormap", choices=list(COLORMAPS), default=DEFAULT_STYLE.colormap,
                        help="map colours (default: %(default)s, as in the paper)")
    parser.add_argument("--alpha", type=_opacity, default=DEFAULT_STYLE.alpha,
                        help="map opacity over the photo, 0..1 (default: %(default)s)")
    parser.add_argument("--normalisation", choices=NORMALISATIONS,
                        default=DEFAULT_STYLE.normalisation,
                        help="per-map: each map scaled on its own, as in the paper; shared: one "
                             "scale for a row (default: %(default)s)")
    parser.add_argument("--boxes", action="store_true", help="draw ground-truth boxes")
    parser.add_argument("--batch-size", type=positive_int, default=16,
                        help="images per forward pass (default: 16)")


def _add_measure_arguments(parser: argparse.ArgumentParser, steps: int, steps_why: str) -> None:
    """What evaluate and report share: how many images, how fine the faithfulness curves, the
    progress bar and the models."""
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the first N images of --val-dir (default: all)")
    parser.add_argument("--faithfulness-steps", type=_steps, default=steps,
                        help="deletion/insertion curve steps, 0 skips them (default: "
                             f"%(default)s{steps_why})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--sanity", action="store_true",
                        help="also run the sanity checks (cascading randomisation, eMPRT, "
                             "random logit) on the same images")
    parser.add_argument("--sanity-seed", type=int, default=SANITY_SEED,
                        help="seed of the randomised weights and the random class "
                             "(default: %(default)s)")
    parser.add_argument("--sanity-steps", choices=GRANULARITIES, default=GRANULARITIES[0],
                        help="a map after every randomised block, or only after each stage "
                             "(for Score-CAM and Ablation-CAM; default: %(default)s)")
    add_zoo_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cam", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fig = sub.add_parser("figure", help="draw the Figure 7 grid for some images",
                         description="Draw the Figure 7 grid (PNG, or a PDF paginated for A4/"
                                     "Letter) and write its JSON manifest beside it.")
    _add_grid_arguments(fig, "predicted")
    fig.add_argument("--val-dir", type=_folder,
                     help="ImageNet validation folder (needed by --preset; default: none)")
    fig.add_argument("--out", type=_output(".png", ".pdf"), required=True,
                     help="fig.png or fig.pdf (the manifest goes to fig.json)")
    add_zoo_arguments(fig)
    fig.set_defaults(func=cmd_figure)

    ev = sub.add_parser("evaluate", help="metrics, paired differences and map agreement",
                        description="Score every model's maps on an ImageNet validation folder: "
                                    "a CSV row per image and model, an agreement CSV, a summary "
                                    "(printed, and OUT.summary.json) and plots.")
    ev.add_argument("--val-dir", type=_folder, required=True,
                    help="ImageNet validation folder (flat + XML or devkit, Kaggle CSV, or "
                         "val/<wnid>/)")
    ev.add_argument("--method", type=_methods, default=[EXACT],
                    help="CAM method, or several comma-separated (one CSV each; default: "
                         f"{EXACT.key})")
    ev.add_argument("--batch-size", type=positive_int, default=16,
                    help="images per chunk and forward pass (default: 16)")
    ev.add_argument("--out", type=_output(".csv"), required=True,
                    help="results.csv; beside it results.agreement.csv, results.summary.json, "
                         "results.png and results.agreement.png")
    ev.add_argument("--resume", action="store_true",
                    help="keep the rows already in --out and compute only the missing ones")
    ev.add_argument("--save-maps", action="store_true",
                    help="also write results.maps.MODEL.npz per model: the maps, photos and "
                         "box masks on the grid the metrics use (Quantus' x_batch, y_batch, "
                         "a_batch, s_batch); about 0.85 MB per image and model before "
                         "compression, and a quarter of that again while the run goes")
    _add_measure_arguments(ev, FAITHFULNESS_STEPS, "")
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="one PDF: grid, provenance, metrics, agreement",
                         description="Write a PDF report: the grid (of --preset figure7 or "
                                     "--images), what each column is, the metrics of --val-dir "
                                     "with 95 % intervals, paired differences and map "
                                     "agreement.")
    _add_grid_arguments(rep, "gt")
    rep.add_argument("--val-dir", type=_folder, required=True,
                     help="labelled ImageNet validation folder the metrics are computed on")
    rep.add_argument("--out", type=_output(".pdf"), required=True, help="report.pdf")
    _add_measure_arguments(rep, QUICK_FAITHFULNESS_STEPS,
                           f", half of evaluate's {FAITHFULNESS_STEPS}: half the forward passes")
    rep.set_defaults(func=cmd_report)

    bench = sub.add_parser("bench", help="time the engine; with --serve, the app's memory",
                           description="Time the engine against a naive GradCAM loop and the "
                                       "bare forward pass; with --serve, drive the real app "
                                       "with concurrent browser sessions and report the "
                                       "server's peak and idle memory.")
    bench.add_argument("--images", type=positive_int, default=8,
                       help="number of images (default: 8)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--skip-naive", action="store_true", help="skip the slow naive loop")
    add_zoo_arguments(bench)
    bench.add_argument("--serve", action="store_true",
                       help="measure the Streamlit server's memory under concurrent sessions "
                            "(headless Chromium; about an hour on 2 cores)")
    from benchmarks.serve import add_arguments as add_serve_arguments

    add_serve_arguments(bench.add_argument_group("--serve options"), with_json=False)
    bench.set_defaults(func=cmd_bench)

    table = sub.add_parser("table", help=TABLE_HELP + " (as python -m scaled_models table)",
                           description=TABLE_DESCRIPTION)
    add_table_arguments(table)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "preset", None) and not getattr(args, "val_dir", None):
        parser.error("--preset figure7 picks its images from --val-dir: give --val-dir")
    request_from_args(parser, args)
    return args.func(args)
