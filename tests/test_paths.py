"""The app's folder box can only reach folders under the allowed roots, and files opened from
them must really lie there too."""
from __future__ import annotations

import pytest

from safe_io.paths import PathNotAllowed, allowed_roots, check_file_under_roots, resolve_under_roots


@pytest.fixture
def roots(tmp_path):
    root = tmp_path / "val"
    (root / "n01440764").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "n01440764" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"image")
    (tmp_path / "secret" / "notes.txt").write_text("another user's data")
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


def test_file_inside_root_is_allowed(roots):
    image = roots[0] / "n01440764" / "ILSVRC2012_val_00000001.JPEG"
    assert check_file_under_roots(image, roots) == image.resolve()
    assert check_file_under_roots("n01440764/ILSVRC2012_val_00000001.JPEG", roots) == \
        image.resolve()


@pytest.mark.parametrize("target", ["secret/notes.txt", "/etc/passwd", "secret/missing.JPEG"])
def test_symlinked_file_leading_out_of_the_root_is_refused(roots, tmp_path, target):
    link = roots[0] / "n01440764" / "ILSVRC2012_val_00000002.JPEG"
    link.symlink_to(tmp_path / target)
    with pytest.raises(PathNotAllowed, match="leads outside the folders") as info:
        check_file_under_roots(link, roots)
    assert str(link) in str(info.value) and target not in str(info.value)


def test_file_under_a_symlinked_folder_leading_out_is_refused(roots, tmp_path):
    (roots[0] / "n01443537").symlink_to(tmp_path / "secret")
    with pytest.raises(PathNotAllowed, match="leads outside the folders"):
        check_file_under_roots(roots[0] / "n01443537" / "notes.txt", roots)


def test_symlinked_file_staying_inside_the_root_is_allowed(roots):
    image = roots[0] / "n01440764" / "ILSVRC2012_val_00000001.JPEG"
    link = roots[0] / "ILSVRC2012_val_00000001.JPEG"
    link.symlink_to(image)
    assert check_file_under_roots(link, roots) == image.resolve()


def test_dotdot_in_a_file_path_is_refused(roots, tmp_path):
    for path in (roots[0] / "n01440764" / ".." / ".." / "secret" / "notes.txt",
                 roots[0] / "n01440764" / ".." / "n01440764" / "ILSVRC2012_val_00000001.JPEG",
                 "../secret/notes.txt"):
        with pytest.raises(PathNotAllowed, match="'..'"):
            check_file_under_roots(path, roots)
    with pytest.raises(PathNotAllowed, match="leads outside the folders"):
        check_file_under_roots(tmp_path / "secret" / "notes.txt", roots)


def test_a_nul_character_is_refused_with_a_message_not_a_traceback(roots):
    with pytest.raises(PathNotAllowed, match="cannot contain a NUL character"):
        resolve_under_roots("n01440764\0/x", roots)
    with pytest.raises(PathNotAllowed, match="cannot contain a NUL character"):
        check_file_under_roots(str(roots[0]) + "/a\0.JPEG", roots)


def test_a_root_given_twice_is_listed_once_in_the_refusal(monkeypatch, tmp_path):
    """The app adds its configured validation folder, which the environment may already name
    (through a symlink here): the refusal lists each allowed folder once."""
    val = tmp_path / "val"
    val.mkdir()
    (tmp_path / "link").symlink_to(val)
    monkeypatch.setenv("SCALECAM_IMAGENET_VAL", str(val))
    monkeypatch.delenv("SCALECAM_ALLOWED_ROOTS", raising=False)
    roots = allowed_roots(str(tmp_path / "link"))
    with pytest.raises(PathNotAllowed) as refused:
        resolve_under_roots("/etc", roots)
    assert str(refused.value).count(str(val)) == 1
