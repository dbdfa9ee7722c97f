"""The Inspect tab: one image's maps as linked plotly panels plus each model's top-5."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.plots import pandas_ready
from cam.engine.figure import FigureSpec
from cam.engine.geometry import image_region, map_in_region, pixel_centres, region_photo
from cam.render.overlay import colorscale, normalise
from cam.render.style import RenderStyle
from safe_io.imagenet import class_label

INSPECT_PX = 160
# The plotly toolbar stands on the right, vertically, so it never covers a subplot title.
CHART_CONFIG = {"displaylogo": False}


def render(spec: FigureSpec, style: RenderStyle) -> None:
    """Maps over the photo, hover = CAM value (normalised and raw) at original-image pixels;
    zoom and pan are linked across models. Images are picked by content, so two uploads with
    the same file name are two entries."""
    by_key = {row.image.key: row for row in spec.rows}
    key = st.selectbox("Image to inspect", list(by_key), key="inspect_image",
                       format_func=lambda k: by_key[k].image.image_id)
    row = by_key.get(key, spec.rows[0])
    models = [m for m in spec.models if m.key in row.results]
    if not models:
        st.info("No model produced a map for this image.")
        return
    region = image_region(row.image, spec.models)
    raw = [map_in_region(row.results[m.key].raw_map, row.results[m.key].crop_box, region,
                         INSPECT_PX) for m in models]
    shown = normalise(raw, style.normalisation)
    photo = region_photo(row.image, region, INSPECT_PX)
    xs, ys = pixel_centres(region, INSPECT_PX)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    pandas_ready()
    fig = make_subplots(rows=1, cols=len(models), shared_xaxes="all", shared_yaxes="all",
                        subplot_titles=[m.column.short_label for m in models],
                        horizontal_spacing=0.02)
    for col, (model, values, raw_values) in enumerate(zip(models, shown, raw), start=1):
        fig.add_trace(go.Image(z=photo, x0=xs[0], dx=dx, y0=ys[0], dy=dy, hoverinfo="skip"),
                      row=1, col=col)
        fig.add_trace(go.Heatmap(
            z=values, x=xs, y=ys, customdata=raw_values, zmin=0, zmax=1, opacity=style.alpha,
            colorscale=colorscale(style.colormap), showscale=col == len(models),
            hovertemplate=(f"{model.key}<br>x %{{x:.0f}}, y %{{y:.0f}} px<br>"
                           "CAM %{z:.3f} (raw %{customdata:.3g})<extra></extra>")),
            row=1, col=col)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    # the right margin holds the colour bar and, beyond it, the vertical toolbar: no overlap
    fig.update_traces(colorbar={"x": 1.0, "xanchor": "left", "thickness": 14},
                      selector={"type": "heatmap"})
    fig.update_layout(height=320, margin=dict(l=10, r=90, t=50, b=10),
                      modebar={"orientation": "v"})
    st.plotly_chart(fig, key="inspect_maps", config=CHART_CONFIG)
    st.markdown("**Top-5 predictions** (green: the image's label)")
    for column, model in zip(st.columns(len(models)), models):
        with column:
            st.plotly_chart(top5_chart(model.column.short_label, row.results[model.key].top5,
                                       row.image.gt_class),
                            key=f"inspect_top5_{model.key}", config=CHART_CONFIG)


def top5_chart(title: str, top5: list[tuple[int, float]], gt_class: int | None) -> go.Figure:
    """One model's top-5 as horizontal bars, labelled with their probabilities (so no shared
    axis ticks can collide with a neighbour's)."""
    ordered = top5[::-1]
    figure = go.Figure(go.Bar(
        x=[p for _, p in ordered], y=[class_label(c) for c, _ in ordered], orientation="h",
        marker_color=["#168032" if c == gt_class else "#4c72b0" for c, _ in ordered],
        text=[f"{p:.0%}" for _, p in ordered], textposition="outside", textangle=0,
        cliponaxis=False,
        hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    figure.update_xaxes(range=[0, 1], showticklabels=False, showgrid=False)
    figure.update_yaxes(automargin=True, tickfont={"size": 10})
    figure.update_layout(title={"text": title, "font": {"size": 13}}, height=230,
                         showlegend=False, margin=dict(l=10, r=10, t=40, b=10),
                         modebar={"orientation": "v"})
    return figure
