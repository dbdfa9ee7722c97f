"""The sidebar: family, models, CAM method, target and display controls, read once per rerun
into one typed ``Choices`` that the views receive."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app import labels
from app.resources import get_engine
from app.settings import Settings, load_settings
from app.text import class_option, plain
from cam.engine.engine import CamEngine
from cam.engine.figure import FIGURE7_WNIDS
from cam.engine.methods import METHODS, CamMethod
from cam.engine.targets import GROUND_TRUTH, PREDICTED, Target
from cam.render.style import COLORMAPS, DEFAULT_STYLE, EXPORT_DPIS, NORMALISATIONS, RenderStyle
from safe_io.imagenet import CLASS_NAMES, class_index_of
from scaled_models.family import AUTO_FAMILY, families_for
from scaled_models.ladders import DEFAULT_LADDER, LADDERS, Ladder
from scaled_models.zoo import ZooRequest, device_label, zoo_request


@dataclass(frozen=True)
class Choices:
    """What the visitor chose, resolved once: the ladder, model keys in the ladder's order
    (then the models the visitor brought), the method and target objects, and the drawing
    style."""

    models: tuple[str, ...]
    method: CamMethod
    target: Target
    style: RenderStyle
    ladder: Ladder = DEFAULT_LADDER


def first_screen_engine() -> CamEngine:
    """The engine of the sidebar's choices before a visitor makes any (the default ladder,
    the ``auto`` family, nothing brought), loaded with the operator's settings: what
    ``app.warm_up`` prepares while the first page loads."""
    settings = load_settings()
    request = zoo_request(AUTO_FAMILY, DEFAULT_LADDER, "all")
    return get_engine(request.family, DEFAULT_LADDER, request.brought,
                      str(settings.checkpoints), settings.map_cache)


def _request(ladder: Ladder) -> ZooRequest | None:
    """The family and the brought models the visitor asked for, resolved (``None`` after an
    error shown in place: the page keeps working with what it has)."""
    requested = st.sidebar.selectbox(
        labels.FAMILY.label, [AUTO_FAMILY, *(f.name for f in families_for(ladder))],
        key=labels.FAMILY.key,
        help="auto: the paper's EfficientNet blocks when B0's weights are available, else the "
             "offline Lite stand-ins (the ResNets for the resnet ladder)")
    brought = st.sidebar.text_input(
        labels.BROUGHT.label, key=labels.BROUGHT.key,
        placeholder="torchvision:resnet152.IMAGENET1K_V2",
        help="comma-separated, each a column after the ladder's: torchvision:NAME[.WEIGHTS] "
             "(e.g. torchvision:resnet152.IMAGENET1K_V2), timm:NAME (from this server's "
             "Hugging Face cache). Weights the server cannot find are named with the command "
             "that fetches them.")
    tokens = [t.strip() for t in brought.split(",") if t.strip()]
    try:
        return zoo_request(requested, ladder, ",".join(["all", *tokens]))
    except ValueError as exc:
        st.sidebar.error(plain(exc))
    if tokens:  # the family alone, without the brought models that failed
        try:
            return zoo_request(requested, ladder)
        except ValueError:
            return None
    return None


def sidebar(settings: Settings) -> tuple[CamEngine | None, Choices]:
    """Model and CAM controls; returns the engine and the visitor's choices."""
    st.sidebar.title("scalecam")
    ladder = st.sidebar.selectbox(labels.LADDER.label, list(LADDERS.values()),
                                  key=labels.LADDER.key, format_func=lambda lad: lad.title,
                                  help="which scaled models are compared, side by side")
    st.sidebar.caption(plain(ladder.description))
    request = _request(ladder)
    engine = None
    if request is not None:
        try:
            engine = get_engine(request.family, ladder, request.brought,
                                str(settings.checkpoints), settings.map_cache)
            st.sidebar.caption(
                f"{labels.FAMILY_CAPTION} **{request.family.name}** — "
                f"{plain(request.family_reason)}. Device: **{device_label(engine.device)}**. "
                f"Checkpoints: {plain(settings.checkpoints)} (set by the operator).")
        except Exception as exc:  # noqa: BLE001 - shown in place; the page keeps working
            st.sidebar.error(f"Could not load the models: {plain(exc)}")
    keys = [m.key for m in engine.zoo.models] if engine is not None else []
    names = {m.key: m.column.short_label for m in engine.zoo.models} if engine else {}
    models = st.sidebar.multiselect(
            labels.MODELS.label, keys, default=keys, key=labels.models_key(ladder.name),
            # Table 7's keys are its words; another ladder's columns are named as in the grid
            format_func=(str if ladder == DEFAULT_LADDER else names.get))
    method = st.sidebar.selectbox(labels.METHOD.label, list(METHODS.values()),
                                  key=labels.METHOD.key, format_func=lambda m: m.menu_label)
    if method.slow:
        st.sidebar.warning(f"{method.label} runs hundreds of forward passes per image: expect "
                           "minutes on a CPU.")
    mode = st.sidebar.radio(labels.TARGET_MODE.label, [labels.PREDICTED_MODE,
                                                       labels.GROUND_TRUTH_MODE,
                                                       labels.ONE_CLASS_MODE],
                            key=labels.TARGET_MODE.key)
    if mode == labels.ONE_CLASS_MODE:
        index = st.sidebar.selectbox(labels.TARGET_CLASS.label, range(len(CLASS_NAMES)),
                                     index=class_index_of(FIGURE7_WNIDS[0]),
                                     format_func=class_option, key=labels.TARGET_CLASS.key)
        target = Target.of_class(int(index))
    else:
        target = GROUND_TRUTH if mode == labels.GROUND_TRUTH_MODE else PREDICTED
    st.sidebar.subheader("Display")
    style = RenderStyle(
        colormap=st.sidebar.selectbox("Colormap", list(COLORMAPS), key="colormap"),
        alpha=st.sidebar.slider("Map opacity (alpha)", 0.0, 1.0, DEFAULT_STYLE.alpha, 0.05,
                                key="alpha"),
        normalisation=st.sidebar.radio("Normalisation", NORMALISATIONS, key="normalisation",
                                       help="per-map: each map min-max scaled (the paper); "
                                            "shared: one scale across a row's models"),
        show_boxes=st.sidebar.checkbox("Show ground-truth boxes", True, key="boxes"),
        dpi=st.sidebar.select_slider(labels.DPI.label, EXPORT_DPIS, DEFAULT_STYLE.dpi,
                                     key=labels.DPI.key,
                                     help="the same default as python -m cam figure"))
    return engine, Choices(tuple(k for k in keys if k in models), method, target, style,
                           ladder)
