"""The server's shared, cached resources: the engine (models loaded once per process), the
decoded-image and thumbnail caches, validation-folder listings, the bundled photos, and the
timings a slow method's wait is estimated from. Every session reads the same ones."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import streamlit as st

from cam.engine.cache import BoundedCache
from cam.engine.engine import CamEngine
from cam.engine.inputs import CamImage, collect_images
from safe_io.imagenet_val import ValDataset, open_val_dir
from safe_io.paths import (
    SAMPLE_IMAGES,
    check_file_under_roots,
)
from scaled_models.brought import BroughtSpec
from scaled_models.family import FAMILIES, WeightFamily
from scaled_models.ladders import Ladder
from scaled_models.zoo import ZooRequest, load_requested

T = TypeVar("T")

IMAGE_CACHE_MB = 512  # decoded photos shared by every session
THUMBNAIL_CACHE_MB = 64


ENGINES = 6  # engines kept: a ladder's models and one visitor's brought ones each


@st.cache_resource(show_spinner="Loading the models (once per server process)…",
                   max_entries=ENGINES,
                   hash_funcs={**{type(f): lambda family: family.name for f in FAMILIES.values()},
                               Ladder: lambda ladder: ladder.name})
def get_engine(family: WeightFamily, ladder: Ladder, brought: tuple[BroughtSpec, ...],
               checkpoints: str) -> CamEngine:
    """One engine per (family, ladder, brought models) for the whole server (the checkpoints
    folder is the operator's, so no visitor can load a second set), loaded when a visitor
    first picks it: models load once and stay on the device; every session shares them (the
    engine is thread-safe). A family and a ladder are cached by their names."""
    return CamEngine(load_requested(ZooRequest(family, "", ladder, tuple(family.bindings(ladder)),
                                               brought, checkpoints)))


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
