"""``cascade``: one image's maps through the sanity checks, as arrays, in a notebook.

    from cam import cascade
    result = cascade("sample_images/chelsea.png", family="lite", method="gradcam")
    result.maps["baseline"].randomised[-1]   # the raw map of the fully randomised Lite0
    result.scores["baseline"].spearman_abs    # its similarity after each step
    result.grid                               # Adebayo et al.'s Figure 2 layout (PIL image)

It is ``compare``'s path (``notebook``): the same checks on the family, method and models, the
same engine kept for the kernel, the same messages for a bad file or choice; the maps and their
scores are ``sanity.cascade_maps`` and ``sanity.score``, what ``cam evaluate --sanity`` writes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from PIL import Image

from cam.engine.methods import EXACT, CamMethod, get_method
from cam.eval.sanity import SEED, CascadeMaps, SanityScores, cascade_maps, score
from cam.notebook.compare import ImageInput, _engine, _read_images
from cam.render.sanity_plots import cascade_grid
from cam.render.style import DEFAULT_STYLE, RenderStyle
from scaled_models.architectures import CamNet
from scaled_models.family import AUTO_FAMILY, WeightFamily
from scaled_models.ladders import DEFAULT_LADDER, Ladder
from scaled_models.zoo import zoo_request


@dataclass(frozen=True, eq=False)
class CascadeResult:
    """One image through the sanity checks, per model that ran (paper order)."""

    maps: Mapping[str, CascadeMaps]  # model key → raw maps: trained, per step, random class
    scores: Mapping[str, SanityScores]  # model key → Spearman/SSIM per step, eMPRT, SSIM
    grid: Image.Image = field(repr=False)  # the maps over the photo, a row per model


def cascade(image: ImageInput, family: str | WeightFamily = AUTO_FAMILY,
            method: str | CamMethod = EXACT, *, models: str | list[str] | None = None,
            seed: int = SEED, granularity: str = "blocks", style: RenderStyle = DEFAULT_STYLE,
            checkpoints: str | os.PathLike | None = None, device: str | None = None,
            ladder: str | Ladder = DEFAULT_LADDER) -> CascadeResult:
    """The cascade maps of one picture (a path or a PIL image) for each selected available
    model: every map as a numpy array at the model's feature resolution
    (``CascadeMaps.on_grid`` resamples it to the 224-px grid the scores use)."""
    method = method if isinstance(method, CamMethod) else get_method(method)
    request = zoo_request(family, ladder, models if models is None or isinstance(models, str)
                          else ",".join(models), checkpoints, device)
    keys = {*request.keys, *(brought.text for brought in request.brought)}
    pictures = _read_images(image)
    if len(pictures) != 1:
        raise ValueError(f"cascade explains one image; {len(pictures)} were given")
    engine = _engine(request)
    maps = {}
    for model in engine.zoo.available():
        # the cascade walks a CamNet's classifier and blocks
        if model.key in keys and isinstance(model.net, CamNet) \
                and not engine.cannot_run(model, method):
            maps[model.key] = cascade_maps(engine, pictures, model, method, seed,
                                           granularity)[0]
    if not maps:
        raise ValueError("none of the selected models is available in this family")
    return CascadeResult(MappingProxyType(maps),
                         MappingProxyType({k: score(m) for k, m in maps.items()}),
                         cascade_grid(pictures[0], list(maps.values()), style))
