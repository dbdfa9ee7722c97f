"""Give freed memory back to the operating system, so a shared server's footprint falls when its
visitors leave.

glibc's malloc keeps freed memory for reuse: per-thread arenas (one per Streamlit session thread)
and a heap top it trims only past a threshold, and its mmap threshold rises after large blocks
are freed, so later large tensors come from the heap and stay there. A server that ran a few
gradient CAMs at 448 px then holds gigabytes it no longer uses. ``configure_allocator`` fixes,
for the time between computations, the mmap threshold (large blocks always mmap'd, so ``free``
unmaps them) and the trim threshold, and caps the arenas; and it asks the engine not to keep
the heap while it computes (``cam.engine.heap``, which the command line and notebooks keep):
concurrent sessions would keep the sum of what they freed.
``release_memory`` trims what remains. Elsewhere than glibc both do nothing.
"""
from __future__ import annotations

import gc
from functools import lru_cache

from cam.engine import heap

MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more (any image-sized tensor) are mmap'd
ARENAS = 2


@lru_cache(maxsize=1)
def configure_allocator() -> bool:
    """Set glibc's allocator for a long-running server, once per process; True if applied."""
    return heap.between_computations(MMAP_THRESHOLD, MMAP_THRESHOLD, ARENAS, keep_heap=False)


def release_memory() -> None:
    """Collect garbage and return free heap memory to the operating system."""
    gc.collect()
    heap.give_back()
