"""``cam evaluate --sanity``: the sanity checks (``sanity``) of every image of a validation
folder, streamed to a resumable CSV beside the evaluation's.

``OUT.sanity.csv`` holds one ``SanityRow`` per image, model and method;
``OUT.sanity.options.json`` what made them (family, method, seed, granularity, definitions,
weights), so ``--resume`` refuses to add rows made otherwise, exactly as the evaluation's own
rows are guarded (``evaluate``). Work goes in fixed chunks of ``batch_size`` images; a chunk
with a missing row is redone whole. With ``save_maps`` each chunk's maps are kept as a shard and
merged at the end into ``OUT.sanity.maps.<model>.npz``:

- ``image_ids`` N str, ``steps`` S str (cascade order: ``fc``, ``head``, ``block n``, …,
  ``stem``), ``seed``;
- ``target_class`` N (the trained model's prediction, which every cascade map explains),
  ``random_class`` N (the random-logit class);
- ``trained`` N×h×w, ``cascade`` N×S×h×w and ``random_logit`` N×h×w float32: the raw maps at the
  model's feature resolution, as the method computed them (7×7 for Lite0 at 224 px);
- ``crop_box`` N×4: the model's input crop in photo pixels (x0, y0, x1, y1).

A map is compared where ``sanity.CascadeMaps.on_grid`` puts it: bilinear onto 224 × 224 pixels
of the crop, which for these centred square crops is ``cv2.resize(map, (224, 224))``; so
Spearman of the absolute resized maps of ``trained[i]`` and ``cascade[i, s]`` is the CSV's
``spearman_abs`` at step s.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cam.engine.engine import CamEngine
from cam.engine.inputs import CamImage
from cam.engine.methods import CamMethod
from cam.eval.chunked import append_rows, check_resume, merge_parts, run_chunks
from cam.eval.layout import RunFiles, rank_part
from cam.eval.rows import SanityRow, read_rows
from cam.eval.run import runnable
from cam.eval.sanity import SANITY_DEFINITIONS_VERSION, SEED, CascadeMaps, cascade_maps, sanity_row
from safe_io.imagenet_val import ValDataset, ValSample
from safe_io.storage import write_json
from scaled_models.architectures import CamNet


@dataclass
class SanityReport:
    rows: list[SanityRow]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    computed_images: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # model → seconds spent on it
    write_maps: Callable[[], list[Path]] | None = None  # as EvaluationReport.write_maps


def _shard_name(rank: int, start: int) -> str:
    """The shard of the chunk that starts at ``start`` of ``rank``'s samples."""
    return f"{rank:03d}-{start:08d}"


class _Shards:
    """Each chunk's cascade maps as one folder of ``<model>.npz`` files, renamed into place
    whole, merged into one file per model at the end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = RunFiles(out).sanity.map_parts

    def clear(self, rank: int, world_size: int) -> None:
        """An earlier run's shards, at the start of a fresh one: this process's, and (process
        0) those of processes this run does not have; never another live process's."""
        if not self.folder.is_dir():
            return
        for shard in self.folder.iterdir():
            owner = shard.name.lstrip(".").split("-", 1)[0]
            if owner.isdigit() and (int(owner) == rank or (rank == 0 and int(owner) >= world_size)):
                shutil.rmtree(shard, ignore_errors=True)

    def has(self, name: str) -> bool:
        return (self.folder / name).is_dir()

    def write(self, name: str, per_model: dict[str, list[CascadeMaps]]) -> None:
        tmp = self.folder / f".{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for key, maps in per_model.items():
            if maps:
                np.savez(tmp / f"{key}.npz", **_arrays(maps))
        shutil.rmtree(self.folder / name, ignore_errors=True)
        os.replace(tmp, self.folder / name)

    def merge(self, order: Sequence[str], model_keys: Sequence[str]) -> list[Path]:
        rank = {image_id: i for i, image_id in enumerate(order)}
        shards = sorted(p for p in self.folder.iterdir()
                        if p.is_dir() and not p.name.startswith(".")) \
            if self.folder.is_dir() else []
        written = []
        for key in model_keys:
            parts = [dict(np.load(s / f"{key}.npz")) for s in shards
                     if (s / f"{key}.npz").is_file()]
            if not parts:
                continue
            merged = {name: np.concatenate([p[name] for p in parts])
                      for name in parts[0] if name not in ("steps", "seed")}
            keep = sorted(range(len(merged["image_ids"])),
                          key=lambda i: rank.get(str(merged["image_ids"][i]), len(rank)))
            merged = {name: value[keep] for name, value in merged.items()}
            path = RunFiles(self.out).sanity.maps(key)
            tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
            np.savez_compressed(tmp, steps=parts[0]["steps"], seed=parts[0]["seed"], **merged)
            os.replace(tmp, path)
            written.append(path)
        shutil.rmtree(self.folder, ignore_errors=True)
        return written


def _arrays(maps: list[CascadeMaps]) -> dict[str, np.ndarray]:
    return {"image_ids": np.array([m.image_id for m in maps], dtype=str),
            "steps": np.array([s.label for s in maps[0].steps], dtype=str),
            "seed": np.array(maps[0].seed),
            "target_class": np.array([m.target_class for m in maps], dtype=np.int64),
            "random_class": np.array([m.random_class for m in maps], dtype=np.int64),
            "crop_box": np.array([m.crop_box for m in maps], dtype=np.float64),
            "trained": np.stack([m.trained for m in maps]).astype(np.float32),
            "cascade": np.stack([np.stack(m.randomised) for m in maps]).astype(np.float32),
            "random_logit": np.stack([m.random_logit for m in maps]).astype(np.float32)}


def run_sanity(engine: CamEngine, dataset: ValDataset, out: Path, method: CamMethod,
               model_keys: Sequence[str] | None = None, limit: int | None = None,
               batch_size: int = 16, resume: bool = False, seed: int = SEED,
               granularity: str = "blocks", rank: int = 0, world_size: int = 1,
               save_maps: bool = False, progress: bool = True,
               stop_after_batches: int | None = None) -> SanityReport:
    """The checks of ``dataset``'s images (the first ``limit``) into ``r.sanity.csv`` beside
    ``out`` (``RunFiles``), as the module's docstring says; ``stop_after_batches``
    simulates an interruption (tests)."""
    samples = dataset.samples[:limit] if limit else list(dataset.samples)
    # the cascade re-initialises a CamNet's classifier and blocks: a brought network of another
    # form has no such layers to walk
    models = [m for m in runnable(engine, method, model_keys) if isinstance(m.net, CamNet)]
    path = RunFiles(out).sanity.rows

    def part(r: int = rank) -> Path:
        return rank_part(path, r, world_size)

    options = {"family": engine.zoo.family.name, "ladder": engine.zoo.ladder.name,
               "method": method.key, "seed": seed,
               "granularity": granularity, "sanity_definitions": SANITY_DEFINITIONS_VERSION,
               "weights": {m.key: m.provenance.sha256 for m in models}}
    shards = _Shards(out)
    if resume:
        check_resume(path, options)
    else:
        part().unlink(missing_ok=True)
        shards.clear(rank, world_size)
    if rank == 0:
        write_json(path.with_name(f"{path.stem}.options.json"), options)
    done = {r.key() for r in read_rows(path, SanityRow) + (
        read_rows(part(), SanityRow) if part() != path else [])} if resume else set()
    shard = samples[rank::world_size]
    seconds = {m.key: 0.0 for m in models}

    def rows_done(chunk: Sequence[ValSample]) -> bool:
        return all(SanityRow.key_of(image_id=s.image_id, model=m.key, method=method.key)
                   in done for s in chunk for m in models)

    def pending(start: int, chunk: Sequence[ValSample]) -> bool:
        return not rows_done(chunk) or (save_maps and not shards.has(_shard_name(rank, start)))

    def work(start: int, chunk: Sequence[ValSample], images: list[CamImage]) -> None:
        per_model: dict[str, list[CascadeMaps]] = {}
        rows = []
        for model in models:
            t0 = time.perf_counter()
            per_model[model.key] = cascade_maps(engine, images, model, method, seed,
                                                granularity)
            seconds[model.key] += time.perf_counter() - t0
            rows += [sanity_row(m, engine.zoo.family.name) for m in per_model[model.key]]
        if not rows_done(chunk):
            append_rows(part(), [r for r in rows if r.key() not in done], SanityRow)
        if save_maps:
            shards.write(_shard_name(rank, start), per_model)

    loop = run_chunks(shard, batch_size, pending, work, f"sanity {method.key}", progress,
                      stop_after_batches)
    report = SanityReport([], skipped=loop.skipped, computed_images=loop.computed_images,
                          seconds=seconds)
    if loop.stopped:
        return report
    if world_size > 1:
        torch.distributed.barrier()
        if rank != 0:
            return report
    report.rows = merge_parts(path, SanityRow, [part(r) for r in range(world_size)]
                              if world_size > 1 else [], world_size == 1 or resume, samples,
                              [m.key for m in engine.zoo.models])
    if save_maps:
        order = [s.image_id for s in samples]
        report.write_maps = lambda: shards.merge(order, [m.key for m in models])
    return report
