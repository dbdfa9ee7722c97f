"""What the operator of a shared server decides, read once per rerun from the environment and
then ``.streamlit/secrets.toml``: the checkpoints folder, the default validation folder, and the
caps that keep one visitor from taking the server's memory. Visitors cannot change these."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import streamlit as st

from app.labels import MAX_EXPORT_ENV, MAX_GRID_ENV
from safe_io.storage import StorageError, check_writable
from scaled_models.files import checkpoints_root

DEFAULT_MAX_GRID_IMAGES = 36
DEFAULT_MAX_EXPORT_MEGAPIXELS = 50.0


MAP_CACHE_OFF = "off"


def default_map_cache() -> Path:
    """Where computed maps are kept between server starts unless the operator says otherwise:
    the user's cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "scalecam" / "maps"


@dataclass(frozen=True)
class Settings:
    checkpoints: Path
    imagenet_val: str
    max_grid_images: int
    max_export_megapixels: float
    map_cache: Path | None = None  # computed maps kept on disk between starts (None: not kept)


def _secret(key: str) -> str:
    try:
        return str(st.secrets.get(key, ""))
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return ""


def _setting(env: str, secret: str) -> str:
    return os.environ.get(env) or _secret(secret)


def _number(env: str, secret: str, default: float, cast):
    text = _setting(env, secret)
    try:
        value = cast(text) if text else default
    except ValueError:
        st.warning(f"Ignoring {env}={text!r}: not a number; using {default}.")
        return default
    return value if value > 0 else default


def load_settings() -> Settings:
    """``SCALECAM_CHECKPOINTS`` / ``checkpoints``, ``SCALECAM_IMAGENET_VAL`` / ``imagenet_val``,
    ``SCALECAM_MAX_GRID_IMAGES`` / ``max_grid_images`` and ``SCALECAM_MAX_EXPORT_MEGAPIXELS`` /
    ``max_export_megapixels``, ``SCALECAM_MAP_CACHE`` / ``map_cache`` (a folder, or ``off``)
    (environment first, then secrets)."""
    map_cache = _setting("SCALECAM_MAP_CACHE", "map_cache")
    return Settings(
        checkpoints=checkpoints_root(_setting("SCALECAM_CHECKPOINTS", "checkpoints") or None),
        imagenet_val=_setting("SCALECAM_IMAGENET_VAL", "imagenet_val"),
        max_grid_images=int(_number(MAX_GRID_ENV, "max_grid_images",
                                    DEFAULT_MAX_GRID_IMAGES, int)),
        max_export_megapixels=_number(MAX_EXPORT_ENV, "max_export_megapixels",
                                      DEFAULT_MAX_EXPORT_MEGAPIXELS, float),
        map_cache=_map_cache(map_cache))


def _map_cache(text: str) -> Path | None:
    """The map cache folder the operator set (``off``: none; empty: the default), or ``None``
    with a warning naming the setting when it cannot be written: the page works without it."""
    if text.strip().lower() == MAP_CACHE_OFF:
        return None
    folder = Path(text) if text else default_map_cache()
    why = _unwritable(folder)
    if why:
        st.warning(f"Computed maps are not kept on disk: SCALECAM_MAP_CACHE / map_cache: {why}.")
        return None
    return folder


@lru_cache(maxsize=8)
def _unwritable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold the map cache, or ``None``; checked once per folder."""
    try:
        check_writable(folder)
    except StorageError as exc:
        return str(exc)
    return None
