"""The Streamlit app driven by streamlit.testing.v1.AppTest (in-process, no browser)."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from .conftest import REPO, VAL_SAMPLE

APP = str(REPO / "app" / "main.py")


class RecordingStorage(MemoryMediaFileStorage):
    """Keeps a handle on the files the app hands to download buttons."""

    instances: list["RecordingStorage"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingStorage.instances.append(self)


def _start(monkeypatch, tmp_path, val_dir=None) -> AppTest:
    """The app as a fresh browser session sees it: offline, no local checkpoints."""
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    monkeypatch.setenv("SCALECAM_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    if val_dir is None:
        monkeypatch.delenv("SCALECAM_IMAGENET_VAL", raising=False)
    else:
        monkeypatch.setenv("SCALECAM_IMAGENET_VAL", str(val_dir))
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    return at


@pytest.fixture
def app(monkeypatch, tmp_path):
    return _start(monkeypatch, tmp_path)


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _labels(at: AppTest) -> str:
    """The CAM progress box's label, e.g. 'Maps ready in 1.2 s (6 images × 5 models)'."""
    return " | ".join(s.label for s in at.status)


def test_default_page_renders_the_sample_grid(app):
    _ok(app)
    assert "Maps ready" in _labels(app) and "6 images × 5 models" in _labels(app)
    assert len(app.image) >= 1
    assert not app.error


def test_switching_method_target_and_models(app):
    app.selectbox(key="method").set_value("gradcam").run()
    _ok(app)
    assert "6 images" in _labels(app)
    app.radio(key="target_mode").set_value("one class for all models").run()
    app.selectbox(key="target_class").set_value(967).run()
    _ok(app)
    app.radio(key="target_mode").set_value("ground truth").run()
    _ok(app)
    assert any("no ground truth" in i.value for i in app.info)  # samples have no labels
    app.multiselect(key="models").set_value(["baseline", "compound"]).run()
    _ok(app)
    assert "× 2 models" in _labels(app)
    app.slider(key="alpha").set_value(0.8).run()  # re-render only
    _ok(app)
    assert "all maps from cache" in _labels(app)


def test_figure7_preset_with_the_shared_val_sample(monkeypatch, tmp_path):
    if not (VAL_SAMPLE / "labels.csv").is_file():
        pytest.skip("shared ImageNet sample not found")
    at = _start(monkeypatch, tmp_path, VAL_SAMPLE)
    at.button(key="preset").click().run()
    _ok(at)
    assert any("maze (n03733281)" in w.value for w in at.warning)
    assert "7 images" in _labels(at)  # bakery joins the six sample photos
    assert any("Figure 7" in c.value for c in at.caption)


def test_preset_without_a_val_dir_explains_what_it_needs(app):
    app.button(key="preset").click().run()
    _ok(app)
    assert any("SCALECAM_IMAGENET_VAL" in i.value for i in app.info)


def test_val_dir_outside_allowed_roots_is_refused(app, tmp_path):
    app.text_input(key="val_dir").set_value("/etc").run()
    _ok(app)
    assert any("outside the folders" in e.value for e in app.error)
    assert "6 images" in _labels(app)  # the rest of the page still works


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_good_and_bad_files(app):
    app.file_uploader(key="uploads").set_value([
        ("orange.png", _png((200, 120, 40)), "image/png"),
        ("broken.jpg", b"\xff\xd8\xff\xe0 definitely not a jpeg", "image/jpeg"),
        ("page.png", b"<html><body>hello</body></html>", "image/png"),
    ]).run()
    _ok(app)
    errors = " ".join(e.value for e in app.error)
    assert "broken.jpg" in errors and "page.png" in errors and "HTML" in errors
    assert "7 images" in _labels(app)  # the good upload joins the grid; the page keeps working


def test_export_buttons_give_png_pdf_zip_and_manifest(app):
    _ok(app)
    assert not app.get("download_button")  # high-DPI files are made on request only
    app.button(key="prepare_export").click().run()
    _ok(app)
    files = {}
    for storage in RecordingStorage.instances:
        for button in app.get("download_button"):
            file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
            try:
                files[button.proto.label] = storage.get_file(file_id).content
            except Exception:  # noqa: BLE001 - stored in another run's storage
                continue
    assert files["Grid PNG"].startswith(b"\x89PNG") and len(files["Grid PNG"]) > 10_000
    assert files["Grid PDF"].startswith(b"%PDF")
    assert files["Panels (zip of PNGs)"].startswith(b"PK")
    assert b'"scalecam_figure"' in files["Manifest (JSON)"]


def test_corrupt_file_in_val_dir_is_named_not_fatal(monkeypatch, tmp_path):
    bakery = tmp_path / "val" / "n02776631"
    bakery.mkdir(parents=True)
    (bakery / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    at = _start(monkeypatch, tmp_path, tmp_path / "val")
    at.button(key="preset").click().run()
    _ok(at)
    assert any("ILSVRC2012_val_00000001" in e.value for e in at.error)
    assert "6 images" in _labels(at)  # the sample grid is still drawn
