"""``python -m scaled_models table``: Table 7 beside what this build measures and loads."""
from __future__ import annotations

import argparse
import json
import sys

from .zoo import ModelZoo, add_zoo_arguments, zoo_from_args


def _g(count: int) -> str:
    return f"{count / 1e9:.2f}G"


def format_table(zoo: ModelZoo) -> str:
    """Markdown table: the paper's numbers, our measurement of the same architecture, and the
    network this family actually loads for the role."""
    header = ("| Model | Table 7 config | Params | MACs (measured) | Paper FLOPs | Paper top-1 "
              f"| Loaded in family '{zoo.family.name}' | Run res | Run MACs | Weights | Status "
              "| Top-1 of weights |")
    lines = [header, "|" + "---|" * 12]
    for model in zoo.models:
        row = model.summary()
        top1 = f"{row['top1']:.1f} ({row['top1_source']})" if row["top1"] is not None else "—"
        lines.append(
            f"| {model.spec.label} | {row['coefficients']}, {row['resolution']} px "
            f"| {row['params'] / 1e6:.2f}M | {_g(row['macs'])} | {row['paper_flops']} "
            f"| {row['paper_top1']:.1f} | {row['architecture']} | {row['run_resolution']} px "
            f"| {_g(row['run_macs'])} | {row['weights_source']} | {row['status']} | {top1} |")
    notes = [f"Family: {zoo.family.name} ({zoo.family_reason}); device: {zoo.device}.",
             "MACs are multiply-accumulates per image counted with torch.utils.flop_counter on "
             "Table 7's architecture (channels make_divisible 8, repeats ceil); the paper's FLOPs "
             "are printed beside them unchanged."]
    for model in zoo.models:
        row = model.summary()
        for note in row["notes"]:
            notes.append(f"{model.key}: {note}")
        if not row["available"]:
            notes.append(f"{model.key}: unavailable: {row['unavailable_reason']}. To make it "
                         f"available: {row['make_available']}")
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaled_models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    table = sub.add_parser("table", help="print Table 7 beside this build's measurements")
    add_zoo_arguments(table)
    table.add_argument("--json", action="store_true", help="one JSON object per model")
    args = parser.parse_args(argv)
    zoo = zoo_from_args(args)
    if args.json:
        json.dump([m.summary() for m in zoo.models], sys.stdout, indent=2)
        print()
    else:
        print(format_table(zoo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
