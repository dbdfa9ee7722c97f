"""What the commands share: their argument types (a bad value stops the command before anything
is computed, with a line naming the option), their argument groups, and how they log."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cam.engine.engine import ModelRun
from cam.engine.figure import PRESETS
from cam.engine.methods import EXACT, METHODS, CamMethod, get_method
from cam.engine.targets import Target, parse_target
from cam.eval.sanity import GRANULARITIES
from cam.eval.sanity import SEED as SANITY_SEED
from cam.render.style import COLORMAPS, DEFAULT_STYLE, DPI_RANGE, NORMALISATIONS
from safe_io.storage import StorageError, check_writable
from scaled_models.cli import add_zoo_arguments
from scaled_models.cli.argtypes import (
    comma_separated,
    finite_number,
    non_empty,
    positive_int,
    whole_number,
)

MAX_FAITHFULNESS_STEPS = 64  # deletion/insertion steps; more only cost forward passes


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def show_progress(run: ModelRun) -> None:
    log(f"  {run.model_key:<10} {run.computed} computed, {run.cached} cached, "
         f"{run.elapsed_s:.2f}s")


# --- argument types: a bad value stops the command before anything is computed ---------------

opacity = finite_number(0.0, 1.0)
dpi_type = whole_number(*DPI_RANGE)
steps_type = whole_number(0, MAX_FAITHFULNESS_STEPS)  # 0 skips the curves


def target_type(text: str) -> Target:
    try:
        return parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def method_type(text: str) -> CamMethod:
    """The method named on the command line, resolved here once: it travels as the object."""
    try:
        return get_method(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def methods_type(text: str) -> list[CamMethod]:
    return [METHODS[key] for key in comma_separated(METHODS, "method")(text)]


def output_file(*suffixes: str):
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


def folder(text: str) -> Path:
    path = Path(non_empty(text))
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return path


def add_grid_arguments(parser: argparse.ArgumentParser, default_target: str) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="PATH", type=non_empty,
                        help="image files and/or folders (an ImageNet val folder brings its "
                             "labels and boxes)")
    source.add_argument("--preset", choices=PRESETS,
                        help="the paper's own images: the bakeshop and maze classes of "
                             "--val-dir")
    parser.add_argument("--method", type=method_type, default=EXACT, metavar="METHOD",
                        help=f"CAM method: {', '.join(METHODS)} (default: {EXACT.key}, the exact "
                             "CAM the paper used)")
    parser.add_argument("--target", type=target_type, default=default_target,
                        help="the class each map explains: predicted (each model's top-1), gt "
                             "(the label; unlabelled images: the prediction), or one ImageNet "
                             f"class by index, wnid or name (default: {default_target})")
    parser.add_argument("--dpi", type=dpi_type, default=DEFAULT_STYLE.dpi,
                        help=f"output resolution, {DPI_RANGE[0]}..{DPI_RANGE[1]} "
                             "(default: %(default)s, the app's default too)")
    parser.add_argument("--colormap", choices=list(COLORMAPS), default=DEFAULT_STYLE.colormap,
                        help="map colours (default: %(default)s, as in the paper)")
    parser.add_argument("--alpha", type=opacity, default=DEFAULT_STYLE.alpha,
                        help="map opacity over the photo, 0..1 (default: %(default)s)")
    parser.add_argument("--normalisation", choices=NORMALISATIONS,
                        default=DEFAULT_STYLE.normalisation,
                        help="per-map: each map scaled on its own, as in the paper; shared: one "
                             "scale for a row (default: %(default)s)")
    parser.add_argument("--boxes", action="store_true", help="draw ground-truth boxes")
    parser.add_argument("--batch-size", type=positive_int, default=16,
                        help="images per forward pass (default: 16)")


def add_measure_arguments(parser: argparse.ArgumentParser, steps: int, steps_why: str) -> None:
    """What evaluate and report share: how many images, how fine the faithfulness curves, the
    progress bar and the models."""
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="only the first N images of --val-dir (default: all)")
    parser.add_argument("--faithfulness-steps", type=steps_type, default=steps,
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
