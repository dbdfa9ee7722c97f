"""How a grid looks: the one ``RenderStyle`` type, its default (the CLI's and the app's, so both
draw the same figure unless told otherwise) and the choices each field accepts."""
from __future__ import annotations

from dataclasses import dataclass

import cv2

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA, "hot": cv2.COLORMAP_HOT,
    "parula": cv2.COLORMAP_PARULA, "plasma": cv2.COLORMAP_PLASMA,
}
NORMALISATIONS = ("per-map", "shared")
EXPORT_DPIS = (100, 150, 200, 300, 600)  # what the app offers; the CLI takes any in DPI_RANGE
DPI_RANGE = (50, 600)  # a 600 DPI grid is already 960 px a panel; more only costs memory


@dataclass(frozen=True)
class RenderStyle:
    """How maps are drawn; changing it never needs the models again."""

    colormap: str = "jet"  # the paper's
    alpha: float = 0.5
    normalisation: str = "per-map"  # the paper normalises each map on its own
    show_boxes: bool = False
    dpi: int = 300  # print quality
    panel_inches: float = 1.6

    @property
    def panel_px(self) -> int:
        """Side of one square panel in pixels at ``dpi`` (never below 64, so text fits)."""
        return max(64, round(self.panel_inches * self.dpi))


DEFAULT_STYLE = RenderStyle()  # the command line's defaults and the app's initial widgets
