"""The server's shared, cached resources: the engine (models loaded once per process), the
decoded-image and thumbnail caches, validation-folder listings, the bundled photos, and the
timings a slow method's wait is estimated from. Every session reads the same ones."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import streamlit as st
import streamlit.runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app.engines import EnginePool
from app.memory import release_memory
from cam.engine.cache import BoundedCache
from cam.engine.engine import CamEngine
from cam.engine.inputs import CamImage, collect_images
from safe_io.digest_store import DigestStore
from safe_io.imagenet_val import ValDataset, open_val_dir
from safe_io.paths import (
    SAMPLE_IMAGES,
    check_file_under_roots,
)
from scaled_models.brought import BroughtSpec
from scaled_models.family import WeightFamily
from scaled_models.ladders import DEFAULT_LADDER, Ladder
from scaled_models.zoo import ZooRequest, load_requested

T = TypeVar("T")

IMAGE_CACHE_MB = 512  # decoded photos shared by every session
THUMBNAIL_CACHE_MB = 64
MAP_CACHE_MB = 256  # computed maps on disk (a 7×7 map and its record: about 1 kB)


ENGINES = 6  # engines held at once: a ladder's models and one visitor's brought ones each
# An engine a connected visitor switched away from stays this long (switching back finds it still
# loaded); one whose visitors all left goes at the next sweep, its memory returned to the system.
ENGINE_GRACE_S = 60.0
# A held engine other than the first screen's lets go of any network nobody has computed with for
# this long, even while its visitor stays connected: its drawn maps stay cached, and the next
# computation reads the weights back (about 1 s for the resnet ladder's four ResNets here, since
# they load into meta-built networks; 3 s before). Shorter than the engine's grace: an idle
# ladder's 0.77 GB was the serve benchmark's peak while the other visitors' work ran beside it.
PARK_AFTER_S = 20.0
SWEEP_EVERY_S = 10.0

@dataclass(frozen=True)
class EngineKey:
    """Which models one engine holds: a family's columns of a ladder and the models visitors
    brought, from the operator's checkpoints folder."""

    family: str
    ladder: str
    brought: tuple[BroughtSpec, ...]
    checkpoints: str

    @property
    def first_screen(self) -> bool:
        """Table 7 with nothing brought: what every visitor's first screen draws, kept
        loaded."""
        return self.ladder == DEFAULT_LADDER.name and not self.brought


def _connected(session: str) -> bool:
    """Whether a session's browser is still connected (without a Streamlit runtime, as in
    ``streamlit.testing``, nothing can be known: every session counts as connected)."""
    if not streamlit.runtime.exists():
        return True
    return streamlit.runtime.get_instance().is_active_session(session)


@st.cache_resource(show_spinner=False)
def engine_pool() -> EnginePool[EngineKey, CamEngine]:
    """The server's engines (``app.engines``), with a thread that lets unused ones go, and
    idle networks of the ones kept (``PARK_AFTER_S``)."""
    pool: EnginePool[EngineKey, CamEngine] = EnginePool(
        keep=lambda key: key.first_screen, is_active=_connected, capacity=ENGINES,
        grace_s=ENGINE_GRACE_S)

    def sweep_forever() -> None:
        while True:
            time.sleep(SWEEP_EVERY_S)
            try:
                released = pool.sweep()
                parked = [key for key, engine in pool.engines()
                          if not key.first_screen and engine.park_idle(PARK_AFTER_S)]
                if released or parked:
                    release_memory()
            except Exception:  # noqa: BLE001 - the sweeper must outlive one bad sweep
                logging.getLogger(__name__).exception("engine sweep failed; trying again")

    threading.Thread(target=sweep_forever, name="scalecam-engine-sweep", daemon=True).start()
    return pool


@st.cache_resource(show_spinner=False)
def map_store(folder: str) -> DigestStore:
    """The computed maps kept on disk (``settings.map_cache``), shared by every engine."""
    return DigestStore(folder, MAP_CACHE_MB << 20)


def get_engine(family: WeightFamily, ladder: Ladder, brought: tuple[BroughtSpec, ...],
               checkpoints: str, map_cache: Path | None) -> CamEngine:
    """The engine for (family, ladder, brought models), loaded when a visitor first picks it
    and shared by every session (the engine is thread-safe); the checkpoints folder is the
    operator's, so no visitor can load a second set. Models load once and stay on the device
    while anyone connected uses them (``engine_pool``; outside the first screen, a network's
    weights go as soon as its maps are drawn, or once idle, and are read back when next
    needed: a ladder's draw holds one network at a time). Maps it computes are kept in
    ``map_cache`` (when not ``None``) for the next start."""
    context = get_script_run_ctx()
    session = context.session_id if context is not None else ""

    pool, key = engine_pool(), EngineKey(family.name, ladder.name, brought, checkpoints)

    def load() -> CamEngine:
        return CamEngine(load_requested(ZooRequest(
            family, "", ladder, tuple(family.bindings(ladder)), brought, checkpoints)),
            store=None if map_cache is None else map_store(str(map_cache)),
            one_network_at_a_time=not key.first_screen)

    if key in pool.held() or context is None:  # no page to show a spinner on (``warm_up``)
        return pool.get(key, session, load)
    with st.spinner("Loading the models (kept while visitors use them)…"):
        return pool.get(key, session, load)  # may first wait for another visitor's load


@st.cache_resource(show_spinner=False)
def image_cache() -> BoundedCache:
    """Decoded photos (uploads by content, validation images by file version), shared by every
    session within a fixed budget."""
    return BoundedCache(IMAGE_CACHE_MB << 20,
                        lambda image: image.image.width * image.image.height * 3)


@st.cache_resource(show_spinner=False)
def thumbnail_cache() -> BoundedCache:
    return BoundedCache(THUMBNAIL_CACHE_MB << 20, lambda image: image.width * image.height * 3)


@st.cache_resource(show_spinner="Reading the validation directory…", max_entries=4)
def get_val_dir(path: str, signature: tuple) -> ValDataset:
    """A folder's listing, read again whenever the folder changes (``signature``)."""
    del signature  # part of the cache key only
    return open_val_dir(path)


@st.cache_resource(show_spinner=False)
def seconds_per_image() -> dict[tuple[str, str], float]:
    """(family, model) → seconds one image's exact CAM took on this server when last computed:
    what the wait of a slow method is estimated from, before it starts."""
    return {}


@st.cache_resource(show_spinner=False)
def sample_images() -> list[CamImage]:
    return collect_images([SAMPLE_IMAGES]).images


def cached_file(cache: BoundedCache, path: Path, roots: list[Path], load: Callable[[Path], T]
                ) -> T:
    """``load(real path)`` of a file under the allowed roots, cached per file version (so an
    edited file is read again)."""
    real = check_file_under_roots(path, roots)
    stat = real.stat()
    version = (str(real), stat.st_size, stat.st_mtime_ns)
    value = cache.get(version)
    if value is None:
        value = load(real)
        cache.put(version, value)
    return value
