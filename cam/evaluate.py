"""Turn Figure 7 into numbers: per-image metrics for every model, streamed to a resumable CSV.

Maps are compared where the grid shows them: each image's common region (the intersection of
the models' crops) at ``EVAL_SIZE`` pixels, with the ground-truth boxes mapped into it, so every
model is scored on the same pixels and boxes. Localization uses the ground-truth class's map
(target ``gt``), as in the CAM paper; deletion/insertion perturb each model's own input crop.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scaled_models.storage import atomic_write
from scaled_models.zoo import LoadedModel

from . import metrics
from .data import ValDataset, ValSample
from .engine import CamEngine, CamResult
from .geometry import boxes_in_region, image_region, map_in_region
from .images import ImageLoadError
from .inputs import CamImage, image_from_sample
from .targets import GROUND_TRUTH

EVAL_SIZE = 224
FLOAT_DIGITS = 6
COLUMNS = ("image_id", "model", "method", "family", "target_class", "gt_class", "pred_class",
           "pred_prob", "target_prob", "top1_correct", "top5_correct", "gt_known_loc",
           "top1_loc", "loc_iou", "pointing_hit", "energy_in_box", "deletion_auc",
           "insertion_auc", "best_iou_by_threshold")
SUMMARY_METRICS = (("top1", "Top-1"), ("top5", "Top-5"), ("gt_known_loc", "GT-known Loc"),
                   ("top1_loc", "Top-1 Loc"), ("maxboxacc_v2", "MaxBoxAccV2"),
                   ("pointing", "Pointing game"), ("energy", "Energy in box"),
                   ("deletion_auc", "Deletion AUC ↓"), ("insertion_auc", "Insertion AUC ↑"))


def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.{FLOAT_DIGITS}f}"
    return "" if value is None else str(value)


def _score_fn(engine: CamEngine, model: LoadedModel, target: int) -> Callable:
    def score(frames: np.ndarray) -> np.ndarray:
        return engine.class_probability(model.key, frames, target)
    return score


def image_rows(engine: CamEngine, image: CamImage, results: dict[str, CamResult],
               models: Sequence[LoadedModel], method: str, faithfulness_steps: int) -> list[dict]:
    """The CSV rows of one image: one per model that produced a map."""
    region = image_region(image, models)
    gt_boxes = boxes_in_region(image.boxes, region, EVAL_SIZE)
    rows = []
    for model in models:
        result = results.get(model.key)
        if result is None:
            continue
        cam = map_in_region(result.raw_map, result.crop_box, region, EVAL_SIZE)
        top5 = [c for c, _ in result.top5]
        correct = image.gt_class is not None and result.pred_class == image.gt_class
        located = metrics.gt_known_loc(cam, gt_boxes) if gt_boxes else None
        box = metrics.cam_to_box(cam)
        row = {
            "image_id": image.image_id, "model": model.key, "method": method,
            "family": model.provenance.family, "target_class": result.target_class,
            "gt_class": image.gt_class, "pred_class": result.pred_class,
            "pred_prob": result.pred_prob, "target_prob": result.target_prob,
            "top1_correct": correct, "top5_correct": image.gt_class in top5,
            "gt_known_loc": located, "top1_loc": (located and correct) if gt_boxes else None,
            "loc_iou": max((metrics.box_iou(box, g) for g in gt_boxes), default=None),
            "pointing_hit": metrics.pointing_hit(cam, gt_boxes) if gt_boxes else None,
            "energy_in_box": metrics.energy_in_boxes(cam, gt_boxes) if gt_boxes else None,
            "deletion_auc": None, "insertion_auc": None,
            "best_iou_by_threshold": " ".join(
                f"{v:.3f}" for v in metrics.best_iou_per_threshold(cam, gt_boxes))
            if gt_boxes else "",
        }
        if faithfulness_steps:
            crop = np.asarray(model.preprocessing.crop(image.image), dtype=np.float32) / 255.0
            row["deletion_auc"], row["insertion_auc"] = metrics.deletion_insertion_auc(
                _score_fn(engine, model, result.target_class), crop, result.upsampled(),
                steps=faithfulness_steps)
        rows.append(row)
    return rows


def evaluate_images(engine: CamEngine, images: Sequence[CamImage], method: str,
                    model_keys: Sequence[str] | None = None, faithfulness_steps: int = 16
                    ) -> list[dict]:
    """Rows for images already in memory (the app's Evaluate view)."""
    models = [m for m in engine.zoo.available() if model_keys is None or m.key in model_keys]
    results = engine.compute(images, method, GROUND_TRUTH, [m.key for m in models])
    rows = []
    for image in images:
        per_model = {m.key: results[(image.key, m.key)] for m in models
                     if (image.key, m.key) in results}
        rows.extend(image_rows(engine, image, per_model, models, method, faithfulness_steps))
    return rows


# --- summary -----------------------------------------------------------------------------

def _mean(rows: list[dict], column: str) -> float | None:
    values = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
    return float(np.mean(values)) if values else None


def summarize(rows: list[dict]) -> list[dict]:
    """Per (model, method): means of the per-image metrics plus dataset-level MaxBoxAccV2."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["method"]), []).append(row)
    summary = []
    for (model, method), group in groups.items():
        best = [np.array(r["best_iou_by_threshold"].split(), dtype=np.float64)
                if isinstance(r["best_iou_by_threshold"], str) else r["best_iou_by_threshold"]
                for r in group if len(r.get("best_iou_by_threshold") or "")]
        per_iou = metrics.maxboxacc_from_best_ious(best) if best else {}
        summary.append({
            "model": model, "method": method, "images": len(group),
            "top1": _mean(group, "top1_correct"), "top5": _mean(group, "top5_correct"),
            "gt_known_loc": _mean(group, "gt_known_loc"), "top1_loc": _mean(group, "top1_loc"),
            "maxboxacc_v2": float(np.mean(list(per_iou.values()))) if per_iou else None,
            "maxboxacc": per_iou,
            "pointing": _mean(group, "pointing_hit"), "energy": _mean(group, "energy_in_box"),
            "deletion_auc": _mean(group, "deletion_auc"),
            "insertion_auc": _mean(group, "insertion_auc"),
        })
    order = {k: i for i, k in enumerate(("baseline", "depth", "width", "resolution", "compound"))}
    return sorted(summary, key=lambda s: (s["method"], order.get(s["model"], 99)))


def summary_markdown(summary: list[dict]) -> str:
    header = "| Model | Method | Images | " + " | ".join(label for _, label in SUMMARY_METRICS)
    lines = [header + " |", "|" + "---|" * (3 + len(SUMMARY_METRICS))]
    for s in summary:
        cells = []
        for key, _ in SUMMARY_METRICS:
            value = s[key]
            percent = key not in ("deletion_auc", "insertion_auc", "energy")
            cells.append("—" if value is None else
                         f"{100 * value:.1f}" if percent else f"{value:.3f}")
        lines.append(f"| {s['model']} | {s['method']} | {s['images']} | " + " | ".join(cells)
                     + " |")
    maxbox = [s for s in summary if s["maxboxacc"]]
    notes = ["Percentages except energy and AUCs (fractions). Localization uses the "
             "ground-truth class's map in each image's common region at 224 px."]
    for s in maxbox:
        per = ", ".join(f"δ={d}: {100 * v:.1f}" for d, v in s["maxboxacc"].items())
        notes.append(f"MaxBoxAcc {s['model']}/{s['method']}: {per}")
    return "\n".join(lines + [""] + notes)


def summary_plot(summary: list[dict]) -> bytes:
    """PNG bytes: grouped bars, one group per metric, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(k, label) for k, label in SUMMARY_METRICS if any(s[k] is not None for s in summary)]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.25 * len(shown) + 2), 3.6), dpi=150)
    width = 0.8 / max(len(summary), 1)
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, max(len(summary), 1)))
    for i, (s, colour) in enumerate(zip(summary, colours)):
        values = [s[k] if s[k] is not None else 0.0 for k, _ in shown]
        bars = ax.bar(np.arange(len(shown)) + (i - (len(summary) - 1) / 2) * width, values,
                      width, label=f"{s['model']} ({s['method']})", color=colour)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=5, padding=1)
    ax.set_xticks(np.arange(len(shown)), [label for _, label in shown], fontsize=7,
                  rotation=15)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score (fraction)")
    ax.set_title(f"CAM metrics per model — {summary[0]['images'] if summary else 0} images",
                 fontsize=9)
    ax.legend(fontsize=6, ncol=min(len(summary), 5), loc="upper center",
              bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


# --- streaming, resumable, distributable runs ---------------------------------------------

def read_rows(path: Path) -> list[dict]:
    """Rows of a results CSV; a torn last line (a run killed mid-write) is ignored."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(io.StringIO(text)))
    return [r for r in rows if r.get("best_iou_by_threshold") is not None]


def _append(path: Path, rows: list[dict]) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    if path.is_file() and path.stat().st_size:
        text = path.read_bytes()
        if not text.endswith(b"\n"):  # drop a torn line before appending
            with path.open("r+b") as fh:
                fh.truncate(text.rfind(b"\n") + 1)
    with path.open("a", newline="", encoding="utf-8") as fh:
        write_csv(fh, rows, header=new)
        fh.flush()
        os.fsync(fh.fileno())


def _canonical(rows: list[dict], samples: Sequence[ValSample]) -> list[dict]:
    order = {s.image_id: i for i, s in enumerate(samples)}
    models = {k: i for i, k in enumerate(("baseline", "depth", "width", "resolution", "compound"))}
    unique = {(r["image_id"], r["model"], r["method"]): r for r in rows}
    return sorted(unique.values(), key=lambda r: (order.get(r["image_id"], 1 << 30),
                                                  r["method"], models.get(r["model"], 99)))


def write_csv(fh, rows: list[dict], header: bool = True) -> None:
    """Rows in the results format (fixed columns, booleans as 0/1, fixed float digits)."""
    writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows({k: _fmt(r.get(k)) for k in COLUMNS} for r in rows)


def _write_all(path: Path, rows: list[dict]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            write_csv(fh, rows)
    atomic_write(path, write)


@dataclass
class EvaluationReport:
    rows: list[dict]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    computed_images: int = 0


def run_evaluation(engine: CamEngine, dataset: ValDataset, out: Path, method: str,
                   model_keys: Sequence[str] | None = None, limit: int | None = None,
                   batch_size: int = 16, resume: bool = False, faithfulness_steps: int = 16,
                   rank: int = 0, world_size: int = 1, progress: bool = True,
                   stop_after_batches: int | None = None) -> EvaluationReport:
    """Evaluate ``dataset`` into ``out`` (CSV). Work is split in fixed chunks of
    ``batch_size`` images; a chunk is redone whole if any of its rows is missing, so a resumed
    run computes exactly what an uninterrupted one would. ``stop_after_batches`` simulates an
    interruption (tests)."""
    from torch.utils.data import DistributedSampler
    from tqdm import tqdm

    samples = dataset.samples[:limit] if limit else list(dataset.samples)
    models = [m for m in engine.zoo.available() if model_keys is None or m.key in model_keys]
    keys = [m.key for m in models]
    part = out if world_size == 1 else out.with_name(f"{out.name}.part{rank}")
    if not resume:
        for stale in (part,) if world_size > 1 else (out,):
            stale.unlink(missing_ok=True)
    done = {(r["image_id"], r["model"], r["method"])
            for r in read_rows(out) + (read_rows(part) if part != out else [])} if resume else set()
    indices = list(DistributedSampler(range(len(samples)), num_replicas=world_size, rank=rank,
                                      shuffle=False)) if world_size > 1 else range(len(samples))
    shard = [samples[i] for i in indices]
    report = EvaluationReport([])
    bar = tqdm(total=len(shard), unit="img", desc=f"evaluate {method}", disable=not progress,
               dynamic_ncols=True)
    batches = 0
    for start in range(0, len(shard), batch_size):
        chunk = shard[start:start + batch_size]
        missing = [s for s in chunk if any((s.image_id, k, method) not in done for k in keys)]
        if missing:
            images = []
            for sample in chunk:
                try:
                    images.append(image_from_sample(sample))
                except ImageLoadError as exc:
                    report.skipped.append((str(sample.path), str(exc)))
            rows = [r for r in evaluate_images(engine, images, method, keys, faithfulness_steps)
                    if (r["image_id"], r["model"], r["method"]) not in done]
            _append(part, rows)
            report.computed_images += len(images)
            batches += 1
        bar.update(len(chunk))
        if stop_after_batches is not None and batches >= stop_after_batches:
            bar.close()
            return report
    bar.close()
    if world_size > 1:
        torch.distributed.barrier()
        if rank != 0:
            return report
        merged = read_rows(out) if resume else []
        for r in range(world_size):
            piece = out.with_name(f"{out.name}.part{r}")
            merged += read_rows(piece)
            piece.unlink(missing_ok=True)
        rows = _canonical(merged, samples)
    else:
        rows = _canonical(read_rows(out), samples)
    _write_all(out, rows)
    report.rows = rows
    return report
