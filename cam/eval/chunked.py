"""The resumable, chunked, distributable run that evaluation and the sanity checks share.

A run walks its shard of a dataset in fixed chunks: a chunk whose rows (or ``--save-maps``
shards) are all there is skipped, any other is decoded (a photo that cannot be read is skipped
with its reason) and computed whole, so a resumed run computes exactly what an uninterrupted one
would. Rows are appended to a per-rank CSV as they come (a torn last line dropped first), and at
the end rank 0 merges every rank's part into one CSV in the dataset's image order and the
ladder's model order. ``--resume`` first checks that the rows were made with the same options.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cam.engine.inputs import CamImage, image_from_sample
from cam.eval.layout import RunFiles
from cam.eval.rows import CsvRow, Row, read_rows, write_csv
from safe_io.imagenet_val import ValSample
from safe_io.images import ImageLoadError
from safe_io.storage import atomic_write, write_failure
from scaled_models.ladders import DEFAULT_LADDER


class ResumeMismatch(ValueError):
    """``--resume`` asked to continue rows made with other options."""


def check_resume(out: Path, options: dict) -> None:
    """Refuse to resume ``out`` when its rows were made with other options; say which."""
    path = RunFiles(out).options
    if not path.is_file():
        if out.is_file() and out.stat().st_size:
            raise ResumeMismatch(f"{out}: no {path.name} says how its rows were made; resume "
                                 "only runs that wrote one, or start afresh without --resume")
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    saved.setdefault("ladder", DEFAULT_LADDER.name)  # runs from before ladders were Table 7's
    differs = [f"{name} ({saved.get(name)} then, {value} now)" for name, value in options.items()
               if saved.get(name) != value]
    if differs:
        raise ResumeMismatch(f"{out}: its rows were made with other {'; '.join(differs)}; "
                             "resume with the same options, or write to another --out")


def append_rows(path: Path, rows: list[CsvRow], row_type: type[CsvRow]) -> None:
    """Rows added to a results CSV as a run goes (a torn last line dropped first); a failed
    write raises ``StorageError`` naming the file and the room left."""
    try:
        new = not path.is_file() or path.stat().st_size == 0
        if path.is_file() and path.stat().st_size:
            text = path.read_bytes()
            if not text.endswith(b"\n"):  # drop a torn line before appending
                with path.open("r+b") as fh:
                    fh.truncate(text.rfind(b"\n") + 1)
        with path.open("a", newline="", encoding="utf-8") as fh:
            write_csv(fh, rows, row_type, header=new)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise write_failure(path, exc) from exc


def canonical(rows: list[Row], samples: Sequence[ValSample], model_order: Sequence[str]
              ) -> list[Row]:
    """One row per key (the last one read), in the dataset's image order and the ladder's model
    order."""
    order = {s.image_id: i for i, s in enumerate(samples)}
    models = {k: i for i, k in enumerate(model_order)}
    unique = {r.key(): r for r in rows}
    return sorted(unique.values(), key=lambda r: (
        order.get(r.image_id, 1 << 30), r.method,
        *(models.get(getattr(r, k), 99) for k in r.KEY if k.startswith("model"))))


def write_rows(path: Path, rows: list[CsvRow], row_type: type[CsvRow]) -> None:
    """``rows`` as ``path``, whole or not at all."""
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            write_csv(fh, rows, row_type)
    atomic_write(path, write)


def merge_parts(path: Path, row_type: type[CsvRow], parts: Sequence[Path], keep_existing: bool,
                samples: Sequence[ValSample], model_order: Sequence[str]) -> list[CsvRow]:
    """Rank 0's last step: ``path``'s own rows (when ``keep_existing``) and every rank's part
    (each removed once read) as one CSV in canonical order; returns its rows."""
    merged = read_rows(path, row_type) if keep_existing else []
    for part in parts:
        merged += read_rows(part, row_type)
        part.unlink(missing_ok=True)
    rows = canonical(merged, samples, model_order)
    write_rows(path, rows, row_type)
    return rows


@dataclass
class ChunkLoop:
    """What ``run_chunks`` did: photos it could not read (path, reason), photos computed, and
    whether it stopped early (``stop_after_batches``)."""

    skipped: list[tuple[str, str]]
    computed_images: int = 0
    stopped: bool = False


def run_chunks(shard: Sequence[ValSample], batch_size: int,
               pending: Callable[[int, Sequence[ValSample]], bool],
               work: Callable[[int, Sequence[ValSample], list[CamImage]], None], desc: str,
               progress: bool = True, stop_after_batches: int | None = None) -> ChunkLoop:
    """``work(start, samples, images)`` for every chunk of ``shard`` that is ``pending(start,
    samples)``, with a progress bar; ``stop_after_batches`` simulates an interruption after
    that many computed chunks (tests)."""
    from tqdm import tqdm

    loop = ChunkLoop([])
    batches = 0
    with tqdm(total=len(shard), unit="img", desc=desc, disable=not progress,
              dynamic_ncols=True) as bar:
        for start in range(0, len(shard), batch_size):
            chunk = shard[start:start + batch_size]
            if pending(start, chunk):
                images = []
                for sample in chunk:
                    try:
                        images.append(image_from_sample(sample))
                    except ImageLoadError as exc:
                        loop.skipped.append((str(sample.path), str(exc)))
                work(start, chunk, images)
                loop.computed_images += len(images)
                batches += 1
            bar.update(len(chunk))
            if stop_after_batches is not None and batches >= stop_after_batches:
                loop.stopped = True
                break
    return loop
