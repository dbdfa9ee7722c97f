"""glibc's allocator, the one home of its settings: kept while networks run on a CPU, and what a
process asks for between computations.

Why keep it: glibc's ``malloc`` gives a large block (an activation tensor: up to 39 MB in the
engine's batches) pages of its own from ``mmap`` and unmaps them when it is freed, and trims the
heap's free top past a threshold, so nearly every layer writes its output into fresh pages the
kernel must map and zero on first touch. A ``torch.profiler`` run of the engine (8 images × 5
Lite networks, exact CAM, 2-core CPU) showed it as time in the operators that first write a new
tensor: ``fill_`` (the zero border of Lite's "SAME" padding) took 147 ms of 1.78 s at 1.4 ms a
call. PyTorch's CPU performance guide answers this by swapping the allocator (jemalloc,
tcmalloc); glibc can do it itself: inside ``retained_heap()`` no block gets an ``mmap`` of its
own and the heap is never trimmed, so a freed activation's pages serve the next one (``fill_``
97 ms, the convolutions 0.1 s less, in the same profile).

When the last computation inside leaves, the thresholds a process set for the time between
computations (``between_computations``; a shared server gives large blocks back at once) or,
if it set none, those glibc's own sliding rule reaches once a large block has been freed, are
back. The free pages stay for the next computation until the process calls ``give_back`` or
ends: trimming on every exit made the grid's next redraws fault in fresh pages from the trimmed
heap (20,000 faults over 8 redraws of the bench's grid, 38-41 ms a redraw against 17 ms
untrimmed). Elsewhere than glibc (macOS, musl) nothing here does anything.

A shared server asks computations not to keep the heap (``between_computations``): its
concurrent sessions' computations overlap, so the kept heap never went back while they ran, and
held what every one of them had freed — the serve benchmark's peak went from 2.61 GB to
5.78 GB (its sessions finished in 694 s instead of 1,048 s).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER_TRIM = 2**31 - 1  # the largest value mallopt takes (an int)
_GLIBC_MMAP_MAX = 65536  # glibc's default number of mmap'd blocks
_SLIDING_MMAP_THRESHOLD = 32 * 2**20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


_LIBC = _glibc()
_lock = threading.Lock()
_inside = 0  # computations now inside retained_heap(), across threads
_keep = True  # whether computations keep the heap (a shared server says no)
_between = (_SLIDING_MMAP_THRESHOLD, 2 * _SLIDING_MMAP_THRESHOLD)  # (mmap, trim) thresholds


def available() -> bool:
    """Whether this process's allocator is glibc's, the one tuned here."""
    return _LIBC is not None


def between_computations(mmap_threshold: int, trim_threshold: int, arenas: int, *,
                         keep_heap: bool) -> bool:
    """What the process wants outside computations: blocks from ``mmap_threshold`` bytes get an
    ``mmap`` of their own, the heap's top is trimmed past ``trim_threshold``, and threads share
    at most ``arenas`` heaps; ``keep_heap``: whether computations still keep the heap while they
    run (a server of concurrent sessions: no). Applied now (or when the computations running
    leave); True if glibc took them. ``ValueError`` naming the argument for a count or size
    that is not a positive whole number, before anything is set."""
    global _between, _keep
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold),
                        ("arenas", arenas)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _NEVER_TRIM:
            raise ValueError(f"{name} must be a whole number from 1 to {_NEVER_TRIM}, "
                             f"not {value!r}")
    if not isinstance(keep_heap, bool):
        raise ValueError(f"keep_heap must be True or False, not {keep_heap!r}")
    if _LIBC is None:
        return False
    with _lock:
        _between = (mmap_threshold, trim_threshold)
        _keep = keep_heap
        took = [bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))]
        if _inside == 0:
            took += _apply_between()
    return all(took)


def _apply_between() -> list[bool]:
    return [bool(_LIBC.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)),
            bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, _between[0])),
            bool(_LIBC.mallopt(_M_TRIM_THRESHOLD, _between[1]))]


def give_back() -> None:
    """Return every free page of every heap to the system (``malloc_trim(0)``), unless a
    computation is keeping the heap now (the pages are its)."""
    if _LIBC is None:
        return
    with _lock:
        if _inside == 0:
            _LIBC.malloc_trim(0)


@contextmanager
def retained_heap() -> Iterator[None]:
    """Keep freed blocks in the heap while any thread is inside; when the last leaves, the
    thresholds between computations are back (the pages kept go at ``give_back``). Does
    nothing in a process that said not to (``between_computations``)."""
    global _inside
    if _LIBC is None or not _keep:
        yield
        return
    with _lock:
        if _inside == 0:
            _LIBC.mallopt(_M_MMAP_MAX, 0)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _apply_between()
