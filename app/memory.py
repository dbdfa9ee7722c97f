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

The first screen's maps (``app.warm_up``) are computed before any visitor's, so they keep the
heap: inside ``preparing_first_screen`` the server's settings wait, even when the first
session asks for them meanwhile (a browser that connects at once does, before the warm-up's maps
start), and they apply when it ends. Without that wait those maps ran with every activation
mmap'd: 394,650 page faults for the 18 maps of a first start, against 93,000-124,000 with it
(one Streamlit server beside the visitor's Chromium on this 2-core CPU); with the server's
OpenMP threads asleep (``app.threads``) the first grid came 1.5-2.5 s sooner with both than
with neither (README, Performance).
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cam.engine import heap

MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more (any image-sized tensor) are mmap'd
ARENAS = 2

_lock = threading.Lock()
_preparing = False  # the first screen's maps are being computed
_configured: bool | None = None  # whether glibc took the server's settings; None: not yet asked


def configure_allocator() -> bool:
    """Set glibc's allocator for a long-running server, once per process; True if applied.
    While the first screen is prepared it waits (False now): ``preparing_first_screen`` applies
    the settings when it ends."""
    global _configured
    with _lock:
        if _preparing:
            return False
        if _configured is None:
            _configured = heap.between_computations(MMAP_THRESHOLD, MMAP_THRESHOLD, ARENAS,
                                                    keep_heap=False)
        return _configured


@contextmanager
def preparing_first_screen() -> Iterator[None]:
    """Computations inside keep the heap (nobody else computes yet); when it ends, the server's
    settings hold and what those computations kept goes back."""
    global _preparing
    with _lock:
        _preparing = True
    try:
        yield
    finally:
        with _lock:
            _preparing = False
        configure_allocator()
        release_memory()


def release_memory() -> None:
    """Collect garbage and return free heap memory to the operating system."""
    gc.collect()
    heap.give_back()
