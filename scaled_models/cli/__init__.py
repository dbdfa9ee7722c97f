"""``python -m scaled_models``: the command line of the ``scaled_models`` library, an
application. It holds every argparse piece the scalecam command lines share — the model
selection (``--ladder``, ``--family``, ``--models``, ``--checkpoints``, ``--device``), resolved
together into a ``zoo.ZooRequest`` before anything loads, and the ``table`` command — so that
no library module knows argparse. ``python -m cam`` and the trainer build on it."""
from __future__ import annotations

import argparse
import contextlib
import sys

from ..devices import usable_device
from ..family import AUTO_FAMILY, FAMILIES
from ..files import check_checkpoints
from ..ladders import DEFAULT_LADDER, LADDERS
from ..provenance import table_text
from ..table7 import MODEL_KEYS
from ..zoo import ModelZoo, RequestError, load_requested, zoo_request
from .argtypes import checked


def device_text(text: str) -> str:
    """``--device`` as torch names it, checked here (``devices.usable_device``); kept as text,
    as ``torchrun``'s processes pass it on."""
    return str(usable_device(text))


def check_checkpoints_text(text: str) -> str:
    check_checkpoints(text)
    return text


def add_zoo_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The model-selection flags every scalecam CLI shares. They are resolved together, after
    parsing and before anything loads, by ``request_from_args``."""
    parser.add_argument("--ladder", default=DEFAULT_LADDER.name, choices=list(LADDERS),
                        help="which models are compared: " + "; ".join(
                            f"{ladder.name}: {ladder.title}" for ladder in LADDERS.values())
                        + f" (default: {DEFAULT_LADDER.name})")
    parser.add_argument("--family", default=AUTO_FAMILY,
                        metavar="{" + ",".join([AUTO_FAMILY, *FAMILIES]) + "}",
                        help="weight family; auto = the one family of a ladder only one fills, "
                             "else efficientnet when B0's weights can be had, else the offline "
                             "Lite stand-ins (default: auto)")
    parser.add_argument("--checkpoints", default=None,
                        type=checked(check_checkpoints_text, "checkpoints folder"),
                        help="checkpoints root holding <family>/<key>.safetensors "
                             "(default: $SCALECAM_CHECKPOINTS or checkpoints/)")
    parser.add_argument("--models", default="all",
                        help="comma-separated column keys of the ladder (table7: "
                             + ",".join(MODEL_KEYS) + "), and models you bring: "
                             "torchvision:NAME[.WEIGHTS] (e.g. torchvision:resnet152."
                             "IMAGENET1K_V2), timm:NAME (from the Hugging Face cache), "
                             "ARCH=FILE (a .safetensors/.pth state dict of torchvision:NAME or "
                             "timm:NAME) (default: all of the ladder's)")
    parser.add_argument("--device", default=None, type=checked(device_text, "device"),
                        help="cuda, cuda:N, mps or cpu (default: the best one found)")


def request_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Resolve ``add_zoo_arguments``'s options into ``args.zoo`` (a ``ZooRequest``), or stop
    with the parser's usage error naming the option: before any model loads."""
    try:
        args.zoo = zoo_request(args.family, args.ladder, args.models, args.checkpoints,
                               args.device)
    except RequestError as exc:
        parser.error(f"argument {exc.option}: {exc}")


def zoo_from_args(args: argparse.Namespace) -> ModelZoo:
    return load_requested(args.zoo)


TABLE_HELP = "print a ladder (default: Table 7) beside this build's measurements"
TABLE_DESCRIPTION = ("Table 7's rows (coefficients, the paper's FLOPs and top-1) beside the MACs "
                     "measured on the same architectures, and what this build loads for each "
                     "role: the weights, their status and recipe, or why a role is unavailable "
                     "and the command that fills it. With --ladder resnet or compound, each "
                     "column beside the paper row it quotes (Table 3, Table 2), with its depth, "
                     "width and resolution counted against the ladder's baseline.")


def add_table_arguments(table: argparse.ArgumentParser) -> None:
    """The table command, options and action, shared by ``python -m scaled_models table`` and
    ``python -m cam table``."""
    add_zoo_arguments(table)
    table.add_argument("--json", action="store_true",
                       help="print a JSON array with one object per model (nothing else goes "
                            "to stdout; progress and downloads report on stderr)")
    table.set_defaults(func=run_table)


def run_table(args: argparse.Namespace) -> int:
    """Load the zoo the options name and print its table; what loading prints goes to stderr,
    so that ``--json`` output is the only thing on stdout."""
    with contextlib.redirect_stdout(sys.stderr):
        zoo = zoo_from_args(args)
    print(table_text(zoo, args.json))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled_models",
                                     description="Table 7 of the EfficientNet paper, and the "
                                                 "other ladders, beside what this build "
                                                 "measures and loads.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    table = sub.add_parser("table", help=TABLE_HELP, description=TABLE_DESCRIPTION)
    add_table_arguments(table)
    args = parser.parse_args(argv)
    request_from_args(parser, args)
    return args.func(args)
