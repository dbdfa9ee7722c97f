"""``cam evaluate --save-maps``: every model's maps as arrays other tools read.

One compressed ``OUT.maps.<model>.npz`` per model holds what that model's CSV rows were computed
from, on the grid those rows use (each image's common region at ``EVAL_SIZE`` px, ``geometry``),
laid out as Quantus' metrics take their arguments:

- ``x_batch`` N×3×224×224 float32: the common region of the photo, RGB in [0, 1] (not any
  model's normalised input: the region every model is scored on);
- ``y_batch`` N int64: the ground-truth class; ``predictions`` N int64: the model's top-1;
  ``target_class`` N int64: the class its map explains (the ground truth, as in the CSV);
- ``a_batch`` N×1×224×224 float32: the map as computed (raw values, not normalised), resampled
  onto the region;
- ``s_batch`` N×1×224×224 bool: the union of the ground-truth boxes (``metrics.box_mask``);
- ``image_ids`` N str: the CSV's ``image_id``, in the CSV's order;
- ``provenance`` str: what the model is, as JSON (``python -m scaled_models table --json``'s
  record: weights file, sha256, recipe, preprocessing, the paper row it is set beside).

So ``energy_in_box`` of a CSV row is ``relu(a)[s].sum() / relu(a).sum()`` of its arrays.

While a run goes, each chunk of images is written as a shard of plain ``.npy`` files under
``OUT.maps.parts/`` (renamed into place whole, so a killed run leaves whole shards, and a
resumed one redoes only chunks without one). Once the results are written, the shards are merged
into the ``.npz`` files image by image, so memory holds one image, not the dataset; then they
are removed. Each image costs about 0.85 MB per model uncompressed (photo, map, mask).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cam.eval.agreement import EVAL_SIZE
from cam.eval.layout import RunFiles, file_safe
from safe_io.storage import write_failure

# Per-image arrays shared by every model's file, and those of one model.
_SHARED = ("image_ids", "x_batch", "y_batch", "s_batch")
_PER_MODEL = ("a_batch", "predictions", "target_class")


@dataclass(frozen=True)
class ImageArrays:
    """One image's arrays on its common region: what ``evaluate`` scored it on."""

    image_id: str
    photo: np.ndarray  # 224×224×3 uint8 RGB of the common region
    gt_class: int
    box_mask: np.ndarray  # 224×224 bool
    maps: dict[str, np.ndarray]  # model key → 224×224 float32 map
    predictions: dict[str, int]
    targets: dict[str, int]


def shard_bytes(images: int, models: int) -> int:
    """The least a run's shards take on disk before they are merged: per image its photo
    (uint8) and box mask (bool), and per model its map (float32), on the 224 px grid. The
    merged, compressed files come on top, so a folder with less room than this cannot hold
    the maps (checked before any model runs)."""
    pixels = EVAL_SIZE * EVAL_SIZE
    return images * (pixels * (3 + 1) + models * pixels * 4)


class MapWriter:
    """Writes shards of ``ImageArrays`` as a run goes, and merges them into one ``.npz`` per
    model at its end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = RunFiles(out).map_parts

    @staticmethod
    def shard_name(rank: int, start: int) -> str:
        """The shard of the chunk at ``start`` of process ``rank``'s images."""
        return f"{rank:03d}-{start:08d}"

    def clear(self, rank: int, world_size: int) -> None:
        """Forget the shards of an earlier run, at the start of a fresh one: this process's,
        and (process 0) those of processes this run does not have. Each process clears only
        what no other process of this run writes, so none waits for another."""
        if not self.folder.is_dir():
            return
        for shard in self.folder.iterdir():
            owner = shard.name.lstrip(".").split("-", 1)[0]
            if owner.isdigit() and (int(owner) == rank
                                    or (rank == 0 and int(owner) >= world_size)):
                shutil.rmtree(shard, ignore_errors=True)

    def has(self, shard: str) -> bool:
        """Whether shard ``shard`` was written whole (by this run or an interrupted one)."""
        return (self.folder / shard).is_dir()

    def write(self, shard: str, images: Sequence[ImageArrays], model_keys: Sequence[str]
              ) -> None:
        """One chunk's arrays, in a folder renamed into place once complete; a failed write
        (a full disk) removes the partial folder and raises ``StorageError`` naming it."""
        tmp = self.folder / f".{shard}.tmp{os.getpid()}"
        try:
            self._write(tmp, shard, images, model_keys)
        except OSError as exc:
            raise write_failure(self.folder / shard, exc) from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, tmp: Path, shard: str, images: Sequence[ImageArrays],
               model_keys: Sequence[str]) -> None:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        grid = (EVAL_SIZE, EVAL_SIZE)

        def stacked(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
            # a chunk may hold no usable image (all unreadable): empty arrays, not a crash
            return np.stack(arrays).astype(dtype) if arrays else np.zeros((0, *shape), dtype)

        _save(tmp / "image_ids.npy", np.array([i.image_id for i in images], dtype=str))
        # the photo stays uint8 here (a quarter of the size); the merge writes it as [0, 1]
        _save(tmp / "x_batch.npy", stacked([i.photo.transpose(2, 0, 1) for i in images],
                                             (3, *grid), np.uint8))
        _save(tmp / "y_batch.npy", np.array([i.gt_class for i in images], dtype=np.int64))
        _save(tmp / "s_batch.npy", stacked([i.box_mask[None] for i in images], (1, *grid),
                                             bool))
        for key in model_keys:
            scored = [i for i in images if key in i.maps]
            name = file_safe(key)
            _save(tmp / f"{name}.ids.npy", np.array([i.image_id for i in scored], dtype=str))
            _save(tmp / f"{name}.a_batch.npy", stacked([i.maps[key][None] for i in scored],
                                                       (1, *grid), np.float32))
            _save(tmp / f"{name}.predictions.npy",
                  np.array([i.predictions[key] for i in scored], dtype=np.int64))
            _save(tmp / f"{name}.target_class.npy",
                    np.array([i.targets[key] for i in scored], dtype=np.int64))
        shutil.rmtree(self.folder / shard, ignore_errors=True)
        os.replace(tmp, self.folder / shard)

    def merge(self, order: Sequence[str], model_keys: Sequence[str],
              provenance: dict[str, dict] | None = None) -> list[Path]:
        """One ``.npz`` per model of every image its shards hold, in ``order`` (image ids),
        then the shards removed; ``provenance[key]`` (what the model is: file, sha256,
        recipe, preprocessing) goes in as the JSON string ``provenance``. Returns the files
        written."""
        shards = sorted(p for p in self.folder.iterdir() if p.is_dir() and
                        not p.name.startswith(".")) if self.folder.is_dir() else []
        rank = {image_id: i for i, image_id in enumerate(order)}
        written = []
        for key in model_keys:
            # (image id) → (shard, row in the shard's shared arrays, row in the model's arrays)
            where: dict[str, tuple[Path, int, int]] = {}
            for shard in shards:
                shared_rows = {i: r for r, i in enumerate(np.load(shard / "image_ids.npy"))}
                for row, image_id in enumerate(np.load(shard / f"{file_safe(key)}.ids.npy")):
                    where[str(image_id)] = (shard, shared_rows[image_id], row)
            ids = sorted(where, key=lambda i: rank.get(i, len(rank)))
            if ids:
                written.append(self._merge_model(key, ids, where,
                                                 (provenance or {}).get(key)))
        shutil.rmtree(self.folder, ignore_errors=True)
        return written

    def _merge_model(self, key: str, ids: list[str],
                     where: dict[str, tuple[Path, int, int]], provenance: dict | None) -> Path:
        path = RunFiles(self.out).maps(key)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            self._merge_into(tmp, key, ids, where, provenance)
            os.replace(tmp, path)
        except OSError as exc:
            raise write_failure(path, exc) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def _merge_into(self, tmp: Path, key: str, ids: list[str],
                    where: dict[str, tuple[Path, int, int]], provenance: dict | None) -> None:
        """One model's ``.npz`` written into ``tmp``, member by member."""
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            self._member(archive, "image_ids", np.array(ids, dtype=str))
            if provenance is not None:
                self._member(archive, "provenance", np.array(json.dumps(provenance)))
            for name in _SHARED[1:]:
                self._stream(archive, name, ids, where,
                             lambda shard, rows, n=name: (shard / f"{n}.npy", rows[0]),
                             _photo_in_unit_range if name == "x_batch" else None)
            for name in _PER_MODEL:
                self._stream(archive, name, ids, where,
                             lambda shard, rows, n=name: (
                                 shard / f"{file_safe(key)}.{n}.npy", rows[1]))

    @staticmethod
    def _member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
        with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array(fh, array)

    @staticmethod
    def _stream(archive: zipfile.ZipFile, name: str, ids: list[str],
                where: dict[str, tuple[Path, int, int]], locate,
                convert: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """Member ``name``: the header for len(ids) rows, then each image's row read from its
        shard (memory-mapped) and ``convert``-ed, so the whole array is never in memory."""
        convert = convert or np.asarray
        opened: dict[Path, np.ndarray] = {}
        rows = []
        for image_id in ids:
            shard, shared_row, model_row = where[image_id]
            file, row = locate(shard, (shared_row, model_row))
            if file not in opened:
                opened[file] = np.load(file, mmap_mode="r")
            rows.append((opened[file], row))
        first = convert(rows[0][0][rows[0][1]])
        header = {"descr": np.lib.format.dtype_to_descr(first.dtype), "fortran_order": False,
                  "shape": (len(ids), *first.shape)}
        with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_2_0(fh, header)
            for array, row in rows:
                fh.write(np.ascontiguousarray(convert(array[row])).tobytes())


def _save(path: Path, array: np.ndarray) -> None:
    """``np.save`` through Python's own file writes, so that a full disk is an ``OSError`` with
    its cause ("No space left on device"), where numpy's writer says only "problem writing
    element …". A shard's arrays are a chunk's, a few MB."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    path.write_bytes(buffer.getvalue())


def _photo_in_unit_range(photo: np.ndarray) -> np.ndarray:
    """A shard's uint8 photo as ``x_batch`` holds it: float32 in [0, 1]."""
    return np.asarray(photo, dtype=np.float32) / 255
