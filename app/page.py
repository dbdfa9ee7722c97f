"""scalecam in the browser: Figure 7 of the EfficientNet paper on your own images (``app/main.py``
runs ``main``).

Only the page's order lives here: sidebar (``sidebar``), images (``images_view``), the grid
(``maps_view``), then the Inspect, Evaluate, Export and Sanity checks tabs; shared caches are
in ``resources``.
Loading, CAMs, rendering, metrics, statistics and reports are the ``scaled_models`` and ``cam``
libraries, the same code as the command line.
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from app import evaluate_view, export_view, inspect_view, labels, sanity_view
from app.images_view import choose_images
from app.maps_view import compute_figure, models_panel, unavailable_notice
from app.memory import configure_allocator
from app.settings import load_settings
from app.sidebar import sidebar
from cam.engine.engine import LOW_CONFIDENCE
from cam.engine.figure import PAPER_CAPTION
from cam.render.grid import LOW_CONFIDENCE_MARK, compose_grid
from cam.render.style import SCREEN_DPI


def main() -> None:
    st.set_page_config(page_title="scalecam — Figure 7", layout="wide")
    configure_allocator()
    settings = load_settings()
    engine, choices = sidebar(settings)
    st.title(f"scalecam: where do scaled {choices.ladder.networks} look?")
    if choices.ladder.name == "table7":
        st.caption("Class activation maps of the five Table 7 models of Tan & Le (ICML 2019), "
                   "side by side: baseline, depth ×4, width ×2, resolution ×2 and compound "
                   "scaling.")
    else:
        st.caption(f"Class activation maps side by side — {choices.ladder.title}. "
                   f"{choices.ladder.description}")
    if engine is None:
        st.stop()
    models_panel(engine)
    images = choose_images(settings)
    if not images:
        st.info("Select or upload at least one image.")
        return
    if not choices.models:
        st.info("Select at least one model in the sidebar.")
        return
    spec = compute_figure(engine, images, choices)
    if spec is None:
        return
    style = choices.style
    unavailable_notice(engine, choices.models)
    screen = dataclasses.replace(style, dpi=SCREEN_DPI)
    st.image(compose_grid(spec, screen), width="stretch")
    st.caption(f"{LOW_CONFIDENCE_MARK}: top-1 probability below {LOW_CONFIDENCE:.0%} — a "
               "prediction nobody should trust. ✓/✗: the prediction against the image's label.")
    if st.session_state.get("preset_used"):
        st.caption(f"Paper: {PAPER_CAPTION}")
    inspect_tab, evaluate_tab, export_tab, sanity_tab = st.tabs(list(labels.RESULT_TABS))
    with inspect_tab:
        inspect_view.render(spec, style)
    with evaluate_tab:
        evaluate_view.render(engine, images, choices)
    with export_tab:
        export_view.render(engine, spec, style, settings, choices)
    with sanity_tab:
        sanity_view.render(engine, images, choices)
