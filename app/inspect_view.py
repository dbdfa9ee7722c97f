"""The Inspect tab: each model's top-5 for one image, and on request its maps as linked plotly
panels.

The first screen shows this tab, so it is built from Streamlit's own elements; the plotly panels
are drawn only once the visitor asks for them (a toggle that stays on for the session). Building
them on every first page cost about 2 s of a 2-core machine's first grid (the browser loading
plotly.js, the server importing pandas and building the figure: README, Performance).
"""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.plots import pandas_ready
from cam.engine.figure import FigureRow, FigureSpec
from cam.engine.geometry import image_region, map_in_region, pixel_centres, region_photo
from cam.render.overlay import colorscale, normalise
from cam.render.style import RenderStyle
from safe_io.imagenet import class_label

INSPECT_PX = 160
# The plotly toolbar stands on the right, vertically, so it never covers a subplot title.
CHART_CONFIG = {"displaylogo": False}
ZOOM_KEY = "inspect_zoom"


def render(spec: FigureSpec, style: RenderStyle) -> None:
    """One image, picked by content (two uploads with the same file name are two entries):
    each model's top-5, then, when asked, the maps over the photo with linked zoom and pan."""
    by_key = {row.image.key: row for row in spec.rows}
    key = st.selectbox("Image to inspect", list(by_key), key="inspect_image",
                       format_func=lambda k: by_key[k].image.image_id)
    row = by_key.get(key, spec.rows[0])
    models = [m for m in spec.models if m.key in row.results]
    if not models:
        st.info("No model produced a map for this image.")
        return
    st.markdown("**Top-5 predictions** (✓: the image's label)")
    for column, model in zip(st.columns(len(models)), models):
        with column:
            top5_bars(model.column.short_label, row.results[model.key].top5, row.image.gt_class)
    if st.toggle("Zoomable maps: hover for each pixel's CAM value, zoom and pan linked across "
                 "models", key=ZOOM_KEY):
        linked_maps(spec, row, style)


def top5_bars(title: str, top5: list[tuple[int, float]], gt_class: int | None) -> None:
    """One model's top-5 as labelled bars, best first, the image's label marked."""
    st.markdown(f"**{title}**")
    for class_index, probability in top5:
        name = class_label(class_index)
        shown = f":green[**{name}** ✓]" if class_index == gt_class else name
        st.progress(min(max(probability, 0.0), 1.0), text=f"{shown} — {probability:.0%}")


def linked_maps(spec: FigureSpec, row: FigureRow, style: RenderStyle) -> None:
    """Maps over the photo at original-image pixels, hover = CAM value (normalised and raw);
    zoom and pan are linked across models."""
    models = [m for m in spec.models if m.key in row.results]
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
