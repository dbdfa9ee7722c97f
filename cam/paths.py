"""Which folders a user may browse from the app: only under configured roots.

The val-directory path comes from a text box on a possibly shared server, so it is checked here:
no ``..``, no symlink that leads out of a root, no absolute path elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample_images"


class PathNotAllowed(ValueError):
    """The message says which roots are allowed."""


def allowed_roots() -> list[Path]:
    """``$SCALECAM_IMAGENET_VAL``, ``$SCALECAM_ALLOWED_ROOTS`` (os.pathsep-separated) and the
    bundled sample images, resolved."""
    raw = [os.environ.get("SCALECAM_IMAGENET_VAL", "")]
    raw += os.environ.get("SCALECAM_ALLOWED_ROOTS", "").split(os.pathsep)
    roots = [Path(r).expanduser().resolve() for r in raw if r.strip()] + [SAMPLE_IMAGES]
    return list(dict.fromkeys(roots))


def resolve_under_roots(text: str, roots: list[Path]) -> Path:
    """The real path of ``text`` if it lies inside one of ``roots``; else ``PathNotAllowed``.
    Relative paths are taken relative to the first root."""
    value = text.strip()
    if not value:
        raise PathNotAllowed("enter a folder path")
    candidate = Path(value).expanduser()
    if ".." in candidate.parts:
        raise PathNotAllowed(f"{value!r}: paths with '..' are not accepted")
    if not candidate.is_absolute():
        if not roots:
            raise PathNotAllowed("no folder may be browsed: no allowed root is configured")
        candidate = roots[0] / candidate
    real = candidate.resolve()
    for root in roots:
        real_root = root.resolve()
        if real == real_root or real_root in real.parents:
            return real
    shown = ", ".join(str(r) for r in roots) or "none configured"
    raise PathNotAllowed(f"{value!r} is outside the folders this server allows ({shown}); "
                         "set SCALECAM_IMAGENET_VAL or SCALECAM_ALLOWED_ROOTS to allow another")
