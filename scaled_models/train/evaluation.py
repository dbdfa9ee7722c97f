"""What a checkpoint's metadata reports about the model: top-1 on a labelled evaluation set, and
how close its maps are to the baseline's and to the teacher's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cam.agreement import (
    AGREEMENT_MEASURES,
    exact_maps_on_common_grid,
    map_agreement,
    summarize_agreement,
)
from cam.data import open_val_dir
from cam.images import ImageLoadError
from cam.inputs import CamImage, image_from_sample

from ..architectures import CamNet
from ..preprocessing import Preprocessing

Model = tuple[CamNet, Preprocessing]


def eval_images(eval_dir: Path) -> list[CamImage]:
    """The labelled images of an evaluation folder (any layout ``cam.data`` reads); a file the
    decoder refuses is named and left out."""
    dataset = open_val_dir(eval_dir)
    images = []
    for sample in dataset.samples:
        try:
            images.append(image_from_sample(sample))
        except ImageLoadError as exc:
            print(f"skipped {exc}", flush=True)
    if not images:
        raise SystemExit(f"{eval_dir}: no usable labelled image to evaluate on")
    return images


@torch.no_grad()
def accuracy(model: Model, images: list[CamImage], device: torch.device,
             batch_size: int = 16) -> dict:
    """Top-1 and top-5 (percent) and the mean probability of the top-1 class, over images."""
    net, preprocessing = model
    net.eval()
    top1 = top5 = 0
    confidence = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        batch = torch.stack([preprocessing(i.image) for i in chunk]).to(device)
        probs = net(batch).float().softmax(1).cpu()
        best = probs.topk(5, dim=1)
        labels = torch.tensor([i.gt_class for i in chunk])
        top1 += int((best.indices[:, 0] == labels).sum())
        top5 += int((best.indices == labels[:, None]).any(1).sum())
        confidence += best.values[:, 0].tolist()
    n = len(images)
    return {"images": n, "top1": round(100 * top1 / n, 2), "top5": round(100 * top5 / n, 2),
            "mean_top1_prob": round(float(np.mean(confidence)), 4)}


@torch.no_grad()
def agreement_with(student: Model, references: dict[str, Model], images: list[CamImage],
                   device: torch.device) -> dict:
    """Mean Spearman rank correlation (and top-20 % IoU) of the student's exact CAM with each
    reference model's, for the ground-truth class, over the evaluation images (95 % bootstrap
    intervals)."""
    per_reference: dict[str, dict[str, list[float]]] = {
        name: {measure: [] for measure in AGREEMENT_MEASURES} for name in references}
    student[0].eval()
    for image in images:
        models = [student] + list(references.values())
        maps = exact_maps_on_common_grid(models, image, image.gt_class, device)
        for name, reference_map in zip(references, maps[1:]):
            agreement = map_agreement(maps[0], reference_map)
            for measure, values in per_reference[name].items():
                values.append(getattr(agreement, measure))
    out = {}
    for name, measures in per_reference.items():
        out[name] = {}
        for measure, values in measures.items():
            interval = summarize_agreement(values)
            out[name][measure] = None if interval is None else {
                "mean": round(interval.mean, 4), "ci95": [round(interval.low, 4),
                                                          round(interval.high, 4)],
                "images": interval.n}
    return out
