"""From images to a Figure 7 spec: the one path shared by ``python -m cam figure`` and the app."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from .engine import CamEngine, ModelRun
from .inputs import CamImage
from .methods import EXACT, METHODS
from .render import PAPER_CAPTION, FigureRow, FigureSpec
from .targets import PREDICTED, Target


def make_figure(engine: CamEngine, images: Sequence[CamImage], method: str = EXACT,
                target: Target = PREDICTED, model_keys: Sequence[str] | None = None,
                progress: Callable[[ModelRun], None] | None = None,
                title: str | None = None) -> FigureSpec:
    """Compute (or fetch from the cache) every map and lay them out in paper order."""
    models = [m for m in engine.zoo.models if model_keys is None or m.key in model_keys]
    results = engine.compute(images, method, target, [m.key for m in models], progress)
    rows = [FigureRow(image, {m.key: results[(image.key, m.key)] for m in models
                              if (image.key, m.key) in results}) for image in images]
    family = engine.zoo.family
    default_title = f"{METHODS[method].label} — target: {target.label} — {family.name} family " \
                    f"({family.blocks})"
    return FigureSpec(models, rows, method, target, family.name,
                      title=default_title if title is None else title,
                      caption=f"Layout of {PAPER_CAPTION.split('. ')[0]} (Tan & Le, 2019).")
