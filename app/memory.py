"""Give freed memory back to the operating system, so a shared server's footprint falls when its
visitors leave.

glibc's malloc keeps freed memory for reuse: per-thread arenas (one per Streamlit session thread)
and a heap top it trims only past a threshold, and its mmap threshold rises after large blocks
are freed, so later large tensors come from the heap and stay there. A server that ran a few
gradient CAMs at 448 px then holds gigabytes it no longer uses. ``configure_allocator`` fixes the
mmap threshold (large blocks always mmap'd, so ``free`` unmaps them) and caps the arenas;
``release_memory`` trims what remains. Elsewhere than glibc both do nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more (any image-sized tensor) are mmap'd
ARENAS = 2


@lru_cache(maxsize=1)
def _glibc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@lru_cache(maxsize=1)
def configure_allocator() -> bool:
    """Set glibc's allocator for a long-running server, once per process; True if applied."""
    libc = _glibc()
    if libc is None:
        return False
    applied = [libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
               libc.mallopt(_M_TRIM_THRESHOLD, MMAP_THRESHOLD),
               libc.mallopt(_M_ARENA_MAX, ARENAS)]
    return all(applied)


def release_memory() -> None:
    """Collect garbage and return free heap memory to the operating system."""
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
