"""The Export tab: the grid as PNG and as a paginated PDF, every panel, the manifest and the
report, from the same code as the command line.

Every file is made when its button is clicked (Streamlit's deferred downloads), so nothing is
rendered on a rerun and no session holds export bytes; and nothing is offered past the
operator's pixel budget.
"""
from __future__ import annotations

import json
import weakref

import streamlit as st

from app import evaluate_view, labels
from app.memory import release_memory
from app.settings import Settings
from app.sidebar import Choices
from cam.engine.engine import CamEngine
from cam.engine.figure import FigureSpec
from cam.eval.run import QUICK_FAITHFULNESS_STEPS
from cam.render.export import panels_zip, pdf_bytes, png_download, png_is_split
from cam.render.grid import grid_pixels, render_panels
from cam.render.manifest import manifest
from cam.render.report import build_report
from cam.render.style import RenderStyle


def within_budget(spec: FigureSpec, style: RenderStyle, settings: Settings) -> bool:
    """Refuse, with the numbers, an export larger than the operator allows."""
    width, height = grid_pixels(spec, style)
    megapixels = width * height / 1e6
    if megapixels <= settings.max_export_megapixels:
        return True
    st.error(f"At {style.dpi} DPI this grid would be {width}×{height} pixels "
             f"({megapixels:.0f} megapixels); this server exports at most "
             f"{settings.max_export_megapixels:g} ({labels.MAX_EXPORT_ENV}). Choose a "
             "lower export DPI in the sidebar or fewer images.")
    return False


def _released(make):
    """``make`` as a download callable that gives its memory back once the file is made."""
    def run():
        try:
            return make()
        finally:
            release_memory()
    return run


def report_pdf(engine: CamEngine, spec: FigureSpec, style: RenderStyle, result: tuple,
               computed_here: bool) -> bytes:
    """The report of the grid's images with the Evaluate tab's ``result`` (rows, agreement rows,
    summary) for the same selection."""
    images = [row.image for row in spec.rows]
    notes = [f"Metrics: the {sum(i.gt_class is not None for i in images)} labelled images of "
             f"this selection of {len(images)}"
             + (", computed for this report." if computed_here else ".")]
    return build_report(spec, style, engine.zoo, result[2], notes)


def render(engine: CamEngine, spec: FigureSpec, style: RenderStyle, settings: Settings,
           choices: Choices) -> None:
    st.caption("Each file is made when you click it: the grid as PNG and as a PDF paginated "
               "for A4/Letter, a zip of every panel, the JSON manifest, and a report (grid, what "
               "each column is, metrics with intervals, paired differences, map agreement).")
    if not within_budget(spec, style, settings):
        return
    record = manifest(spec, style)
    split = png_is_split(spec, style)
    images = [row.image for row in spec.rows]
    steps = st.session_state.get(evaluate_view.STEPS_KEY, QUICK_FAITHFULNESS_STEPS)
    result = evaluate_view.current_result(images, choices, steps)

    # Streamlit keeps a download's callable until the session is dropped (minutes after its
    # visitor left): holding the engine only weakly lets the server release a ladder's models
    # when their visitors have gone (app/engines.py).
    engine_ref = weakref.ref(engine)

    def report() -> bytes:
        live = engine_ref()
        if live is None:
            raise RuntimeError("the models behind this page were unloaded: rerun the page")
        found = result if result is not None else evaluate_view.compute(live, images, choices,
                                                                       steps)
        return report_pdf(live, spec, style, found, computed_here=result is None)

    columns = st.columns(5)
    columns[0].download_button(
        labels.GRID_PNG.widget.label + (" (zip of parts)" if split else ""),
        _released(lambda: png_download(spec, style, labels.GRID_STEM)),
        f"{labels.GRID_STEM}.zip" if split else labels.GRID_PNG.file_name,
        "application/zip" if split else "image/png", key=labels.GRID_PNG.widget.key,
        on_click="ignore")
    columns[1].download_button(labels.GRID_PDF.widget.label,
                               _released(lambda: pdf_bytes(spec, style)),
                               labels.GRID_PDF.file_name, "application/pdf",
                               key=labels.GRID_PDF.widget.key, on_click="ignore")
    columns[2].download_button(labels.PANELS_ZIP.widget.label,
                               _released(lambda: panels_zip(render_panels(spec, style), spec)),
                               labels.PANELS_ZIP.file_name, "application/zip",
                               key=labels.PANELS_ZIP.widget.key, on_click="ignore")
    columns[3].download_button("Manifest (JSON)", json.dumps(record, indent=2),
                               f"{labels.GRID_STEM}.json", "application/json", key="dl_json",
                               on_click="ignore")
    columns[4].download_button("Report (PDF)", _released(report), "scalecam_report.pdf",
                               "application/pdf", key="dl_report", on_click="ignore")
