"""One PDF for a report: the Figure 7 grid, what each column really is, the metrics with their
intervals, the paired-difference sentences and the map-agreement matrix.

Pages are A4/Letter landscape (``export.SHEET_INCHES``); every page is drawn with matplotlib, so
the file needs nothing but the libraries scalecam already uses.
"""
from __future__ import annotations

import io
from datetime import datetime, timezone

import numpy as np
from PIL import Image

from cam.engine.figure import FigureSpec
from cam.eval.agreement import EVAL_SIZE, TOP_FRACTION
from cam.eval.sanity_summary import SanitySummary
from cam.eval.summary import Summary
from cam.render.export import SHEET_INCHES, grid_pages
from cam.render.sanity_plots import cascade_plot
from cam.render.sanity_text import sanity_markdown
from cam.render.style import RenderStyle
from cam.render.summary_plots import agreement_plot, summary_plot
from cam.render.summary_text import comparison_sentences, interval_text, no_metrics_text
from scaled_models.architectures import MAC_COUNTING
from scaled_models.ladders import TABLE7_LADDER
from scaled_models.provenance import provenance_cells, provenance_headers, provenance_rows
from scaled_models.zoo import ModelZoo

_SENTENCES_PER_PAGE = 28


def build_report(spec: FigureSpec, style: RenderStyle, zoo: ModelZoo,
                 summary: Summary | None, notes: list[str] = (),
                 sanity: SanitySummary | None = None) -> bytes:
    """The PDF bytes of the report; with ``sanity``, a page of the sanity checks (the cascade
    curve per model and method, and the table with the verdicts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with PdfPages(buffer) as pdf:
        for number, page in enumerate(grid_pages(spec, style), start=1):
            title = ("Figure 7, reproduced" if zoo.ladder == TABLE7_LADDER
                     else f"Figure 7's layout: the {zoo.ladder.name} ladder")
            fig = _page(plt, title + (f" (page {number})" if number > 1 else ""))
            _image(fig, page, (0.03, 0.04, 0.94, 0.86))
            pdf.savefig(fig)
            plt.close(fig)
        fig = _page(plt, "What each column is")
        _provenance_table(fig, zoo, notes)
        pdf.savefig(fig)
        plt.close(fig)
        if summary is not None:
            for fig in _summary_pages(plt, summary):
                pdf.savefig(fig)
                plt.close(fig)
        if sanity is not None and sanity.entries:
            fig = _page(plt, "Sanity checks: do the maps depend on the weights and the class?")
            _image(fig, cascade_plot(sanity), (0.03, 0.36, 0.94, 0.54))
            fig.text(0.03, 0.33, _wrapped_lines(sanity_markdown(sanity), 190), fontsize=6,
                     va="top", family="monospace")
            pdf.savefig(fig)
            plt.close(fig)
        info = pdf.infodict()
        info["Title"] = "scalecam report: Figure 7 of Tan & Le (ICML 2019), measured"
        info["Creator"] = "scalecam"
    return buffer.getvalue()


def _page(plt, title: str):
    fig = plt.figure(figsize=SHEET_INCHES)
    fig.text(0.03, 0.96, title, fontsize=14, weight="bold", va="top")
    fig.text(0.97, 0.96, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             fontsize=7, ha="right", va="top", color="0.4")
    return fig


def _image(fig, image: Image.Image | bytes, box: tuple[float, float, float, float]) -> None:
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    ax = fig.add_axes(box)
    ax.imshow(np.asarray(image.convert("RGB")))
    ax.set_axis_off()


def _provenance_table(fig, zoo: ModelZoo, notes: list[str]) -> None:
    ax = fig.add_axes((0.03, 0.25, 0.94, 0.63))
    ax.set_axis_off()
    table7 = zoo.ladder == TABLE7_LADDER
    # characters per line and share of the page of each column (another ladder adds one: the
    # depth, width and resolution counted against its baseline)
    layout = ((14, 0.09), (22, 0.13), (12, 0.08)) + (() if table7 else ((12, 0.08),)) + \
        ((11, 0.07), (70 if table7 else 60, 0.43 if table7 else 0.35), (14, 0.11), (12, 0.09))
    rows = [[_wrapped(cell, width) for cell, (width, _) in zip(cells, layout)]
            for cells in (provenance_cells(row, zoo.ladder) for row in provenance_rows(zoo))]
    table = ax.table(cellText=rows, colLabels=list(provenance_headers(zoo.ladder)),
                     loc="upper left", cellLoc="left", colWidths=[share for _, share in layout])
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    cells = table.get_celld()
    row_lines = {}  # every cell of a row as tall as its tallest (wrapped) cell
    for (r, _), cell in cells.items():
        row_lines[r] = max(row_lines.get(r, 1), cell.get_text().get_text().count("\n") + 1)
    for (r, _), cell in cells.items():
        cell.set_height(0.035 * row_lines[r] + 0.015 if r else 0.05)
        if r == 0:
            cell.set_text_props(weight="bold")
    text = [f"Family: {zoo.family.name} — {zoo.family.description} ({zoo.family_reason})."]
    if table7:
        text.append(f"MACs: {MAC_COUNTING}, of Table 7's architecture (the paper's SE/SiLU "
                    "blocks) at Table 7's resolution, beside the paper's FLOPs; 'runs' is what "
                    "this family's network costs at the resolution it ran.")
    else:
        text.append(f"Ladder {zoo.ladder.name}: {zoo.ladder.description}. MACs: "
                    f"{MAC_COUNTING}, of the network that runs, beside the FLOPs the paper "
                    "prints for the row the column is set beside; 'counted vs baseline': "
                    "residual blocks (d), channels of the last stage's last spatial "
                    "convolution (w) and input pixels per side (r), over the ladder's "
                    "baseline.")
    text += list(notes)
    fig.text(0.03, 0.2, "\n".join(_wrapped(t, 170) for t in text), fontsize=7.5, va="top")


def _summary_pages(plt, summary: Summary) -> list:
    pages = []
    fig = _page(plt, f"Metrics with 95 % intervals — {summary.method}, "
                         f"{summary.n_labelled} labelled images")
    shown = summary.measured_metrics()
    if shown:
        ax = fig.add_axes((0.03, 0.52, 0.94, 0.38))
        ax.set_axis_off()
        cells = [[model] + [interval_text(summary.metrics[model].get(m.column), m.percent, "\n")
                            for m in shown] for model in summary.models]
        table = ax.table(cellText=cells, colLabels=["Model"] + [m.heading for m in shown],
                         loc="upper left", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(6.5)
        table.scale(1, 1.6)
        _image(fig, summary_plot(summary), (0.15, 0.02, 0.7, 0.48))
    else:
        fig.text(0.03, 0.9, _wrapped(no_metrics_text(summary), 120), fontsize=9, va="top")
    pages.append(fig)
    sentences = comparison_sentences(summary)
    for start in range(0, len(sentences), _SENTENCES_PER_PAGE):
        fig = _page(plt, "Paired differences (same images; paired bootstrap, exact McNemar)")
        chunk = sentences[start:start + _SENTENCES_PER_PAGE]
        fig.text(0.03, 0.9, "\n".join(f"• {s}" for s in chunk), fontsize=7.5, va="top",
                 linespacing=1.6)
        pages.append(fig)
    fig = _page(plt, "Do the models look at the same places? Map agreement")
    _image(fig, agreement_plot(summary, "spearman"), (0.02, 0.08, 0.47, 0.8))
    _image(fig, agreement_plot(summary, "top20_iou"), (0.51, 0.08, 0.47, 0.8))
    fig.text(0.03, 0.07, _wrapped(
        "Each pair of models' maps of the same class (the ground truth), compared on the "
        f"image's common region at {EVAL_SIZE} px: Spearman rank correlation of the pixels and "
        f"IoU of the top-{TOP_FRACTION * 100:.0f} % regions; means over images (a model with "
        "itself is exactly 1).", 170), fontsize=7.5, va="top")
    pages.append(fig)
    return pages


def _wrapped_lines(text: str, width: int) -> str:
    """Each line of ``text`` wrapped on its own (a table's rows stay rows)."""
    return "\n".join(_wrapped(line, width) if line else "" for line in text.splitlines())


def _wrapped(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)) or str(text)
