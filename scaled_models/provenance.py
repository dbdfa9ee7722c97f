"""What each Table 7 model is, stated once: one typed row per role, which every table formats.

The command lines' ``table``, the report's PDF page and the app's models panel show the same
facts in different shapes; they all format these rows and none recomputes a fact. The ``table``
command's own text and options live here too, so ``python -m scaled_models table`` and
``python -m cam table`` are the same command without one application importing the other.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass

from .architectures import MAC_COUNTING
from .table7 import ModelSpec
from .weights import Provenance
from .zoo import LoadedModel, ModelZoo, add_zoo_arguments, zoo_from_args

MISSING = "—"  # a cell with nothing to say (an unavailable model has no run, no top-1)


@dataclass(frozen=True)
class ProvenanceRow:
    """One Table 7 role: what the paper specifies beside what this build loaded for it."""

    key: str
    spec: ModelSpec  # Table 7's row: coefficients, resolution, the paper's FLOPs and top-1
    params: int  # of Table 7's architecture (the paper's SE/SiLU blocks, the row's coefficients)
    macs: int  # … at Table 7's resolution: what the paper's FLOPs column measures
    status: str  # one word: published / adapted / distilled / trained / stand-in / unavailable
    headline: str  # the weights in a few words
    what_it_is: str  # the weights in a sentence (and how they do on unseen images), or why none
    make_available: str | None  # for an unavailable role: the command that fills it
    available: bool
    run_resolution: int  # what this family's network runs at
    run_macs: int | None  # … and costs there (None: nothing runs)
    top1: float | None  # of these weights, measured on ``top1_source``
    top1_source: str | None
    sha256: str | None  # of the weights file

    @property
    def table7(self) -> str:
        """E.g. "w=1, d=1, r=2, 448 px"."""
        return f"{self.spec.coefficients}, {self.spec.paper_resolution} px"

    @property
    def top1_text(self) -> str:
        """E.g. "75.1 (published)", or a dash when nobody measured these weights."""
        return MISSING if self.top1 is None else f"{self.top1:.1f} ({self.top1_source})"


def giga(count: int) -> str:
    """A count in billions, as the tables print MACs: "0.39G"."""
    return f"{count / 1e9:.2f}G"


def _what_it_is(prov: Provenance) -> str:
    """The weights in words and, for a trained model, how it does on images it never saw; for
    an unavailable role, why."""
    if not prov.available:
        return prov.unavailable_reason or ""
    return prov.recipe + (f". Judged on unseen images: {prov.judged.sentence()}"
                          if prov.judged else "")


def _row(model: LoadedModel) -> ProvenanceRow:
    prov = model.provenance
    return ProvenanceRow(
        key=model.key, spec=model.spec, params=model.params, macs=model.macs,
        status=prov.status, headline=prov.headline, what_it_is=_what_it_is(prov),
        make_available=prov.make_available, available=prov.available,
        run_resolution=prov.resolution, run_macs=model.run_macs, top1=prov.top1,
        top1_source=prov.top1_source, sha256=prov.sha256)


def provenance_rows(zoo: ModelZoo) -> list[ProvenanceRow]:
    """One row per loaded role, in paper order."""
    return [_row(model) for model in zoo.models]


def format_table(zoo: ModelZoo) -> str:
    """Two Markdown tables: Table 7 beside our measurement of the same architectures, then what
    this family loads for each role; notes say what each model is and how to fill a gap."""
    rows = provenance_rows(zoo)
    lines = ["Table 7 of Tan & Le (ICML 2019), measured on the paper's architectures:", "",
             "| Model | Coefficients | Params | MACs measured | Paper FLOPs | Paper top-1 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {row.spec.label} | {row.table7} | {row.params / 1e6:.2f}M | {giga(row.macs)} "
              f"| {row.spec.paper_flops} | {row.spec.paper_top1:.1f} |" for row in rows]
    lines += ["", f"What the '{zoo.family.name}' family loads ({zoo.family.description}):", "",
              "| Model | Status | What it is | Runs at | Run MACs | Top-1 of these weights |",
              "|---|---|---|---|---|---|"]
    for row in rows:
        runs, cost = ((f"{row.run_resolution} px", giga(row.run_macs)) if row.available
                      else (MISSING, MISSING))
        lines.append(f"| {row.spec.short_label} | {row.status} | {row.headline} | {runs} | "
                     f"{cost} | {row.top1_text} |")
    notes = [f"Family: {zoo.family.name} ({zoo.family_reason}); device: {zoo.device}.",
             f"MACs: {MAC_COUNTING}, on Table 7's architecture (channels make_divisible 8, "
             "repeats ceil); the paper's FLOPs are printed beside them unchanged."]
    notes += [f"{row.key}: {row.what_it_is}" if row.available
              else f"{row.key}: unavailable: {row.what_it_is}. To make it available: "
                   f"{row.make_available}" for row in rows]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def table_text(zoo: ModelZoo, as_json: bool = False) -> str:
    """What the ``table`` command prints: ``format_table``, or a JSON array with one object per
    model (``LoadedModel.summary``)."""
    if as_json:
        return json.dumps([model.summary() for model in zoo.models], indent=2)
    return format_table(zoo)


TABLE_HELP = "print Table 7 beside this build's measurements"
TABLE_DESCRIPTION = ("Table 7's rows (coefficients, the paper's FLOPs and top-1) beside the MACs "
                     "measured on the same architectures, and what this build loads for each "
                     "role: the weights, their status and recipe, or why a role is unavailable "
                     "and the command that fills it.")


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
