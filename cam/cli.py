"""scalecam on the command line (python -m cam, or the scalecam command): draw the Figure 7 grid,
measure it, write a report, time the engine. Every argument is checked before any model runs."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from safe_io.argtypes import (
    comma_separated,
    finite_number,
    non_empty,
    positive_int,
    whole_number,
)
from safe_io.storage import (
    StorageError,
    atomic_write,
    check_writable,
    free_bytes,
    free_space,
)
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

MAX_FAITHFULNESS_STEPS = 64  # deletion/insertion steps; more only cost forward passes
MAX_BENCH_IMAGES = 64  # the bench runs its images as one batch: 8 take 1.7 GB on a CPU


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(run: ModelRun) -> None:
    _log(f"  {run.model_key:<10} {run.computed} computed, {run.cached} cached, "
         f"{run.elapsed_s:.2f}s")


# --- argument types: a bad value stops the command before anything is computed ---------------

_opacity = finite_number(0.0, 1.0)
_dpi = whole_number(*DPI_RANGE)
_steps = whole_number(0, MAX_FAITHFULNESS_STEPS)  # 0 skips the curves


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
        path = Path(non_empty(text))
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder, not a file name")
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{path.name}: the file name must end in {' or '.join(suffixes)}")
        try:  # before any work: a command must be able to keep what it makes
            check_writable(path.parent)
        except StorageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return path
    check.__name__ = "output file"
    return check


def _folder(text: str) -> Path:
    path = Path(non_empty(text))
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
    try:
        written, manifest_path = save_figure(spec, _style(args), args.out)
    except OSError as exc:
        _log(f"error: {exc}")
        return 1
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
    from scaled_models.distributed import init_distributed

    from .evaluate import ResumeMismatch, run_evaluation

    dataset = _val_dataset(args)
    if dataset is None:
        return 2
    if not len(dataset):
        _log(f"error: {args.val_dir} holds no labelled image to evaluate")
        return 1
    if args.save_maps and not _room_for_maps(args, len(dataset.samples[:args.limit])):
        return 2
    dist = init_distributed(args.device)
    if dist.is_main:
        _log(f"{len(dataset)} images ({dataset.layout} layout) in {args.val_dir}"
             + (f"; {len(dataset.skipped)} not usable" if dataset.skipped else ""))
        for path, reason in dataset.skipped[:20]:
            _log(f"  skipped {path}: {reason}")
    if dist.world > 1:  # one GPU (or the CPU) per process
        args.zoo = dataclasses.replace(args.zoo, device=dist.device)
    engine = _engine(args, verbose=dist.is_main)
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
        except OSError as exc:  # a full disk mid-run: the rows written so far stand
            _log(f"error: {exc}. {_rows_kept(out, dist.rank, dist.world)}")
            return 1
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
        try:
            _write_summaries(out, report, engine.zoo)
        except OSError as exc:
            _log(f"error: {exc}. The rows are complete in {out}; run again with --resume to "
                 "write the summary and plots without computing anything")
            return 1
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


def _room_for_maps(args: argparse.Namespace, images: int) -> bool:
    """Whether --out's folder has room for the --save-maps shards of ``images`` images and the
    selected models (the least they need), said before any model loads."""
    from .map_export import shard_bytes

    models = len(args.zoo.keys) + len(args.zoo.brought)
    needed = shard_bytes(images, models) * len(args.method)
    free = free_bytes(args.out.parent)
    if free is None or free >= needed:
        return True
    _log(f"error: --save-maps: the maps of {images} images × {models} models need at "
         f"least {needed / 1e6:,.0f} MB in {args.out.parent} while the run goes, and there is "
         f"{free_space(args.out.parent)}: free some space, pass --limit, or leave out "
         "--save-maps")
    return False


def _rows_kept(out: Path, rank: int, world: int) -> str:
    """What a run that stopped on a write error keeps, in words."""
    from .rows import MetricRow, read_rows

    written = out if world == 1 else out.with_name(f"{out.name}.part{rank}")
    try:
        rows = len(read_rows(written, MetricRow))
    except (OSError, ValueError):
        rows = 0
    if not rows:
        return "No row was written."
    return (f"The {rows} rows written so far are kept in {written}: free some space and run "
            "again with --resume to compute only the rest")


def _write_summaries(out: Path, report, zoo) -> None:
    """The summary printed (the zoo's models in its ladder's order, compared as the ladder
    says), and written beside the CSV as JSON and two plots."""
    import json

    from .evaluate import agreement_path
    from .summary import Lineup, summarize
    from .summary_plots import agreement_plot, summary_plot
    from .summary_text import summary_markdown

    def write(path: Path, data: bytes) -> None:
        atomic_write(path, lambda p: p.write_bytes(data))

    lineup = Lineup.of([m.column for m in zoo.models])
    for summary in summarize(report.rows, report.agreement_rows, lineup):
        print(summary_markdown(summary) + "\n")
        write(out.with_suffix(".summary.json"),
              (json.dumps(summary.as_json(), indent=2) + "\n").encode("utf-8"))
        write(out.with_suffix(".png"), summary_plot(summary))
        write(out.with_suffix(".agreement.png"), agreement_plot(summary))
    print(f"wrote {out} ({len(report.rows)} rows), {agreement_path(out)}, "
          f"{out.with_suffix('.summary.json')}, {out.with_suffix('.png')} and "
          f"{out.with_suffix('.agreement.png')}")


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
    try:
        atomic_write(args.out, lambda p: p.write_bytes(pdf))
    except OSError as exc:
        _log(f"error: {exc}")
        return 1
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
    source.add_argument("--images", nargs="+", metavar="PATH", type=non_empty,
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
                        help=f"deletion/insertion curve steps, 0..{MAX_FAITHFULNESS_STEPS}, "
                             f"0 skips them (default: %(default)s{steps_why})")
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
    bench.add_argument("--images", type=whole_number(1, MAX_BENCH_IMAGES), default=8,
                       help=f"number of images, 1..{MAX_BENCH_IMAGES}, run as one batch "
                            "(default: 8)")
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
