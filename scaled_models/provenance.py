"""What each model is, stated once: one typed row per column, which every table formats.

The command lines' ``table`` (``scaled_models.cli``), the report's PDF page and the app's models
panel show the same facts in different shapes; they all format these rows and none recomputes a
fact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .architectures import MAC_COUNTING
from .ladders import TABLE7_LADDER, Column, Ladder
from .weights import Provenance
from .zoo import LoadedModel, ModelZoo, Scaled

MISSING = "—"  # a cell with nothing to say (an unavailable model has no run, no top-1)


@dataclass(frozen=True)
class ProvenanceRow:
    """One column: what the paper specifies beside what this build loaded for it."""

    key: str
    column: Column  # its words, what it scales, the paper's row it is set beside
    params: int | None  # of Table 7's architecture (the paper's SE/SiLU blocks): Table 7 only
    macs: int | None  # … at Table 7's resolution: what the paper's FLOPs column measures
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
    scaled: Scaled | None  # counted against the ladder's baseline (not for Table 7's rows)

    @property
    def table7(self) -> str:
        """Table 7's words for the row, e.g. "w=1, d=1, r=2, 448 px"; a column of another
        ladder: the paper's row it is set beside, e.g. "Table 3 d=4", or a dash."""
        spec, paper = self.column.spec, self.column.paper
        if spec is not None:
            return f"{spec.coefficients}, {spec.paper_resolution} px"
        return f"{paper.table} {paper.coefficients}" if paper is not None else MISSING

    @property
    def cost_text(self) -> str:
        """MACs beside the paper's FLOPs: of Table 7's architecture for a Table 7 row, else of
        the network that runs (its paper row's FLOPs, where there is one, beside)."""
        paper = self.column.paper
        macs = self.macs if self.column.spec is not None else self.run_macs
        counted = giga(macs) if macs is not None else MISSING
        return f"{counted} ({paper.flops})" if paper is not None else counted

    @property
    def top1_text(self) -> str:
        """E.g. "75.1 (published)", or a dash when nobody measured these weights."""
        return MISSING if self.top1 is None else f"{self.top1:.1f} ({self.top1_source})"

    @property
    def paper_top1_text(self) -> str:
        paper = self.column.paper
        return MISSING if paper is None else f"{paper.top1:.1f}"


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
        key=model.key, column=model.column, params=model.params, macs=model.macs,
        status=prov.status, headline=prov.headline, what_it_is=_what_it_is(prov),
        make_available=prov.make_available, available=prov.available,
        run_resolution=prov.resolution, run_macs=model.run_macs, top1=prov.top1,
        top1_source=prov.top1_source, sha256=prov.sha256, scaled=model.scaled)


def provenance_rows(zoo: ModelZoo) -> list[ProvenanceRow]:
    """One row per loaded column, in the ladder's order."""
    return [_row(model) for model in zoo.models]


SHA256_HEADER = "sha256"  # the weights file's hash: the PDF has room for it, the app's panel not


def provenance_headers(ladder: Ladder) -> tuple[str, ...]:
    """The headers of ``provenance_cells``: Table 7's words for Table 7, else the paper row's,
    and how much the network is scaled, counted."""
    if ladder == TABLE7_LADDER:
        return ("Model", "Table 7", "MACs (paper)", "status", "what the weights are", "runs",
                SHA256_HEADER)
    return ("Model", "paper row", "MACs (paper FLOPs)", "counted vs baseline", "status",
            "what the weights are", "runs", SHA256_HEADER)


def provenance_cells(row: ProvenanceRow, ladder: Ladder) -> list[str]:
    """One column's cells under ``provenance_headers(ladder)``: what the paper specifies beside
    what was run (the report's page and the app's models panel)."""
    runs = f"{row.run_resolution} px, {giga(row.run_macs)}" if row.available else MISSING
    cells = [row.column.short_label, row.table7, row.cost_text]
    if ladder != TABLE7_LADDER:
        cells.append(row.scaled.text() if row.scaled is not None else MISSING)
    return cells + [row.status, row.what_it_is, runs, (row.sha256 or "")[:12]]


def format_table(zoo: ModelZoo) -> str:
    """Markdown: for Table 7, the table beside our measurement of the same architectures, then
    what this family loads for each role; for another ladder, each column beside the paper's
    row it quotes. Notes say what each model is and how to fill a gap."""
    rows = provenance_rows(zoo)
    lines = []
    if zoo.ladder == TABLE7_LADDER:
        lines += ["Table 7 of Tan & Le (ICML 2019), measured on the paper's architectures:", "",
                  "| Model | Coefficients | Params | MACs measured | Paper FLOPs | Paper top-1 |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {row.column.label} | {row.table7} | {row.params / 1e6:.2f}M | "
                  f"{giga(row.macs)} | {row.column.paper.flops} | {row.column.paper.top1:.1f} |"
                  for row in rows if row.column.spec is not None]
        lines += ["", f"What the '{zoo.family.name}' family loads ({zoo.family.description}):",
                  "", "| Model | Status | What it is | Runs at | Run MACs | "
                  "Top-1 of these weights |", "|---|---|---|---|---|---|"]
        for row in rows:
            runs, cost = ((f"{row.run_resolution} px", giga(row.run_macs)) if row.available
                          else (MISSING, MISSING))
            lines.append(f"| {row.column.short_label} | {row.status} | {row.headline} | {runs} "
                         f"| {cost} | {row.top1_text} |")
    else:
        lines += [f"The {zoo.ladder.name} ladder: {zoo.ladder.description}; filled by the "
                  f"'{zoo.family.name}' family ({zoo.family.description}):", "",
                  "| Column | Scales | Paper row | Paper FLOPs, top-1 | Counted vs baseline | "
                  "Status | What it is | Runs at | Run MACs | Top-1 of these weights |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            paper = row.column.paper
            runs, cost = ((f"{row.run_resolution} px", giga(row.run_macs)) if row.available
                          else (MISSING, MISSING))
            lines.append(
                f"| {row.column.short_label} | {row.column.scales.value} | "
                f"{paper.label if paper else MISSING} | "
                f"{f'{paper.flops}, {paper.top1:.1f}' if paper else MISSING} | "
                f"{row.scaled.text() if row.scaled else MISSING} | {row.status} | "
                f"{row.headline} | {runs} | {cost} | {row.top1_text} |")
    notes = [f"Family: {zoo.family.name} ({zoo.family_reason}); device: {zoo.device}."]
    if zoo.ladder == TABLE7_LADDER:
        notes.append(f"MACs: {MAC_COUNTING}, on Table 7's architecture (channels "
                     "make_divisible 8, repeats ceil); the paper's FLOPs are printed beside "
                     "them unchanged.")
    else:
        notes.append(f"MACs: {MAC_COUNTING}, of the network that runs, at the resolution it "
                     "runs at; counted vs baseline: residual blocks (d), channels of the last "
                     "stage's last spatial convolution (w) and input pixels per side (r), each "
                     "over the ladder's baseline, counted on the built networks.")
    notes += [f"{row.key}: {row.what_it_is}" if row.available
              else f"{row.key}: unavailable: {row.what_it_is}" + (
                  f". To make it available: {row.make_available}" if row.make_available else "")
              for row in rows]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def table_text(zoo: ModelZoo, as_json: bool = False) -> str:
    """What the ``table`` command prints: ``format_table``, or a JSON array with one object per
    model (``LoadedModel.summary``)."""
    if as_json:
        return json.dumps([model.summary() for model in zoo.models], indent=2)
    return format_table(zoo)
