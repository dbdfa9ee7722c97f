"""``python -m cam figure``, and what the report shares with it: the images a grid shows, the
engine the options name, the grid drawn."""
from __future__ import annotations

import argparse
import time

from cam.render.style import RenderStyle
from scaled_models.cli import zoo_from_args
from scaled_models.zoo import device_label

from .args import log, show_progress


def grid_images(args: argparse.Namespace):
    """The images a figure or report shows: --images, or the Figure 7 preset of --val-dir."""
    from cam.engine.figure import figure7_preset
    from cam.engine.inputs import collect_images, image_from_sample

    if args.preset:
        from safe_io.imagenet_val import open_val_dir

        samples, missing = figure7_preset(open_val_dir(args.val_dir))
        for name in missing:
            log(f"figure7 preset: no image of {name} in {args.val_dir}")
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


def style_of(args: argparse.Namespace) -> RenderStyle:
    return RenderStyle(colormap=args.colormap, alpha=args.alpha,
                       normalisation=args.normalisation, show_boxes=args.boxes, dpi=args.dpi)


def engine_of(args: argparse.Namespace, verbose: bool = True):
    from cam.engine.engine import CamEngine

    zoo = zoo_from_args(args)
    for model in zoo.models if verbose else ():
        if model is zoo.models[0]:
            log(f"family {zoo.family.name} ({zoo.family_reason}); "
                 f"device {device_label(zoo.device)}")
        if not model.available:
            log(f"  {model.key}: unavailable — {model.provenance.unavailable_reason}; "
                 f"to make it available: {model.provenance.make_available}")
    return CamEngine(zoo, batch_size=args.batch_size)


def grid_of(args: argparse.Namespace):
    """(engine, figure spec, notes) for the images a command draws, or ``None`` after saying
    that no image could be read."""
    from cam.engine.figure import make_figure

    images, failures, notes = grid_images(args)
    for name, reason in failures:
        log(f"skipped {name}: {reason}")
    if not images:
        log("error: no image could be read, so there is nothing to draw")
        return None
    engine = engine_of(args)
    return engine, make_figure(engine, images, args.method, args.target,
                               progress=show_progress), notes


def cmd_figure(args: argparse.Namespace) -> int:
    from cam.render.export import save_figure

    start = time.perf_counter()
    grid = grid_of(args)
    if grid is None:
        return 1
    _, spec, _ = grid
    try:
        written, manifest_path = save_figure(spec, style_of(args), args.out)
    except OSError as exc:
        log(f"error: {exc}")
        return 1
    if len(written) > 1:
        log(f"the grid is too large for one PNG: split into {len(written)} files")
    print(f"wrote {', '.join(map(str, written))} and {manifest_path} ({len(spec.rows)} images "
          f"× {len(spec.models)} models, {time.perf_counter() - start:.1f}s)")
    return 0


def val_dataset(args: argparse.Namespace):
    """--val-dir read, or ``None`` after saying why it cannot be."""
    from safe_io.imagenet_val import AnnotationError, open_val_dir

    try:
        return open_val_dir(args.val_dir)
    except (AnnotationError, OSError, ValueError) as exc:
        log(f"error: {exc}")
        return None
