"""The Sanity tab: are these maps about the model? For one image, the chosen models and method,
the maps as the network is randomised from the top down (Adebayo et al. 2018, their Figure 2
layout: a row per model, a column per step) beside the similarity curve, the random-logit
check (Sixt et al. 2020), and a sentence on which maps pass.

Each model's randomised copy is made, used and freed inside ``safe_io.heavy.HEAVY_STEP`` (so
one such copy exists at a time on the server, and never beside another heavy step); the
resident models are never modified (``cam.cascade`` copies them)."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app.memory import release_memory
from app.plots import pandas_ready
from app.sidebar import Choices
from app.text import plain
from cam.engine.engine import CamEngine
from cam.engine.inputs import CamImage
from cam.eval.sanity import GRANULARITIES, SEED, CascadeMaps, cascade_maps, score
from cam.eval.sanity_summary import PASS_BELOW
from cam.render.sanity_plots import cascade_grid
from cam.render.sanity_text import CHECKS_MEANING
from safe_io.heavy import HEAVY_STEP
from scaled_models.architectures import CamNet
from scaled_models.family import WeightsUnavailable

RESULT_KEY = "sanity_result"
STEP_CHOICES = dict(zip(("every stage", "every block"), reversed(GRANULARITIES)))


def compute(engine: CamEngine, image: CamImage, choices: Choices, granularity: str,
            progress=None) -> list[CascadeMaps]:
    """Each selected available model's cascade for ``image``, one model at a time."""
    out = []
    models = [m for m in engine.zoo.available() if m.key in choices.models
              and isinstance(m.net, CamNet) and not engine.cannot_run(m, choices.method)]
    for number, model in enumerate(models, start=1):
        if progress is not None:
            progress(number, len(models), model.key)
        try:
            with HEAVY_STEP:  # one randomised copy on the server at a time, freed after
                out += cascade_maps(engine, [image], model, choices.method, SEED, granularity)
        finally:
            release_memory()
    return out


def verdict_sentence(results: list[CascadeMaps]) -> str:
    """Which of this image's maps pass, in words."""
    passing, failing = [], []
    for maps in results:
        scores = score(maps)
        final, logit = scores.spearman_abs[-1], scores.random_logit_ssim
        text = f"{maps.model_key} (ρ {final:.2f}, random-logit SSIM {logit:.2f})"
        (passing if final < PASS_BELOW and logit < PASS_BELOW else failing).append(text)
    method = results[0].method.label
    parts = []
    if passing:
        parts.append(f"On this image, {method} passes both checks for {', '.join(passing)}")
    if failing:
        parts.append(f"it does not for {', '.join(failing)}" if passing else
                     f"On this image, {method} does not pass both checks for "
                     f"{', '.join(failing)}")
    return ("; ".join(parts) + f" (pass: below {PASS_BELOW} after full randomisation, and "
            "for the random class). One image decides nothing: python -m cam evaluate "
            "--sanity gives the 95 % intervals over a folder. " + CHECKS_MEANING)


def curve(results: list[CascadeMaps]) -> go.Figure:
    """Spearman ρ of the absolute maps with the trained map after each step, per model."""
    pandas_ready()
    figure = go.Figure()
    for maps in results:
        labels = ["trained", *(s.label for s in maps.steps)]
        figure.add_trace(go.Scatter(x=list(range(len(labels))),
                                    y=[1.0, *score(maps).spearman_abs], mode="lines+markers",
                                    name=maps.model_key, customdata=labels,
                                    hovertemplate="%{customdata}: ρ %{y:.2f}<extra></extra>"))
    figure.add_hline(y=PASS_BELOW, line_dash="dot", annotation_text="pass below")
    figure.update_layout(height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         title="Similarity with the trained map (Spearman ρ, |map|)",
                         xaxis_title="cascade step (top → bottom)", yaxis_range=[-1, 1.05],
                         legend={"orientation": "h", "y": -0.25},
                         modebar={"orientation": "v"})
    return figure


def render(engine: CamEngine, images: list[CamImage], choices: Choices) -> None:
    st.caption("Are these maps about the model? The network is re-initialised from the "
               "classifier down, block by block (a copy: the models others use are untouched), "
               "and each step's map of the same class is compared with the trained one "
               "(Adebayo et al., NeurIPS 2018); the map of a random other class is compared "
               "with the predicted class's (Sixt et al., ICML 2020).")
    by_key = {i.key: i for i in images}
    key = st.selectbox("Image", list(by_key), key="sanity_image",
                       format_func=lambda k: by_key[k].image_id)
    steps = st.radio("A map after", list(STEP_CHOICES), horizontal=True, key="sanity_steps")
    granularity = STEP_CHOICES[steps]
    signature = (key, choices.method, tuple(choices.models), granularity)
    if choices.method.slow:
        st.warning(f"{choices.method.label} runs the network once per feature channel for "
                   "each map: expect many minutes per model on a CPU.")
    if st.button("Randomise the models and compare", key="run_sanity"):
        bar = st.progress(0.0, text="Randomising…")
        try:
            results = compute(engine, by_key.get(key, images[0]), choices, granularity,
                              lambda n, total, model: bar.progress(
                                  (n - 1) / total, text=f"{model}: randomising block by block…"))
            st.session_state[RESULT_KEY] = (signature, results)
        except WeightsUnavailable as exc:  # a let-go network whose file changed meanwhile
            st.error(f"Could not run the sanity checks: {plain(exc)}")
        bar.empty()
    saved = st.session_state.get(RESULT_KEY)
    if not saved or saved[0] != signature or not saved[1]:
        return
    results = saved[1]
    left, right = st.columns([3, 2])
    with left:
        st.image(cascade_grid(by_key[key], results, choices.style), width="stretch",
                 caption="Rows: models; columns: the crop, the trained map, then the map after "
                         "each step of the cascade (fc first, stem last: whole network "
                         "random).")
    with right:
        st.plotly_chart(curve(results), key="sanity_curve")
    st.markdown(plain(verdict_sentence(results)))
