"""A folder of small array files named by the digest of what they were computed from: the
computed-map cache that lets a server's second start skip the work of its first.

A file is written whole or not at all (``storage.atomic_write``), read only as plain arrays
(never pickles: a cache folder is a file anyone on the machine may have put there), and
anything unreadable, truncated or of another layout is a miss, never an error: a cache can
always be recomputed. The folder is kept within a byte budget, the least recently read files
going first. Nothing here knows what a map is; the engine says what a digest covers.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np

from .storage import atomic_write

# A field every file carries: a file of another layout (an older scalecam's) is never read.
LAYOUT = "scalecam-digest-store-1"
SUFFIX = ".npz"
PRUNED_TO = 0.9  # a prune leaves the folder at this share of its budget


def digest(parts: object) -> str:
    """The sha256 of ``parts`` as canonical JSON (sorted keys): the name of its file."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class DigestStore:
    """Arrays with a small JSON record, stored under a digest; thread-safe."""

    def __init__(self, root: str | os.PathLike, max_bytes: int = 256 << 20) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._bytes: int | None = None  # the folder's space on disk, once walked
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a sha256 digest: {key!r}")
        return self.root / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """The arrays and the record stored under ``key``, or ``None`` (absent or unreadable)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                record = json.loads(str(data["__record__"]))
                if not isinstance(record, dict) or record.pop("__layout__", None) != LAYOUT:
                    return None
                arrays = {name: data[name] for name in data.files if name != "__record__"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        try:
            os.utime(path)  # read now: pruned last
        except OSError:  # a read-only cache still serves what it holds
            pass
        return arrays, record

    def put(self, key: str, arrays: dict[str, np.ndarray], record: dict) -> None:
        """Store ``arrays`` and ``record`` (JSON-able) under ``key``; a failed write (a full
        disk, a read-only folder) leaves the cache as it was and is not raised."""
        path = self._path(key)
        text = json.dumps({**record, "__layout__": LAYOUT})

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                np.savez(out, __record__=np.array(text), **arrays)

        try:
            atomic_write(path, write)
            written = _on_disk(path.stat())
        except OSError:  # StorageError included
            return
        with self._lock:
            if self._bytes is not None:
                self._bytes += written
            due = self._bytes is None or self._bytes > self.max_bytes
        if due:
            self.prune()

    def prune(self) -> int:
        """Delete the least recently read files until the folder holds at most ``PRUNED_TO``
        of ``max_bytes`` (space on disk, whole blocks); returns how many went. ``put`` calls it
        on a process's first write and whenever its running count passes ``max_bytes``, so the
        folder is walked once per process and then once per tenth of the budget written."""
        files = []
        for path in self.root.glob(f"??/*{SUFFIX}"):
            try:
                files.append((path.stat(), path))
            except OSError:
                continue
        total = sum(_on_disk(stat) for stat, _ in files)
        removed = 0
        for stat, path in sorted(files, key=lambda item: item[0].st_mtime):
            if total <= self.max_bytes * PRUNED_TO:
                break
            try:
                path.unlink()
            except OSError:
                continue
            total -= _on_disk(stat)
            removed += 1
        with self._lock:
            self._bytes = total
        return removed


def _on_disk(stat: os.stat_result) -> int:
    """The space a file takes: its blocks (a 1 kB map takes a 4 kB block), else its size."""
    return max(stat.st_size, getattr(stat, "st_blocks", 0) * 512)
