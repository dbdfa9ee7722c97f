"""How a grid looks: the one ``RenderStyle`` type, its default (the CLI's and the app's, so both
draw the same figure unless told otherwise) and the choices each field accepts."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA, "hot": cv2.COLORMAP_HOT,
    "parula": cv2.COLORMAP_PARULA, "plasma": cv2.COLORMAP_PLASMA,
}
NORMALISATIONS = ("per-map", "shared")
EXPORT_DPIS = (100, 150, 200, 300, 600)  # what the app offers; the CLI takes any in DPI_RANGE
SCREEN_DPI = 110  # the app's grid on the page (exports use the chosen DPI)
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

    def __post_init__(self) -> None:
        """Refuse a style that cannot be drawn when it is made, not after the maps are
        computed (``compare(style=...)``, the app's widgets, the command line)."""
        problems = []
        if self.colormap not in COLORMAPS:
            problems.append(f"colormap {self.colormap!r} is not one of {', '.join(COLORMAPS)}")
        if not _number_in(self.alpha, 0.0, 1.0):
            problems.append(f"alpha must be a number from 0 to 1, got {self.alpha!r}")
        if self.normalisation not in NORMALISATIONS:
            problems.append(f"normalisation {self.normalisation!r} is not one of "
                            f"{', '.join(NORMALISATIONS)}")
        if not isinstance(self.show_boxes, bool):
            problems.append(f"show_boxes must be True or False, got {self.show_boxes!r}")
        if isinstance(self.dpi, bool) or not isinstance(self.dpi, numbers.Integral) \
                or not DPI_RANGE[0] <= self.dpi <= DPI_RANGE[1]:
            problems.append(f"dpi must be a whole number from {DPI_RANGE[0]} to "
                            f"{DPI_RANGE[1]}, got {self.dpi!r}")
        if not _number_in(self.panel_inches, 0.1, 20.0):
            problems.append(f"panel_inches must be a number from 0.1 to 20, got "
                            f"{self.panel_inches!r}")
        if problems:
            raise ValueError("RenderStyle: " + "; ".join(problems))

    @property
    def panel_px(self) -> int:
        """Side of one square panel in pixels at ``dpi`` (never below 64, so text fits)."""
        return max(64, round(self.panel_inches * self.dpi))


def _number_in(value: object, low: float, high: float) -> bool:
    """A real, finite number from ``low`` to ``high`` (not a bool, not NaN)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)


DEFAULT_STYLE = RenderStyle()  # the command line's defaults and the app's initial widgets
