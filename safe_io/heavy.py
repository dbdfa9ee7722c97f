"""One memory-heavy step at a time in this process.

A shared server's peak memory is its idle footprint plus whatever steps run at once. Steps that
each need hundreds of megabytes beyond that (decoding a near-limit upload: ~0.7 GB; a gradient
CAM batch or Score-CAM on the 448 px model: up to ~1 GB) take ``HEAVY_STEP`` first, so two of
them never add up; light work (exact CAM, thumbnails, ordinary photos) never waits for it. The
lock lives in the bottom layer because the decoder here and the CAM engine above both take it.
"""
from __future__ import annotations

import threading

# Reentrant: a heavy step that happens to run another (a CAM inside a decode callback, say)
# must not deadlock on itself.
HEAVY_STEP = threading.RLock()
