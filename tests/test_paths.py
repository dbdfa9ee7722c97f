"""The app's folder box can only reach folders under the allowed roots."""
from __future__ import annotations

import pytest

from cam.paths import PathNotAllowed, allowed_roots, resolve_under_roots


@pytest.fixture
def roots(tmp_path):
    root = tmp_path / "val"
    (root / "n01440764").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    return [root]


def test_inside_root_is_allowed(roots):
    assert resolve_under_roots(str(roots[0]), roots) == roots[0].resolve()
    assert resolve_under_roots("n01440764", roots) == (roots[0] / "n01440764").resolve()


def test_dotdot_is_refused(roots):
    with pytest.raises(PathNotAllowed, match="'..'"):
        resolve_under_roots(str(roots[0] / ".." / "secret"), roots)
    with pytest.raises(PathNotAllowed, match="'..'"):
        resolve_under_roots("../secret", roots)


def test_absolute_path_elsewhere_is_refused(roots, tmp_path):
    with pytest.raises(PathNotAllowed, match="outside the folders"):
        resolve_under_roots(str(tmp_path / "secret"), roots)
    with pytest.raises(PathNotAllowed, match="outside the folders"):
        resolve_under_roots("/etc", roots)


def test_symlink_out_of_the_root_is_refused(roots, tmp_path):
    (roots[0] / "escape").symlink_to(tmp_path / "secret")
    with pytest.raises(PathNotAllowed, match="outside the folders"):
        resolve_under_roots(str(roots[0] / "escape"), roots)


def test_roots_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALECAM_IMAGENET_VAL", str(tmp_path / "val"))
    monkeypatch.setenv("SCALECAM_ALLOWED_ROOTS", str(tmp_path / "more"))
    roots = allowed_roots()
    assert roots[0] == (tmp_path / "val").resolve() and (tmp_path / "more").resolve() in roots
    assert roots[-1].name == "sample_images"
