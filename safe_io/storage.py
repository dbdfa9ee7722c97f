"""Files that must never be seen half-written: checkpoints, their metadata, result CSVs."""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    """The process's umask (read once, at import, while no other thread creates files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, then rename it over
    ``path``: readers see the old file or the new one, never a torn one (a killed run, a full
    disk). The file gets the mode of any file the process creates (umask applied), whatever
    ``write`` chose: safetensors writes 0600, which left checkpoints unreadable to a lab's
    server while their JSON was not."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per process and thread: two server threads may write the same file
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        write(tmp)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: object) -> None:
    """``data`` as indented UTF-8 JSON, atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n",
                                              encoding="utf-8"))
