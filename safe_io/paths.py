"""Which folders and files a user may reach from the app: only under configured roots.

The val-directory path comes from a text box on a possibly shared server, so it is checked here:
no ``..``, no symlink that leads out of a root, no absolute path elsewhere. The same holds for each
file the app opens from such a folder (``check_file_under_roots``): a file in an allowed folder
may itself be a symlink to /etc/passwd or to another user's data.
"""
from __future__ import annotations

import os
from pathlib import Path

SAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "sample_images"


class PathNotAllowed(ValueError):
    """The message says which roots are allowed."""


def allowed_roots(*extra: str) -> list[Path]:
    """``$SCALECAM_IMAGENET_VAL``, ``$SCALECAM_ALLOWED_ROOTS`` (os.pathsep-separated), the
    bundled sample images and ``extra`` (e.g. a validation folder set in the server's secrets),
    resolved, each once (messages list them)."""
    raw = [os.environ.get("SCALECAM_IMAGENET_VAL", "")]
    raw += os.environ.get("SCALECAM_ALLOWED_ROOTS", "").split(os.pathsep) + list(extra)
    roots = [Path(r).expanduser().resolve() for r in raw if r.strip()] + [SAMPLE_IMAGES]
    return list(dict.fromkeys(roots))


def resolve_under_roots(text: str, roots: list[Path]) -> Path:
    """The real path of ``text`` if it lies inside one of ``roots``; else ``PathNotAllowed``.
    Relative paths are taken relative to the first root."""
    value = text.strip()
    if not value:
        raise PathNotAllowed("enter a folder path")
    real = _real_path(Path(value).expanduser(), value, roots)
    if _is_under(real, roots):
        return real
    raise PathNotAllowed(f"{value!r} is outside the folders this server allows "
                         f"({_shown(roots)}); set SCALECAM_IMAGENET_VAL or SCALECAM_ALLOWED_ROOTS "
                         "to allow another")


def check_file_under_roots(path: str | os.PathLike, roots: list[Path]) -> Path:
    """The real path of the file ``path`` if, with every symlink followed, it lies inside one of
    ``roots``; else ``PathNotAllowed``.

    Checking the folder a visitor typed is not enough: a file inside it (a val image, say) may be
    a symlink leading anywhere, and the app would serve what it points to. ``..`` is refused as
    for folders; relative paths are taken relative to the first root. Open the returned path,
    not ``path``, so no link is followed again after the check (someone who can write inside a
    root could still swap one in between). The message does not say where a link points.
    """
    value = os.fspath(path)
    real = _real_path(Path(value), value, roots)
    if _is_under(real, roots):
        return real
    raise PathNotAllowed(f"{value!r} leads outside the folders this server allows "
                         f"({_shown(roots)}) once links are followed; refusing to open it")


def _real_path(candidate: Path, value: str, roots: list[Path]) -> Path:
    if "\0" in value:  # the OS cannot name such a file; Path.resolve raises a bare ValueError
        raise PathNotAllowed(f"{value!r}: a path cannot contain a NUL character")
    if ".." in candidate.parts:
        raise PathNotAllowed(f"{value!r}: paths with '..' are not accepted")
    if not candidate.is_absolute():
        if not roots:
            raise PathNotAllowed("nothing may be opened: no allowed root is configured")
        candidate = roots[0] / candidate
    return candidate.resolve()


def _is_under(real: Path, roots: list[Path]) -> bool:
    return any(real == root.resolve() or root.resolve() in real.parents for root in roots)


def _shown(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots) or "none configured"
