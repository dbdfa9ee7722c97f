"""Do two models look at the same places? Agreement of their maps of the same class.

Two maps are compared on the image's common region (``geometry``) at one fixed grid, the one the
metrics use (``EVAL_SIZE``): Spearman's rank correlation of their pixels, and the IoU of their
top-20 % regions (``metrics``). A model compared with itself gives exactly 1 on both.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cam.engine.geometry import common_region, map_in_region
from cam.engine.inputs import CamImage
from cam.engine.methods import exact_cam
from cam.eval import metrics
from cam.eval.stats import Interval, bootstrap_mean_ci
from scaled_models.architectures import CamNet
from scaled_models.preprocessing import Preprocessing

EVAL_SIZE = 224  # the grid every per-image metric and agreement is computed on
TOP_FRACTION = 0.2
# measure (a MapAgreement field, a CSV column) → how it is labelled on screen and paper
AGREEMENT_MEASURES = {"spearman": "Spearman ρ", "top20_iou": f"top-{TOP_FRACTION * 100:.0f} % IoU"}


@dataclass(frozen=True)
class MapAgreement:
    spearman: float  # nan when either map is constant (no ranking to compare)
    top20_iou: float


def map_agreement(map_a: np.ndarray, map_b: np.ndarray) -> MapAgreement:
    """Agreement of two maps already on the same grid."""
    return MapAgreement(metrics.spearman_rank_correlation(map_a, map_b),
                        metrics.top_fraction_iou(map_a, map_b, TOP_FRACTION))


def pair_name(a: str, b: str) -> str:
    """``"a|b"``: how pairs are keyed in summaries and CSVs."""
    return f"{a}|{b}"


def summarize_agreement(values: Sequence[float], seed: int = 0) -> Interval | None:
    """Mean over images with its 95 % bootstrap interval; images where the measure is undefined
    (nan: a constant map) are left out, and ``None`` when no image is left."""
    defined = [v for v in values if v is not None and not np.isnan(v)]
    return bootstrap_mean_ci(defined, seed=seed) if defined else None


def exact_maps_on_common_grid(models: Sequence[tuple[CamNet, Preprocessing]], image: CamImage,
                              class_index: int, device: torch.device | str = "cpu"
                              ) -> list[np.ndarray]:
    """Each model's exact CAM of ``class_index`` for ``image``, resampled from the model's own
    crop onto the models' common region at ``EVAL_SIZE`` — for comparing networks that are not
    a loaded zoo (a student being trained, its teacher)."""
    region = common_region([p.crop_box(*image.size) for _, p in models], *image.size)
    maps = []
    for net, preprocessing in models:
        batch = preprocessing(image.image)[None].to(device)
        raw, _, _ = exact_cam(net, batch, [class_index])
        maps.append(map_in_region(raw[0], preprocessing.crop_box(*image.size), region, EVAL_SIZE))
    return maps
