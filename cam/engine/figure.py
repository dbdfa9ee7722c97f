"""From images to a Figure 7 spec: the one path shared by ``python -m cam figure``, the report
and the app; what a spec holds (the rows of maps every export draws and the manifest records);
and Figure 7's own selection of images (the preset)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cam.engine.engine import CamEngine, CamResult, ModelRun
from cam.engine.inputs import CamImage
from cam.engine.methods import EXACT, CamMethod
from cam.engine.targets import PREDICTED, Target
from safe_io.imagenet import class_index_of, class_label
from safe_io.imagenet_val import ValDataset, ValSample
from scaled_models.ladders import DEFAULT_LADDER, Ladder
from scaled_models.zoo import LoadedModel

PAPER_CAPTION = ("Figure 7. Class Activation Map (CAM) for models with different scaling methods. "
                 "Our compound scaling method allows the scaled model (last column) to focus on "
                 "more relevant regions with more object details.")


@dataclass
class FigureRow:
    """One image of the grid and each model's map of it."""

    image: CamImage
    results: dict[str, CamResult]  # by model key


@dataclass
class FigureSpec:
    """Everything one grid shows; also what the manifest records."""

    models: list[LoadedModel]  # described, without their networks (``without_network``)
    rows: list[FigureRow]
    method: CamMethod
    target: Target
    family: str
    title: str = ""
    caption: str = ""
    ladder: Ladder = DEFAULT_LADDER
    not_run: dict[str, str] = field(default_factory=dict)  # model key → why the method cannot


def make_figure(engine: CamEngine, images: Sequence[CamImage], method: CamMethod = EXACT,
                target: Target = PREDICTED, model_keys: Sequence[str] | None = None,
                progress: Callable[[ModelRun], None] | None = None,
                title: str | None = None) -> FigureSpec:
    """Compute (or fetch from the cache) every map and lay them out in paper order."""
    models = [m for m in engine.zoo.models if model_keys is None or m.key in model_keys]
    results = engine.compute(images, method, target, [m.key for m in models], progress)
    rows = [FigureRow(image, {m.key: results[(image.key, m.key)] for m in models
                              if (image.key, m.key) in results}) for image in images]
    family, ladder = engine.zoo.family, engine.zoo.ladder
    default_title = (f"{method.label} — target: {target.label} — {family.name} family "
                     f"({family.blocks})" if ladder == DEFAULT_LADDER
                     else f"{ladder.title} — {method.label} — target: {target.label} — "
                          f"{family.name} family")
    caption = (f"Layout of {PAPER_CAPTION.split('. ')[0]} (Tan & Le, 2019)." if ladder ==
               DEFAULT_LADDER else f"Figure 7's layout (Tan & Le, 2019) for another ladder: "
                                   f"{ladder.description}")
    not_run = {m.key: why for m in models if m.available
               for why in [engine.cannot_run(m, method)] if why}
    return FigureSpec([m.without_network() for m in models], rows, method, target, family.name,
                      title=default_title if title is None else title,
                      caption=caption, ladder=ladder, not_run=not_run)


# Figure 7's rows (Tan & Le 2019): a bakeshop and a maze.
FIGURE7_WNIDS: tuple[str, ...] = ("n02776631", "n03733281")
PRESETS = ("figure7",)


def figure7_preset(dataset: ValDataset, per_class: int = 1
                   ) -> tuple[list[ValSample], list[str]]:
    """The first ``per_class`` validation images of each Figure 7 class in ``dataset``, and the
    classes it lacks, named as people read them (e.g. ``"maze (n03733281)"``)."""
    chosen, missing = [], []
    for wnid in FIGURE7_WNIDS:
        found = dataset.by_class(class_index_of(wnid))[:per_class]
        chosen += found
        if not found:
            missing.append(f"{class_label(class_index_of(wnid))} ({wnid})")
    return chosen, missing
