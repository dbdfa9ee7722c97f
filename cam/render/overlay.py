"""Drawing one panel's pixels: a map scaled to [0, 1], coloured, blended over the photo's
region, with the ground-truth boxes on top. Layout and text are ``grid``'s."""
from __future__ import annotations

import functools

import cv2
import numpy as np
from PIL import Image, ImageDraw

from cam.engine.maps import minmax
from cam.render.style import COLORMAPS, NORMALISATIONS


def normalise(maps: list[np.ndarray], mode: str = "per-map") -> list[np.ndarray]:
    """Min-max to [0, 1], each map on its own (paper) or on one scale across the row's maps."""
    if mode not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}")
    if mode == "shared" and maps:
        lo = min(float(m.min()) for m in maps)
        hi = max(float(m.max()) for m in maps)
        return [(m - lo) / (hi - lo) if hi > lo else np.zeros_like(m) for m in maps]
    return [minmax(m) for m in maps]


def colorscale(colormap: str, steps: int = 16) -> list[tuple[float, str]]:
    """The colormap as a plotly colorscale sampled from the same OpenCV lookup table, so an
    interactive chart shows exactly the colours of the grid."""
    ramp = np.linspace(0, 1, steps)
    colours = colorize(ramp[None, :], colormap)[0]
    return [(float(t), f"rgb({r},{g},{b})") for t, (r, g, b) in zip(ramp, colours)]


@functools.cache
def _colour_table(colormap: str) -> np.ndarray:
    """The colormap's 256 RGB colours, as OpenCV's ``applyColorMap`` gives them."""
    ramp = np.arange(256, dtype=np.uint8)[None, :]
    table = cv2.cvtColor(cv2.applyColorMap(ramp, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)[0]
    table.setflags(write=False)  # one table per colormap, shared by every caller
    return table


def colorize(map01: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """[0, 1] map → RGB uint8 with an OpenCV colormap (JET, as in the paper). The map's 256
    levels index the colormap's table: the colours ``applyColorMap`` gives, at 0.1 ms a panel
    instead of 0.25 (its per-call set-up, 40 times in a redraw of the bench's grid)."""
    return np.take(_table(colormap), _levels(map01), axis=0)


def overlay(photo: np.ndarray, map01: np.ndarray, colormap: str = "jet",
            alpha: float = 0.5) -> np.ndarray:
    """Blend the colourised map over the photo: alpha is the map's weight, the pixel
    ``(1 - alpha) · photo + alpha · colour``, truncated to uint8. The map's share is looked up
    per level (alpha times the table) and the sum made in place, in the float64 that numpy's
    promotion gives this formula, so the pixels are those of the formula written out."""
    return overlays(photo, [map01], colormap, alpha)[0]


def overlays(photo: np.ndarray, maps: list[np.ndarray], colormap: str = "jet",
             alpha: float = 0.5) -> list[np.ndarray]:
    """``overlay`` of each map over the same photo (a grid's row), the photo's share computed
    once for all of them."""
    table, photo_share = alpha * _table(colormap), (1 - alpha) * photo.astype(np.float32)
    blended = []
    for map01 in maps:
        pixels = np.take(table, _levels(map01), axis=0)
        pixels += photo_share
        blended.append(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8))
    return blended


def _table(colormap: str) -> np.ndarray:
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {', '.join(COLORMAPS)}")
    return _colour_table(colormap)


def _levels(map01: np.ndarray) -> np.ndarray:
    """The map's 256 levels: [0, 1] (clipped) to 0…255, truncated."""
    return np.uint8(np.clip(map01, 0, 1) * 255)


def draw_boxes(pixels: np.ndarray, boxes: list[tuple[float, ...]], size: int) -> np.ndarray:
    """Ground-truth boxes (inclusive pixel boxes, as ``geometry.boxes_in_region`` gives them)
    in green on a white outline, so they show on any map colour."""
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    width = max(2, size // 90)
    for box in boxes:
        draw.rectangle(box, outline=(255, 255, 255), width=width + 2)
        draw.rectangle(box, outline=(0, 200, 0), width=width)
    return np.asarray(canvas)
