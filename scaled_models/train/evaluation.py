"""What a checkpoint's metadata reports about the model, measured on images it was not fit to:
its top-1 beside the model it started from and the baseline on the *same* images, with 95 %
intervals and the paired test, and how close its maps are to the baseline's and the teacher's.

The evaluation images are either a seeded held-out part of the training folder
(``data.holdout_split``) or a separate labelled folder (``--eval-dir``). A comparison keeps every
image's outcome, so its statistics can be recomputed from the checkpoint's JSON alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cam.engine.inputs import CamImage, image_from_path, image_from_sample
from cam.eval.agreement import (
    AGREEMENT_MEASURES,
    exact_maps_on_common_grid,
    map_agreement,
    summarize_agreement,
)
from cam.eval.stats import PairedDifference, bootstrap_mean_ci, paired_difference
from safe_io.imagenet_val import AnnotationError, ValDataset, open_val_dir
from safe_io.images import ImageLoadError

from ..architectures import CamNet
from ..preprocessing import Preprocessing
from .config import TrainConfig
from .data import HoldoutSplit, ImageSet, holdout_split

Model = tuple[CamNet, Preprocessing]


def eval_dataset(eval_dir: Path) -> ValDataset:
    """``--eval-dir`` scanned (annotations only, no photo decoded), or a stop naming the option,
    the folder and what is wrong with it (missing, unlabelled, an unknown wnid, no image)."""
    try:
        dataset = open_val_dir(eval_dir)
    except (AnnotationError, OSError) as exc:
        raise SystemExit(f"--eval-dir: {exc}") from None
    if not dataset.samples:
        raise SystemExit(f"--eval-dir: {eval_dir} holds no labelled image to judge the model on"
                         + (f" ({len(dataset.skipped)} files without a label)"
                            if dataset.skipped else ""))
    return dataset


def eval_images(dataset: ValDataset) -> list[CamImage]:
    """The labelled images of an evaluation folder; a file the decoder refuses is named and
    left out."""
    images = []
    for sample in dataset.samples:
        try:
            images.append(image_from_sample(sample))
        except ImageLoadError as exc:
            print(f"skipped {exc}", flush=True)
    if not images:
        raise SystemExit(f"--eval-dir: {dataset.root}: no usable labelled image to evaluate on")
    return images


def held_out_images(images: ImageSet) -> list[CamImage]:
    """The held-out photos of a labelled training folder, named by their path in it; a file the
    decoder refuses is named and left out."""
    if images.labels is None:
        raise SystemExit(f"{images.root}: held-out photos need labels (photos in wnid folders) "
                         "to be judged; pass --holdout 0, or --eval-dir with labelled images")
    out = []
    for path, label, name in zip(images.paths, images.labels, images.relative()):
        try:
            out.append(image_from_path(path, gt_class=label, image_id=name))
        except ImageLoadError as exc:
            print(f"skipped {exc}", flush=True)
    if not out:
        raise SystemExit(f"{images.root}: no usable held-out photo to evaluate on")
    return out


@dataclass(frozen=True)
class EvaluationSet:
    """The labelled images a model is judged on, none of which it is fit to, and where they
    come from (a held-out split of the training folder, or a separate folder). The images are
    decoded in the main process only (elsewhere the list is empty); the record, with the
    files' fingerprint, is the same in every process."""

    images: list[CamImage]
    record: dict
    files: tuple[Path, ...] = ()  # every file judged on (all processes): fit_photos leaves
    root: Path | None = None  # their twins out of the photos fitted, by content

    @property
    def identity(self) -> str:
        """What ``--resume`` compares: which files judge the model (a run judged on other
        images cannot be continued under the same name: its start and trained top-1 would
        pair different photos)."""
        return f"{self.record['kind']} images, fingerprint {self.record['fingerprint'][:16]}"


def evaluation_set(config: TrainConfig, found: ImageSet, decode: bool
                   ) -> tuple[ImageSet, HoldoutSplit | None, EvaluationSet | None]:
    """The training photos, the split they come from (if any) and what the model is judged on,
    from ``--holdout`` and ``--eval-dir``. Evaluation images are decoded only when ``decode``
    (the main process)."""
    if config.holdout and config.eval_dir is not None:
        raise SystemExit("--holdout and --eval-dir are two ways to choose the images a model "
                         "is judged on: give one (DATA with train/ and val/ is judged on val/)")
    fraction = config.holdout_fraction(found.labels is not None)
    if fraction:
        split = holdout_split(found, fraction, config.seed)
        images = held_out_images(split.held_out) if decode else []
        return split.train, split, EvaluationSet(images, {  # the split: metadata's "data"
            "kind": "held-out", "folder": found.root.name, "path": str(found.root),
            "images": len(images), "fingerprint": split.held_out.fingerprint},
            split.held_out.paths, found.root)
    if config.eval_dir is not None:
        dataset = eval_dataset(config.eval_dir)
        listed = ImageSet(dataset.root, tuple(s.path for s in dataset.samples),
                          tuple(s.class_index for s in dataset.samples))
        images = eval_images(dataset) if decode else []
        return found, None, EvaluationSet(images, {
            "kind": "folder", "folder": config.eval_dir.name, "path": str(config.eval_dir),
            "images": len(images), "fingerprint": listed.fingerprint},
            listed.paths, listed.root)
    return found, None, None


def not_judged_reason(config: TrainConfig, found: ImageSet) -> str:
    """Why a run has no images to judge its model on, in words for its log and checkpoint."""
    if config.holdout == 0:
        return "--holdout 0 and no --eval-dir: nothing was held out to judge the model on"
    return (f"the photos of {found.root} are unlabelled (not in ImageNet wnid folders) and no "
            "--eval-dir was given")


@dataclass(frozen=True)
class Outcomes:
    """One model's result on each evaluation image, in the images' order: whether its top-1
    and top-5 contain the label, and the probability of its top-1 class."""

    top1: tuple[bool, ...]
    top5: tuple[bool, ...]
    top1_prob: tuple[float, ...]

    def summary(self) -> dict:
        """Top-1 and top-5 in percent, top-1's 95 % bootstrap interval, the mean top-1
        probability, the number of images, and the per-image top-1 as a 0/1 string (what a
        paired test needs, in ~n bytes)."""
        top1 = bootstrap_mean_ci(np.array(self.top1, dtype=float))
        return {"images": len(self.top1), "top1": round(100 * top1.mean, 2),
                "top1_ci95": [round(100 * top1.low, 2), round(100 * top1.high, 2)],
                "top5": round(100 * float(np.mean(self.top5)), 2),
                "mean_top1_prob": round(float(np.mean(self.top1_prob)), 4),
                "top1_per_image": "".join("1" if right else "0" for right in self.top1)}


@torch.no_grad()
def outcomes(model: Model, images: list[CamImage], device: torch.device,
             batch_size: int = 16) -> Outcomes:
    """Run ``model`` (in eval mode, float32) on every image with its own preprocessing."""
    net, preprocessing = model
    net.eval()
    top1, top5, confidence = [], [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        batch = torch.stack([preprocessing(i.image) for i in chunk]).to(device)
        best = net(batch).float().softmax(1).cpu().topk(5, dim=1)
        labels = torch.tensor([i.gt_class for i in chunk])
        top1 += (best.indices[:, 0] == labels).tolist()
        top5 += (best.indices == labels[:, None]).any(1).tolist()
        confidence += best.values[:, 0].tolist()
    return Outcomes(tuple(top1), tuple(top5), tuple(confidence))


def _difference(a: Outcomes, b: Outcomes) -> PairedDifference:
    return paired_difference(a.top1, b.top1, binary=True)


def _difference_record(diff: PairedDifference, a_name: str, b_name: str) -> dict:
    return {"top1_points": round(100 * diff.mean, 2),
            "ci95": [round(100 * diff.low, 2), round(100 * diff.high, 2)],
            "mcnemar_p": diff.p, f"{a_name}_only": diff.a_only, f"{b_name}_only": diff.b_only,
            "distinguishable": diff.distinguishable,
            "sentence": diff.sentence(a_name, b_name, "top-1", points=True)}


def verdict(diff: PairedDifference) -> str:
    """In words, from the paired top-1 difference trained − start: is the trained model better
    than the model it started from?"""
    if diff.distinguishable and diff.mean > 0:
        return "better than its start"
    if diff.distinguishable:
        return "worse than its start"
    return "not better than its start (the difference is within chance)"


def comparison(trained: Outcomes, start: Outcomes, baseline: Outcomes | None, on: dict,
               without_ema: Outcomes | None = None) -> dict:
    """The held-out record a checkpoint carries: the three models' summaries on the same
    images, the paired differences trained − start and trained − baseline (exact McNemar), and
    the verdict. ``baseline`` is ``None`` when it could not be run (``on["baseline_missing"]``
    then says why). With ``without_ema`` (the student itself, when the model written is its
    moving average) the record also says what the average changed, on the same images."""
    gain = _difference(trained, start)
    record = {"on": on, "images": len(trained.top1), "trained": trained.summary(),
              "start": start.summary(), "verdict": verdict(gain),
              "trained_minus_start": _difference_record(gain, "trained", "start")}
    if baseline is not None:
        record["baseline"] = baseline.summary()
        record["trained_minus_baseline"] = _difference_record(
            _difference(trained, baseline), "trained", "baseline")
    if without_ema is not None:
        record["without_ema"] = without_ema.summary() | {
            "ema_minus_without": _difference_record(_difference(trained, without_ema), "ema",
                                                    "without")}
    return record


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
