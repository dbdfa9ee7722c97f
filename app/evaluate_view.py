"""The Evaluate tab: metrics with 95 % intervals, paired differences in sentences, and the map
agreement matrix as an interactive heat map, for the selected images."""
from __future__ import annotations

import io
import json

import plotly.graph_objects as go
import streamlit as st

from app.memory import release_memory
from app.plots import pandas_ready
from app.sidebar import Choices
from app.text import plain
from cam.engine.engine import CamEngine
from cam.engine.inputs import CamImage
from cam.engine.targets import Target, TargetMode
from cam.eval.agreement import AGREEMENT_MEASURES
from cam.eval.rows import AgreementRow, MetricRow, write_csv
from cam.eval.run import QUICK_FAITHFULNESS_STEPS, evaluate_images
from cam.eval.summary import Lineup, Summary, summarize
from cam.render.summary_plots import summary_plot
from cam.render.summary_text import agreement_markdown, metrics_markdown, sentences_markdown
from scaled_models.family import WeightsUnavailable

RESULT_KEY = "eval_result"
STEPS_KEY = "eval_steps"  # the export tab reads the steps the user chose here


def agreement_target(choices: Choices) -> Target:
    """Maps compared for the same class: the ground truth where known, else the class the
    visitor named, else each model's own prediction."""
    target = choices.target
    return Target.ground_truth_or(target.class_index if target.mode is TargetMode.CLASS
                                  else None)


def signature(images: list[CamImage], choices: Choices, steps: int) -> tuple:
    return (tuple(i.key for i in images), choices.method, tuple(choices.models),
            agreement_target(choices), steps)


def compute(engine: CamEngine, images: list[CamImage], choices: Choices, steps: int,
            progress=None) -> tuple[list[MetricRow], list[AgreementRow], Summary | None]:
    """Rows and summary for the selection (other sessions keep working meanwhile: the models
    are locked per batch, not for the whole run)."""
    try:
        rows, agreement = evaluate_images(engine, images, choices.method, choices.models,
                                          steps, agreement_target(choices), progress=progress)
    finally:
        release_memory()
    summaries = summarize(rows, agreement, Lineup.of([m.column for m in engine.zoo.models]))
    return rows, agreement, summaries[0] if summaries else None


def evaluate(engine: CamEngine, images: list[CamImage], choices: Choices, steps: int
             ) -> tuple[list[MetricRow], list[AgreementRow], Summary | None]:
    """``compute`` with a progress bar."""
    bar = st.progress(0.0, text="Scoring every model's maps…")
    result = compute(engine, images, choices, steps, progress=lambda done, total: bar.progress(
        done / total, text=f"{done} of {total} images scored"))
    bar.empty()
    return result


def current_result(images: list[CamImage], choices: Choices, steps: int):
    """The result computed for exactly this selection and these settings, if any."""
    saved = st.session_state.get(RESULT_KEY)
    return saved[1] if saved and saved[0] == signature(images, choices, steps) else None


def render(engine: CamEngine, images: list[CamImage], choices: Choices) -> None:
    labelled = [i for i in images if i.gt_class is not None]
    boxed = [i for i in labelled if i.boxes]
    st.caption(f"{len(labelled)} of the {len(images)} selected images have an ImageNet label "
               f"and {len(boxed)} also boxes: accuracy needs the label, localization the boxes "
               "(pick validation images to measure more). Map agreement uses all images, each "
               f"model explaining {agreement_target(choices).label}.")
    steps = st.slider("Deletion/insertion steps (0 skips them)", 0, 32, QUICK_FAITHFULNESS_STEPS,
                      key=STEPS_KEY)
    if st.button("Compute metrics and agreement", key="run_eval"):
        try:
            st.session_state[RESULT_KEY] = (signature(images, choices, steps),
                                            evaluate(engine, images, choices, steps))
        except WeightsUnavailable as exc:  # a let-go network whose file changed meanwhile
            st.error(f"Could not compute the metrics: {plain(exc)}")
    result = current_result(images, choices, steps)
    if result is None:
        return
    rows, agreement, summary = result
    if summary is None:
        st.info("Nothing to summarise: select at least two models or one labelled image.")
        return
    for part in (metrics_markdown(summary), sentences_markdown(summary)):
        if part:
            st.markdown(part)
    if summary.agreement:
        st.plotly_chart(agreement_figure(summary), key="agreement_heatmap")
        with st.expander("Agreement as a table (Spearman ρ, mean [95 % CI])"):
            st.markdown(agreement_markdown(summary))
    downloads(rows, agreement, summary)


def agreement_figure(summary: Summary) -> go.Figure:
    """models × models Spearman means; hover gives the pair, the mean and its interval."""
    matrix = summary.agreement_matrix("spearman")
    hover = [[_hover(summary, a, b) for b in summary.models] for a in summary.models]
    pandas_ready()
    figure = go.Figure(go.Heatmap(
        z=matrix, x=summary.models, y=summary.models, zmin=-1, zmax=1, colorscale="Viridis",
        customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorbar={"title": "Spearman ρ"}, text=[[f"{v:.2f}" for v in row] for row in matrix],
        texttemplate="%{text}"))
    figure.update_layout(title=f"Do the models look at the same places? ({summary.n_images} "
                               "images)", height=420, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                         yaxis={"autorange": "reversed"}, modebar={"orientation": "v"})
    return figure


def _hover(summary: Summary, a: str, b: str) -> str:
    if a == b:
        return f"{a} with itself: 1 (identical maps)"
    lines = [f"{a} | {b}"]
    for measure, label in AGREEMENT_MEASURES.items():
        value = summary.pair_agreement(a, b, measure)
        lines.append(f"{label}: —" if value is None else
                     f"{label}: {value.mean:.2f} (95 % CI {value.low:.2f} to {value.high:.2f}, "
                     f"n = {value.n})")
    return "<br>".join(lines)


def downloads(rows: list[MetricRow], agreement: list[AgreementRow], summary: Summary) -> None:
    metrics_csv, agreement_csv = io.StringIO(), io.StringIO()
    write_csv(metrics_csv, rows, MetricRow)
    write_csv(agreement_csv, agreement, AgreementRow)
    columns = st.columns(4)
    columns[0].download_button("Metrics CSV", metrics_csv.getvalue(), "scalecam_metrics.csv",
                               "text/csv", key="dl_eval_csv")
    columns[1].download_button("Agreement CSV", agreement_csv.getvalue(),
                               "scalecam_agreement.csv", "text/csv", key="dl_agreement_csv")
    columns[2].download_button("Summary JSON", json.dumps(summary.as_json(), indent=2),
                               "scalecam_summary.json", "application/json",
                               key="dl_summary_json")
    if summary.measured_metrics():
        columns[3].download_button("Metrics plot PNG", summary_plot(summary),
                                   "scalecam_metrics.png", "image/png", key="dl_eval_png")
