"""Table 7 of the EfficientNet paper beside what this build measures and loads (python -m
scaled_models table)."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys

from .architectures import MAC_COUNTING
from .zoo import ModelZoo, add_zoo_arguments, zoo_from_args


def _g(count: int) -> str:
    return f"{count / 1e9:.2f}G"


def format_table(zoo: ModelZoo) -> str:
    """Two markdown tables: Table 7 beside our measurement of the same architectures, then what
    this family loads for each role; notes say what each model is and how to fill a gap."""
    lines = ["Table 7 of Tan & Le (ICML 2019), measured on the paper's architectures:", "",
             "| Model | Coefficients | Params | MACs measured | Paper FLOPs | Paper top-1 |",
             "|---|---|---|---|---|---|"]
    for model in zoo.models:
        row = model.summary()
        lines.append(f"| {model.spec.label} | {row['coefficients']}, {row['resolution']} px "
                     f"| {row['params'] / 1e6:.2f}M | {_g(row['macs'])} | {row['paper_flops']} "
                     f"| {row['paper_top1']:.1f} |")
    lines += ["", f"What the '{zoo.family.name}' family loads ({zoo.family.description}):", "",
              "| Model | Status | What it is | Runs at | Run MACs | Top-1 of these weights |",
              "|---|---|---|---|---|---|"]
    for model in zoo.models:
        row = model.summary()
        top1 = f"{row['top1']:.1f} ({row['top1_source']})" if row["top1"] is not None else "—"
        runs = f"{row['run_resolution']} px" if row["available"] else "—"
        cost = _g(row["run_macs"]) if row["available"] else "—"
        lines.append(f"| {model.spec.short_label} | {row['status']} | "
                     f"{model.provenance.headline} | {runs} | {cost} | {top1} |")
    notes = [f"Family: {zoo.family.name} ({zoo.family_reason}); device: {zoo.device}.",
             f"MACs: {MAC_COUNTING}, on Table 7's architecture (channels make_divisible 8, "
             "repeats ceil); the paper's FLOPs are printed beside them unchanged."]
    for model in zoo.models:
        row = model.summary()
        if row["available"]:
            notes.append(f"{model.key}: {row['recipe']}"
                         + (f". Judged on unseen images: {row['judged']}" if row["judged"] else ""))
        else:
            notes.append(f"{model.key}: unavailable: {row['unavailable_reason']}. To make it "
                         f"available: {row['make_available']}")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


TABLE_HELP = "print Table 7 beside this build's measurements"
TABLE_DESCRIPTION = ("Table 7's rows (coefficients, the paper's FLOPs and top-1) beside the MACs "
                     "measured on the same architectures, and what this build loads for each "
                     "role: the weights, their status and recipe, or why a role is unavailable "
                     "and the command that fills it.")


def add_table_arguments(table: argparse.ArgumentParser) -> None:
    """The table command's options, shared by ``python -m scaled_models table`` and
    ``python -m cam table``."""
    add_zoo_arguments(table)
    table.add_argument("--json", action="store_true",
                       help="print a JSON array with one object per model (nothing else goes "
                            "to stdout; progress and downloads report on stderr)")
    table.set_defaults(func=run_table)


def run_table(args: argparse.Namespace) -> int:
    if args.json:  # whatever a library prints while loading must not reach stdout
        with contextlib.redirect_stdout(sys.stderr):
            rows = [m.summary() for m in zoo_from_args(args).models]
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print(format_table(zoo_from_args(args)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled_models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_table_arguments(sub.add_parser("table", help=TABLE_HELP, description=TABLE_DESCRIPTION))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
