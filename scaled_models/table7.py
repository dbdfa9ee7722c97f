"""Table 7 of Tan & Le (ICML 2019), as data — the one place its numbers live.

Everything else (architectures, weight families, the CLI table, figure headers, the app's model
panel) reads these records; nothing re-types a coefficient.
"""
from __future__ import annotations

from dataclasses import dataclass

from .paper import PaperRow, Scaling


@dataclass(frozen=True)
class ModelSpec:
    """One row of Table 7: how B0 is scaled and what the paper reports for it."""

    key: str
    label: str
    short_label: str
    width: float
    depth: float
    paper_resolution: int
    paper_flops: str
    paper_top1: float

    @property
    def coefficients(self) -> str:
        return f"w={self.width:g}, d={self.depth:g}, r={self.paper_resolution / 224:.2g}"

    @property
    def scales(self) -> Scaling:
        """What the row scales: Table 7's keys are the scalings' own names."""
        return Scaling(self.key)

    @property
    def paper_row(self) -> PaperRow:
        """The row as a ``PaperRow``, the form every ladder's column quotes."""
        return PaperRow("Table 7", self.label, self.paper_flops, self.paper_top1, self.width,
                        self.depth, round(self.paper_resolution / 224, 3))


TABLE7: tuple[ModelSpec, ...] = (
    ModelSpec("baseline", "Baseline model (B0)", "Baseline", 1.0, 1.0, 224, "0.4B", 77.3),
    ModelSpec("depth", "Scale model by depth (d=4)", "Depth d=4", 1.0, 4.0, 224, "1.8B", 79.0),
    ModelSpec("width", "Scale model by width (w=2)", "Width w=2", 2.0, 1.0, 224, "1.8B", 78.9),
    ModelSpec("resolution", "Scale model by resolution (r=2)", "Resolution r=2", 1.0, 1.0, 448,
              "1.9B", 79.1),
    # r=1.3 of 224 px is 291 px in the paper; B3's published weights were trained at 300 px.
    ModelSpec("compound", "Compound scale (d=1.4, w=1.2, r=1.3)", "Compound", 1.2, 1.4, 291,
              "1.8B", 81.1),
)

MODEL_KEYS: tuple[str, ...] = tuple(spec.key for spec in TABLE7)
_BY_KEY = {spec.key: spec for spec in TABLE7}


def spec_for(key: str) -> ModelSpec:
    """The Table 7 row for ``key``; the error lists the valid keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown model {key!r}; choose from {', '.join(MODEL_KEYS)}") from None


def parse_model_keys(text: str | None) -> tuple[str, ...]:
    """``'baseline,depth'`` → keys in paper order; ``None``/``'all'`` → all five. A text that
    names no model (``''``, ``','``) is refused like an unknown key: it would draw a grid
    without a single model column."""
    if text is None or text.strip() == "all":
        return MODEL_KEYS
    wanted = {k.strip() for k in text.split(",") if k.strip()}
    if not wanted:
        raise KeyError(f"no model named in {text!r}; choose from {', '.join(MODEL_KEYS)} "
                       "(comma-separated) or all")
    for key in wanted:
        spec_for(key)
    return tuple(k for k in MODEL_KEYS if k in wanted)
