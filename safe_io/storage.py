"""Files that must never be seen half-written: checkpoints, their metadata, result CSVs; and
the checks that a folder can take them, made before any work and said in words when a write
fails (which file, why, and how much room is left)."""
from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path


class StorageError(OSError):
    """A file or folder that cannot be written; the message names it, says why and how much
    room its file system has left."""


def _umask() -> int:
    """The process's umask (read once, at import, while no other thread creates files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def free_bytes(path: Path) -> int | None:
    """Bytes free on the file system holding ``path`` (its nearest existing folder), or
    ``None`` when that cannot be told."""
    folder = Path(path).absolute()
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def free_space(path: Path) -> str:
    """"1.2 GB free", for the file system that holds ``path``."""
    free = free_bytes(path)
    if free is None:
        return "free space unknown"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if free >= size:
            return f"{free / size:.1f} {unit} free"
    return f"{free} bytes free"


def write_failure(path: Path, exc: BaseException) -> StorageError:
    """The error to raise when writing ``path`` failed with ``exc``: the file, the reason and
    the room left. torch.save reports a full disk as a ``RuntimeError`` ("[enforce fail at
    inline_container.cc] … file write failed"), so its first line is kept as the reason."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
    else:
        lines = str(exc).strip().splitlines()
        reason = f"the write failed: {lines[-1] if lines else type(exc).__name__}"
    return StorageError(f"{path}: could not be written ({reason}); {free_space(path)} there")


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write a file in it, or raise ``StorageError`` naming the folder and
    the reason: what a command checks before any work, so that nothing it makes is lost."""
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise StorageError(f"{folder}: cannot write there ({existing} is a file, not a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"{folder}: cannot write there ({exc.strerror or exc})") from None


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, then rename it over
    ``path``: readers see the old file or the new one, never a torn one (a killed run, a full
    disk). The file gets the mode of any file the process creates (umask applied), whatever
    ``write`` chose: safetensors writes 0600, which left checkpoints unreadable to a lab's
    server while their JSON was not. A failed write raises ``StorageError`` (the file, the
    reason, the room left) and leaves no temporary file behind."""
    path = Path(path)
    # one temporary name per process and thread: two server threads may write the same file
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, StorageError):
            raise
        raise write_failure(path, exc) from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # its folder could not be made: there is no temporary file
            pass


def write_json(path: Path, data: object) -> None:
    """``data`` as indented UTF-8 JSON, atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n",
                                              encoding="utf-8"))
