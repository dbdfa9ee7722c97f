"""Turn Figure 7 into numbers: per-image metrics and map agreement for every model, streamed to
resumable CSVs.

Maps are compared where the grid shows them: each image's common region (the intersection of
the models' crops) at ``EVAL_SIZE`` pixels, with the ground-truth boxes mapped into it, so every
model is scored on the same pixels and boxes. Localization uses the ground-truth class's map, as
in the CAM paper; deletion/insertion perturb each model's own input crop. ``summary`` turns the
rows into means, intervals, paired differences and the agreement matrix.

A run writes ``OUT.csv`` (one ``MetricRow`` per image and model) and ``OUT.agreement.csv`` (one
``AgreementRow`` per image and pair of models); ``rows`` is their schema and CSV form.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from cam.engine.engine import LOW_CONFIDENCE, CamEngine, CamResult
from cam.engine.geometry import boxes_in_region, image_region, map_in_region, region_photo
from cam.engine.inputs import CamImage, image_from_sample
from cam.engine.methods import CamMethod
from cam.engine.targets import GROUND_TRUTH, Target
from cam.eval import metrics
from cam.eval.agreement import EVAL_SIZE, map_agreement
from cam.eval.chunked import append_rows, check_resume, merge_parts, run_chunks
from cam.eval.layout import RunFiles, rank_part
from cam.eval.map_export import ImageArrays, MapWriter
from cam.eval.rows import AgreementRow, BoxHits, CsvRow, MetricRow, read_rows
from safe_io.imagenet_val import ValDataset, ValSample
from safe_io.images import ImageLoadError
from safe_io.storage import write_json
from scaled_models.zoo import LoadedModel

# Deletion/insertion curve steps: a full evaluation's, and a quick one's (the report and the
# app, where the user waits for the answer; half the forward passes).
FAITHFULNESS_STEPS = 16
QUICK_FAITHFULNESS_STEPS = 8


def _score_fn(engine: CamEngine, model: LoadedModel, target: int) -> Callable:
    def score(frames: np.ndarray) -> np.ndarray:
        return engine.class_probability(model.key, frames, target)
    return score


def _metric_row(engine: CamEngine, image: CamImage, model: LoadedModel, result: CamResult,
                cam: np.ndarray, gt_boxes: list, method: str, faithfulness_steps: int
                ) -> MetricRow:
    top5 = [c for c, _ in result.top5]
    correct = result.pred_class == image.gt_class
    located = bool(metrics.gt_known_loc(cam, gt_boxes)) if gt_boxes else None
    box = metrics.cam_to_box(cam)
    faithfulness = None
    if faithfulness_steps:
        crop = np.asarray(model.preprocessing.crop(image.image), dtype=np.float32) / 255.0
        deletion, insertion = metrics.deletion_insertion_auc(
            _score_fn(engine, model, result.target_class), crop, result.upsampled(),
            fill=model.preprocessing.mean, steps=faithfulness_steps)
        faithfulness = metrics.normalised_faithfulness(deletion, insertion, result.target_prob)
    return MetricRow(
        image_id=image.image_id, model=model.key, method=method,
        family=model.provenance.family, target_class=int(result.target_class),
        gt_class=int(image.gt_class), pred_class=int(result.pred_class),
        pred_prob=float(result.pred_prob), target_prob=float(result.target_prob),
        low_confidence=bool(result.target_prob < LOW_CONFIDENCE),
        top1_correct=bool(correct), top5_correct=image.gt_class in top5,
        gt_known_loc=located, top1_loc=located and bool(correct) if gt_boxes else None,
        loc_iou=max((metrics.box_iou(box, g) for g in gt_boxes), default=None),
        pointing_hit=bool(metrics.pointing_hit(cam, gt_boxes)) if gt_boxes else None,
        energy_in_box=metrics.energy_in_boxes(cam, gt_boxes) if gt_boxes else None,
        deletion_auc=None if faithfulness is None else faithfulness.deletion_auc,
        insertion_auc=None if faithfulness is None else faithfulness.insertion_auc,
        deletion_auc_norm=None if faithfulness is None else faithfulness.deletion_auc_norm,
        insertion_auc_norm=None if faithfulness is None else faithfulness.insertion_auc_norm,
        box_hits=BoxHits(metrics.box_hits(metrics.best_iou_per_threshold(cam, gt_boxes)))
        if gt_boxes else None)


def image_rows(engine: CamEngine, image: CamImage, results: dict[str, CamResult],
               models: Sequence[LoadedModel], method: str, faithfulness_steps: int,
               arrays: Callable[[ImageArrays], None] | None = None
               ) -> tuple[list[MetricRow], list[AgreementRow]]:
    """One image's rows: metric rows (one per model, labelled images only) and agreement rows
    (one per pair of models that produced a map). ``arrays``, if given, receives the labelled
    image's maps, photo and box mask on the grid the rows were computed on."""
    region = image_region(image, models)
    gt_boxes = boxes_in_region(image.boxes, region, EVAL_SIZE)
    shown = [m for m in models if m.key in results]
    maps = {m.key: map_in_region(results[m.key].raw_map, results[m.key].crop_box, region,
                                 EVAL_SIZE) for m in shown}
    if arrays is not None and image.gt_class is not None:
        arrays(ImageArrays(
            image.image_id, region_photo(image, region, EVAL_SIZE), int(image.gt_class),
            metrics.box_mask(gt_boxes, (EVAL_SIZE, EVAL_SIZE)), maps,
            {k: int(results[k].pred_class) for k in maps},
            {k: int(results[k].target_class) for k in maps}))
    metric_rows = [] if image.gt_class is None else [
        _metric_row(engine, image, m, results[m.key], maps[m.key], gt_boxes, method,
                    faithfulness_steps) for m in shown]
    agreement_rows = []
    for a, b in combinations(shown, 2):
        agreement = map_agreement(maps[a.key], maps[b.key])
        agreement_rows.append(AgreementRow(
            image_id=image.image_id, method=method, model_a=a.key, model_b=b.key,
            class_a=int(results[a.key].target_class), class_b=int(results[b.key].target_class),
            spearman=float(agreement.spearman), top20_iou=float(agreement.top20_iou)))
    return metric_rows, agreement_rows


def runnable(engine: CamEngine, method: CamMethod, model_keys: Sequence[str] | None = None
             ) -> list[LoadedModel]:
    """The selected models that have weights and that ``method`` is defined for."""
    return [m for m in engine.zoo.available() if (model_keys is None or m.key in model_keys)
            and not engine.cannot_run(m, method)]


def evaluate_images(engine: CamEngine, images: Sequence[CamImage], method: CamMethod,
                    model_keys: Sequence[str] | None = None,
                    faithfulness_steps: int = FAITHFULNESS_STEPS,
                    target: Target = GROUND_TRUTH,
                    progress: Callable[[int, int], None] | None = None,
                    arrays: Callable[[ImageArrays], None] | None = None
                    ) -> tuple[list[MetricRow], list[AgreementRow]]:
    """Metric and agreement rows for images already in memory (the app, the report). Maps
    explain ``target``: by default the ground truth, and for unlabelled images each model's
    prediction (or the fallback class of ``Target.ground_truth_or``). ``progress(done, total)``
    is called after each image; ``arrays`` as in ``image_rows``."""
    models = runnable(engine, method, model_keys)
    results = engine.compute(images, method, target, [m.key for m in models])
    metric_rows, agreement_rows = [], []
    for done, image in enumerate(images, 1):
        per_model = {m.key: results[(image.key, m.key)] for m in models
                     if (image.key, m.key) in results}
        rows, pairs = image_rows(engine, image, per_model, models, method.key,
                                 faithfulness_steps, arrays)
        metric_rows += rows
        agreement_rows += pairs
        if progress is not None:
            progress(done, len(images))
    return metric_rows, agreement_rows


def evaluate_samples(engine: CamEngine, samples: Sequence[ValSample], method: CamMethod,
                     batch_size: int = 16, faithfulness_steps: int = FAITHFULNESS_STEPS,
                     progress: Callable[[int], None] | None = None
                     ) -> tuple[list[MetricRow], list[AgreementRow], list[tuple[str, str]]]:
    """Rows of validation samples, decoded and scored ``batch_size`` at a time (a whole
    validation set decoded at once would not fit), in memory: what a report measures.
    Returns (metric rows, agreement rows, (file, reason) of each sample that could not be read);
    ``progress(samples done)`` after each chunk. ``run_evaluation`` is the same, streamed to
    files and resumable."""
    rows: list[MetricRow] = []
    agreement: list[AgreementRow] = []
    skipped: list[tuple[str, str]] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        images = []
        for sample in chunk:
            try:
                images.append(image_from_sample(sample))
            except ImageLoadError as exc:
                skipped.append((str(sample.path), str(exc)))
        new_rows, new_agreement = evaluate_images(engine, images, method,
                                                  faithfulness_steps=faithfulness_steps)
        rows += new_rows
        agreement += new_agreement
        if progress is not None:
            progress(len(chunk))
    return rows, agreement, skipped


@dataclass
class EvaluationReport:
    rows: list[MetricRow]
    agreement_rows: list[AgreementRow] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    computed_images: int = 0
    # --save-maps: merges the run's maps into one .npz per model and returns the files; the
    # caller calls it once the results (CSVs, summary) are written, since the maps are an extra
    write_maps: Callable[[], list[Path]] | None = None


def run_evaluation(engine: CamEngine, dataset: ValDataset, out: Path, method: CamMethod,
                   model_keys: Sequence[str] | None = None, limit: int | None = None,
                   batch_size: int = 16, resume: bool = False,
                   faithfulness_steps: int = FAITHFULNESS_STEPS,
                   rank: int = 0, world_size: int = 1, progress: bool = True,
                   save_maps: bool = False,
                   stop_after_batches: int | None = None) -> EvaluationReport:
    """Evaluate ``dataset`` into ``out`` (CSV) and its agreement CSV. Work is split in fixed
    chunks of ``batch_size`` images; a chunk is redone whole if any of its rows is missing, so a
    resumed run computes exactly what an uninterrupted one would. ``save_maps`` also keeps each
    model's maps as ``map_export`` describes, shard by shard after each chunk's rows, and
    returns their merge as ``write_maps``; a chunk whose rows exist but whose maps do not has
    its maps made again without its rows (no deletion curves, the costly part).
    ``stop_after_batches`` simulates an interruption (tests)."""
    from torch.utils.data import DistributedSampler

    samples = dataset.samples[:limit] if limit else list(dataset.samples)
    models = runnable(engine, method, model_keys)
    keys = [m.key for m in models]
    tables: tuple[tuple[Path, type[CsvRow]], ...] = (
        (out, MetricRow), (RunFiles(out).agreement, AgreementRow))

    def part(path: Path, r: int = rank) -> Path:
        return rank_part(path, r, world_size)

    options = {"family": engine.zoo.family.name, "ladder": engine.zoo.ladder.name,
               "method": method.key,
               "faithfulness_steps": faithfulness_steps,
               "cam_threshold_step": metrics.CAM_THRESHOLD_STEP,
               "metric_definitions": metrics.DEFINITIONS_VERSION,
               "weights": {m.key: m.provenance.sha256 for m in models}}
    if resume:
        check_resume(out, options)
    else:
        for path, _ in tables:
            part(path).unlink(missing_ok=True)
    if rank == 0:
        write_json(RunFiles(out).options, options)
    done = {r.key() for path, row_type in tables
            for r in read_rows(path, row_type) + (read_rows(part(path), row_type)
                                                  if part(path) != path else [])
            } if resume else set()

    def complete(sample: ValSample) -> bool:
        metric_done = all(MetricRow.key_of(image_id=sample.image_id, model=k,
                                           method=method.key) in done for k in keys)
        pairs_done = all(AgreementRow.key_of(image_id=sample.image_id, method=method.key,
                                             model_a=a, model_b=b) in done
                         for a, b in combinations(keys, 2))
        return metric_done and pairs_done

    indices = list(DistributedSampler(range(len(samples)), num_replicas=world_size, rank=rank,
                                      shuffle=False)) if world_size > 1 else range(len(samples))
    shard = [samples[i] for i in indices]
    written: tuple[list, list] = ([], [])  # this run's rows, in the order they were written
    writer = MapWriter(out)
    if not resume:  # an earlier run's maps never join this run's, --save-maps or not
        writer.clear(rank, world_size)

    def pending(start: int, chunk: Sequence[ValSample]) -> bool:
        return (not all(complete(s) for s in chunk)
                or (save_maps and not writer.has(writer.shard_name(rank, start))))

    def work(start: int, chunk: Sequence[ValSample], images: list[CamImage]) -> None:
        rows_done = all(complete(s) for s in chunk)
        kept: list[ImageArrays] = []
        new = evaluate_images(engine, images, method, keys,
                              0 if rows_done else faithfulness_steps,
                              arrays=kept.append if save_maps else None)
        if not rows_done:
            for (path, row_type), rows, kept_rows in zip(tables, new, written):
                fresh = [r for r in rows if r.key() not in done]
                append_rows(part(path), fresh, row_type)
                kept_rows += fresh
        if save_maps:  # after the rows: they are the result, the maps an extra
            writer.write(writer.shard_name(rank, start), kept, keys)

    loop = run_chunks(shard, batch_size, pending, work, f"evaluate {method.key}", progress,
                      stop_after_batches)
    report = EvaluationReport([], skipped=loop.skipped, computed_images=loop.computed_images)
    if loop.stopped:
        return report
    if world_size > 1:
        torch.distributed.barrier()
        if rank != 0:
            return report
    if world_size == 1 and not resume:
        # a fresh run's rows went to its files once, image by image in the dataset's order and
        # models in the ladder's: they are the result as written
        report.rows, report.agreement_rows = written
    else:
        report.rows, report.agreement_rows = (
            merge_parts(path, row_type, [part(path, r) for r in range(world_size)]
                        if world_size > 1 else [], world_size == 1 or resume, samples,
                        [m.key for m in engine.zoo.models])
            for path, row_type in tables)
    if save_maps:
        report.write_maps = _maps_merger(writer, samples, keys, models)
    return report


def _maps_merger(writer: MapWriter, samples: Sequence[ValSample], keys: list[str],
                 models: Sequence[LoadedModel]) -> Callable[[], list[Path]]:
    """The ``--save-maps`` merge, to be called once the results are written."""
    order = [s.image_id for s in samples]
    provenance = {m.key: m.summary() for m in models}
    return lambda: writer.merge(order, keys, provenance)
