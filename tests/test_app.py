"""The Streamlit app driven by streamlit.testing.v1.AppTest (in-process, no browser)."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from cam.engine.methods import METHODS

from .conftest import REPO, VAL_SAMPLE

APP = str(REPO / "app" / "session.py")  # what each session runs (app/main.py serves it)


class RecordingManager(MediaFileManager):
    """Keeps a handle on each run's media manager, so a test can click a deferred download
    (``download``) the way the browser's request would."""

    instances: list["RecordingManager"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingManager.instances.append(self)


def download(button) -> bytes:
    """The bytes a download button gives when clicked (made on request, as in the browser).
    A file that fails to be made raises its own error, not "no manager holds it"."""
    failed: Exception | None = None
    for manager in reversed(RecordingManager.instances):
        try:
            url = (manager.execute_deferred(button.proto.deferred_file_id)
                   if button.proto.deferred_file_id else button.proto.url)
            return manager._storage.get_file(url.rsplit("/", 1)[-1].split(".")[0]).content
        except Exception as exc:  # noqa: BLE001 - registered with another run's manager
            if exc.__cause__ is not None:  # this manager ran the callable, and it raised
                failed = exc
    raise AssertionError(f"no manager made the download of {button.proto.label}") from failed


def shown(text: str) -> str:
    """Text as the page shows it: the app escapes Markdown in names it did not write."""
    return re.sub(r"\\(.)", r"\1", text)


def _start(monkeypatch, tmp_path, val_dir=None, **settings) -> AppTest:
    """The app as a fresh browser session sees it: offline, no local checkpoints; ``settings``
    are the operator's environment variables (e.g. SCALECAM_MAX_GRID_IMAGES="3")."""
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    monkeypatch.setenv("SCALECAM_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    if val_dir is None:
        monkeypatch.delenv("SCALECAM_IMAGENET_VAL", raising=False)
    else:
        monkeypatch.setenv("SCALECAM_IMAGENET_VAL", str(val_dir))
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app_test_module, "MediaFileManager", RecordingManager)
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
    label = _labels(app)
    # Counts what ran and names what did not (the resolution column is the shipped adapted
    # model, so three of the five models run offline).
    assert "Maps ready" in label and "6 images × 3 models: baseline, resolution, compound" in label
    assert "not run: depth, width (unavailable)" in label
    assert len(app.image) >= 1
    assert not app.error
    # The unavailable columns say, once each and above the grid, how to fill them.
    commands = [c.value for c in app.code]
    assert any("scaled_models.train --model depth" in c for c in commands)
    assert any("scaled_models.train --model width" in c for c in commands)
    assert not [t for t in app.text_input if t.key == "checkpoints"]  # operator setting only


def test_a_second_start_draws_the_first_grid_from_the_maps_kept_on_disk(monkeypatch, tmp_path):
    """#36: the maps a server computed are kept in the operator's map cache, so the next
    start's first grid computes none, and says where they came from."""
    import streamlit as st

    cache = str(tmp_path / "maps")
    st.cache_resource.clear()  # a fresh server
    first = _start(monkeypatch, tmp_path, SCALECAM_MAP_CACHE=cache)
    _ok(first)
    assert "18 maps computed)" in _labels(first)
    assert len(list((tmp_path / "maps").glob("*/*.npz"))) == 18  # 6 photos × 3 models
    st.cache_resource.clear()  # the server restarted
    second = _start(monkeypatch, tmp_path, SCALECAM_MAP_CACHE=cache)
    _ok(second)
    assert "all maps from cache, 18 read from the disk cache)" in _labels(second)
    st.cache_resource.clear()
    off = _start(monkeypatch, tmp_path, SCALECAM_MAP_CACHE="off")
    assert "18 maps computed)" in _labels(off)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    st.cache_resource.clear()
    wrong = _start(monkeypatch, tmp_path, SCALECAM_MAP_CACHE=str(blocker / "maps"))
    _ok(wrong)  # the page works without the cache, and says why it has none
    assert "18 maps computed)" in _labels(wrong)
    warning = " ".join(w.value for w in wrong.warning)
    assert "SCALECAM_MAP_CACHE" in warning and "a-file is a file, not a folder" in warning


def test_the_server_prepares_the_first_screen_so_the_first_page_computes_nothing(
        monkeypatch, tmp_path):
    """#36: at start-up the server (``app/main.py``'s ``st.App``) runs ``app.warm_up``, which
    loads the first screen's models and computes its grid while the first browser loads the
    page. The first page then computes no map (and no map cache on disk lends them): the
    warm-up prepared exactly the maps the page's defaults ask for."""
    import streamlit as st

    from app.warm_up import prepare_first_screen

    st.cache_resource.clear()  # a fresh server
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    monkeypatch.setenv("SCALECAM_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    monkeypatch.setenv("SCALECAM_MAP_CACHE", "off")
    prepare_first_screen()
    at = _start(monkeypatch, tmp_path, SCALECAM_MAP_CACHE="off")
    _ok(at)
    label = _labels(at)
    assert "6 images × 3 models" in label and "all maps from cache)" in label, label
    st.cache_resource.clear()
    cold = _start(monkeypatch, tmp_path, SCALECAM_MAP_CACHE="off")
    assert "18 maps computed)" in _labels(cold)  # without the warm-up, the page computes them


@pytest.mark.parametrize("operator", [None, "ACTIVE"])
def test_the_server_lets_openmp_threads_sleep_unless_its_operator_said(operator):
    """#36: the server shares its cores with the browser and its other sessions, so
    ``app/main.py`` asks OpenMP's threads to wait asleep (``app.threads``). libgomp
    reads the setting once, when torch loads it: so it must be in the environment before any
    import of torch, which serving ``app/main.py`` must not do itself. An operator's own
    setting stays."""
    script = ("import os, runpy, sys\n"
              f"runpy.run_path({str(REPO / 'app' / 'main.py')!r})\n"
              "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if operator:
        env["OMP_WAIT_POLICY"] = operator
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [operator or "PASSIVE", "False"]


def test_the_offline_first_screen_imports_neither_timm_nor_torchvision(tmp_path):
    """Issue 13's start-up budget: on a fresh offline machine (empty torch hub cache, family
    auto) the first grid needs torch and the Lite networks only. Importing torchvision, directly
    or through timm, imports torch._dynamo: seconds on a 2-core CPU. This counts that work
    instead of timing it, in a fresh interpreter (other tests import both)."""
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=600)\n"
        "at.run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "assert 'Maps ready' in ' '.join(s.label for s in at.status)\n"
        "print(sorted({'timm', 'torchvision', 'torch._dynamo'} & set(sys.modules)))\n")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"),
           "SCALECAM_CHECKPOINTS": str(tmp_path / "no-checkpoints")}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_switching_method_target_and_models(app):
    app.selectbox(key="method").set_value(METHODS["gradcam"]).run()
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
    assert "× 2 models: baseline, compound" in _labels(app)
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
    errors = shown(" ".join(e.value for e in app.error))
    assert "broken.jpg" in errors and "page.png" in errors and "HTML" in errors
    assert errors.count("broken.jpg") == 1  # named once, not "Skipped broken.jpg: broken.jpg: …"
    assert "7 images" in _labels(app)  # the good upload joins the grid; the page keeps working


def test_a_file_name_is_never_rendered_as_markup(app):
    """A rejected upload named like a Markdown image must not make viewers fetch a URL."""
    name = "![x](http://127.0.0.1:8799/t.png).jpg"
    app.file_uploader(key="uploads").set_value([(name, b"not an image", "image/jpeg")]).run()
    _ok(app)
    errors = " ".join(e.value for e in app.error)
    assert "![x](" not in errors and "\\!\\[x\\]\\(" in errors  # escaped, never an image
    assert "![x](http://127.0.0.1:8799/t.png).jpg" in shown(errors)  # the name itself is shown


def test_two_uploads_with_the_same_name_are_both_shown_and_inspectable(app):
    from safe_io.images import image_id_for

    second = _png((20, 120, 240))
    app.file_uploader(key="uploads").set_value([
        ("photo.png", _png((200, 120, 40)), "image/png"),
        ("photo.png", second, "image/png"),
    ]).run()
    _ok(app)
    assert "8 images" in _labels(app)
    picker = app.selectbox(key="inspect_image")
    assert "photo" in picker.options and "photo (2)" in picker.options
    picker.set_value(image_id_for(second)).run()  # picked by content, not by name
    _ok(app)
    assert app.selectbox(key="inspect_image").value == image_id_for(second)


def test_the_inspect_tab_shows_each_models_top5_and_draws_plotly_maps_only_when_asked(
        app, lite_zoo):
    """#36: the first page's Inspect tab is Streamlit's own elements, no plotly chart (plotly.js
    cost about 2 s of the first grid); each model's top-5 bars are its softmax of the photo,
    computed here from the unfolded network on the PIL-decoded picture. The zoom toggle draws the
    linked maps: over the photo, one heat map per model."""
    import json

    import torch

    from app import labels
    from safe_io.imagenet import class_label
    from safe_io.images import image_id_for

    from .conftest import SAMPLE_IMAGES

    _ok(app)
    assert not app.get("plotly_chart")
    photo = SAMPLE_IMAGES / "chelsea.png"
    app.selectbox(key="inspect_image").set_value(image_id_for(photo.read_bytes())).run()
    _ok(app)
    (inspect,) = [tab for tab in app.tabs if tab.label == labels.INSPECT_TAB]
    bars = list(inspect.get("progress"))
    ran = [m for m in lite_zoo.models if m.available]  # the grid's columns that have weights
    assert len(ran) == 3 and len(bars) == 15  # five bars under each of the three columns
    picture = Image.open(photo).convert("RGB")
    for model, five in zip(ran, (bars[i:i + 5] for i in range(0, 15, 5))):
        with torch.inference_mode():
            probs = model.net(model.preprocessing(picture)[None]).softmax(dim=1)[0]
        top = torch.topk(probs, 5)
        for bar, p, c in zip(five, top.values.tolist(), top.indices.tolist()):
            assert shown(class_label(c)) in shown(bar.text), (model.key, bar.text)
            assert f"{100 * p:.0f}%" in bar.text and abs(bar.value - 100 * p) <= 1
    assert not app.get("plotly_chart")
    app.toggle(key="inspect_zoom").set_value(True).run()
    _ok(app)
    (chart,) = [c for c in app.get("plotly_chart") if c.key == "inspect_maps"]
    traces = [t["type"] for t in json.loads(chart.proto.spec)["data"]]
    assert traces == ["image", "heatmap"] * 3


def test_the_same_picture_uploaded_under_two_names_is_shown_once_and_said_so(app):
    same = _png((90, 160, 30))
    app.file_uploader(key="uploads").set_value([
        ("mine_a.png", same, "image/png"), ("mine_b.png", same, "image/png")]).run()
    _ok(app)
    assert "7 images" in _labels(app)
    said = shown(" ".join(i.value for i in app.info))
    assert "mine_a, mine_b are the same picture (identical bytes): shown once, as mine_a" in said


def test_operator_caps_images_per_grid_and_export_pixels(monkeypatch, tmp_path):
    at = _start(monkeypatch, tmp_path, SCALECAM_MAX_GRID_IMAGES="3",
                SCALECAM_MAX_EXPORT_MEGAPIXELS="1")
    _ok(at)
    assert "3 images ×" in _labels(at)
    assert any("at most 3 per grid" in w.value for w in at.warning)
    assert any("SCALECAM_MAX_EXPORT_MEGAPIXELS" in e.value for e in at.error)
    assert not [b for b in at.get("download_button") if b.proto.label.startswith("Grid")]


def test_export_buttons_make_png_pdf_zip_and_manifest_when_clicked(app):
    _ok(app)
    buttons = {b.proto.label: b for b in app.get("download_button")}
    # Nothing is rendered on a rerun: every file but the small manifest is made on click.
    assert all(buttons[label].proto.deferred_file_id for label in
               ("Grid PNG", "Grid PDF", "Panels (zip of PNGs)", "Report (PDF)"))
    png = download(buttons["Grid PNG"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    pdf = download(buttons["Grid PDF"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 1
    assert download(buttons["Panels (zip of PNGs)"]).startswith(b"PK")
    assert b'"scalecam_figure"' in download(buttons["Manifest (JSON)"])


def pdf_text(pdf: bytes) -> str:
    """The plain-ASCII text of a matplotlib PDF: the strings of each text block of its
    Flate-compressed streams, kerning dropped, escapes left as written."""
    blocks = []
    # matplotlib writes "\nstream\n" and "\nendstream" exactly: a looser pattern could eat a
    # last data byte that happens to be "\r"
    for stream in re.findall(rb"\nstream\n(.*?)\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(stream).decode("latin-1")
        except zlib.error:
            continue  # not Flate-compressed
        for block in re.findall(r"BT(.*?)ET", content, re.S):
            blocks.append("".join(re.findall(r"\(((?:\\.|[^\\)])*)\)", block)))
    return " ".join(blocks)


def test_unlabelled_photos_get_a_report_that_says_why_there_are_no_metrics(app):
    """The default page's photos have no ImageNet label, so there is nothing to score but map
    agreement: Evaluate and the report say so instead of failing on an empty metrics plot."""
    _ok(app)
    app.button(key="run_eval").click().run()
    _ok(app)
    assert "No metrics: none of the 6 images has an ImageNet label" in shown(
        " ".join(m.value for m in app.markdown))
    buttons = {b.proto.label: b for b in app.get("download_button")}
    report = download(buttons["Report (PDF)"])
    # the grid (six photos: two A4 pages), what each column is, the metrics page saying why it
    # is empty, map agreement
    assert report.startswith(b"%PDF") and len(re.findall(rb"/Type /Page[^s]", report)) == 5
    assert "none of the 6 images has an ImageNet label" in pdf_text(report)


def test_corrupt_file_in_val_dir_is_named_not_fatal(monkeypatch, tmp_path):
    bakery = tmp_path / "val" / "n02776631"
    bakery.mkdir(parents=True)
    (bakery / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    at = _start(monkeypatch, tmp_path, tmp_path / "val")
    at.button(key="preset").click().run()
    _ok(at)
    assert any("ILSVRC2012_val_00000001" in shown(e.value) for e in at.error)
    assert "6 images" in _labels(at)  # the sample grid is still drawn


def _val_copy(tmp_path, names) -> Path:
    """A val/<wnid>/ folder holding copies of some shared validation images."""
    from safe_io.imagenet_val import open_val_dir

    root = tmp_path / "val"
    for sample in open_val_dir(VAL_SAMPLE).samples:
        if sample.path.name in names:
            (root / sample.wnid).mkdir(parents=True, exist_ok=True)
            (root / sample.wnid / sample.path.name).write_bytes(sample.path.read_bytes())
    return root


def test_val_folder_listing_follows_the_folder(monkeypatch, tmp_path):
    """Images added to the folder after it was first read appear on the next rerun."""
    if not (VAL_SAMPLE / "labels.csv").is_file():
        pytest.skip("shared ImageNet sample not found")
    root = _val_copy(tmp_path, {"ILSVRC2012_val_00000008.JPEG"})
    at = _start(monkeypatch, tmp_path, root)
    assert any("1 images" in c.value for c in at.caption)
    extra = _val_copy(tmp_path / "more", {"ILSVRC2012_val_00000001.JPEG"})
    for folder in extra.iterdir():
        folder.rename(root / folder.name)
    at.run()
    _ok(at)
    assert any("2 images" in c.value for c in at.caption)


def test_a_symlink_out_of_the_val_folder_is_not_followed(monkeypatch, tmp_path):
    if not (VAL_SAMPLE / "labels.csv").is_file():
        pytest.skip("shared ImageNet sample not found")
    secret = tmp_path / "elsewhere" / "secret.JPEG"
    secret.parent.mkdir()
    secret.write_bytes((VAL_SAMPLE / "ILSVRC2012_val_00000001.JPEG").read_bytes())
    root = tmp_path / "val"
    (root / "n02776631").mkdir(parents=True)
    (root / "n02776631" / "ILSVRC2012_val_00000008.JPEG").symlink_to(secret)
    at = _start(monkeypatch, tmp_path, root)
    at.button(key="preset").click().run()
    _ok(at)
    assert any("outside" in e.value for e in at.error)
    assert "6 images" in _labels(at)  # the linked file never reached the grid


def test_evaluate_tab_shows_intervals_sentences_and_the_agreement_heat_map(monkeypatch,
                                                                            tmp_path):
    if not (VAL_SAMPLE / "labels.csv").is_file():
        pytest.skip("shared ImageNet sample not found")
    at = _start(monkeypatch, tmp_path, VAL_SAMPLE)
    at.button(key="preset").click().run()
    at.slider(key="eval_steps").set_value(0).run()
    at.button(key="run_eval").click().run()
    _ok(at)
    text = " ".join(m.value for m in at.markdown)
    assert "[95 % CI]" in text and "compound − baseline, GT-known Loc" in text
    assert [c for c in at.get("plotly_chart") if c.key == "agreement_heatmap"]
    buttons = {b.proto.label: b for b in at.get("download_button")}
    assert "Summary JSON" in buttons and "Agreement CSV" in buttons
    report = download(buttons["Report (PDF)"])  # uses the metrics just computed
    assert report.startswith(b"%PDF") and report.count(b"/Type /Page") >= 4


def test_at_random_on_a_folder_with_repeated_file_names(monkeypatch, tmp_path):
    """An ImageFolder of numbered files (0001.JPEG in two classes): every photo is its own
    thumbnail and checkbox, and all of them reach the grid."""
    if not (VAL_SAMPLE / "labels.csv").is_file():
        pytest.skip("shared ImageNet sample not found")
    from .test_data import repeated_names_folder

    at = _start(monkeypatch, tmp_path, repeated_names_folder(tmp_path / "data") / "val")
    at.radio(key="browse_mode").set_value("at random").run()
    _ok(at)
    boxes = [c for c in at.checkbox if str(c.key).startswith("pick_")]
    assert len(boxes) == 5
    for box in boxes:
        box.check()
    at.run()
    _ok(at)
    assert "11 images" in _labels(at)  # the 6 sample photos and the 5 picked


def test_a_nul_character_in_the_folder_box_is_a_message(app):
    app.text_input(key="val_dir").set_value("val\0dir").run()
    _ok(app)
    assert any("NUL character" in shown(e.value) for e in app.error)


@pytest.mark.slow
def test_a_slow_method_says_how_long_it_will_take_before_it_starts(app):
    """The first grid (exact CAM) times each model on this server; Score-CAM, one forward pass
    per feature channel, then says its wait from those timings before it runs."""
    app.multiselect(key="samples").set_value(["chelsea"])
    app.multiselect(key="models").set_value(["baseline"]).run()
    _ok(app)
    app.selectbox(key="method").set_value(METHODS["scorecam"]).run()
    _ok(app)
    said = shown(" ".join(i.value for i in app.info))
    assert "Score-CAM runs each model once per feature channel of its last layer " \
           "(baseline: 1,280 forward passes per image)" in said
    assert "for 1 images on this server, estimated from its CAM timings" in said
    assert "1 images × 1 models" in _labels(app)


def test_the_compound_ladder_shows_three_published_lite_columns(app):
    from scaled_models.ladders import LADDERS

    app.selectbox(key="ladder").set_value(LADDERS["compound"]).run()
    _ok(app)
    assert "6 images × 3 models: lite0, lite1, lite2" in _labels(app)
    assert not app.code  # nothing to fill: every rung is published
    panel = next(e for e in app.expander if "compound ladder" in e.label)
    table = shown(panel.markdown[0].value)
    assert "counted vs baseline" in table and "d=1.31 w=1.08 r=1.16" in table


def test_the_resnet_ladder_without_its_files_names_each_file_and_its_command(monkeypatch,
                                                                             tmp_path):
    import torchvision.models as tvm

    from scaled_models.ladders import LADDERS

    at = _start(monkeypatch, tmp_path, TORCH_HOME=str(tmp_path / "torch"))
    at.selectbox(key="ladder").set_value(LADDERS["resnet"]).run()
    _ok(at)
    commands = " ".join(c.value for c in at.code)
    for weights in (tvm.ResNet50_Weights, tvm.ResNet101_Weights, tvm.ResNet152_Weights,
                    tvm.Wide_ResNet50_2_Weights):
        assert f" {weights.IMAGENET1K_V2.url}" in commands and "curl -L" in commands
    notices = " ".join(m.value for m in at.markdown)
    assert "no published ResNet scales depth, width and resolution together" in notices
    assert len(at.image) >= 1  # the grid: the photos and the grey columns


def test_a_brought_model_that_cannot_be_had_is_named_and_the_page_keeps_working(app):
    app.text_input(key="brought").set_value("torchvision:resnet5, torchvision:resnet18").run()
    _ok(app)
    assert any("torchvision has no classification model 'resnet5'" in e.value
               for e in app.error)
    assert "Maps ready" in _labels(app)  # the ladder's models still run


def test_sanity_tab_randomises_copies_and_leaves_the_resident_models_alone(app, tmp_path):
    """The Sanity checks tab on the first sample photo: the cascade's maps, the curve and the
    sentence; afterwards the page's own engine (the one every session shares: its map cache
    holds the grid) still has the published weights, compared with a fresh load."""
    import torch

    from app.resources import get_engine
    from app.settings import load_settings
    from scaled_models import get_family, load_zoo
    from scaled_models.ladders import TABLE7_LADDER

    app.radio(key="sanity_steps").set_value("every stage").run()
    app.button(key="run_sanity").click().run()
    _ok(app)
    text = shown(" ".join(m.value for m in app.markdown))
    assert "both checks" in text and "Adebayo" in text
    assert any(c.key == "sanity_curve" for c in app.get("plotly_chart"))
    settings = load_settings()
    engine = get_engine(get_family("lite"), TABLE7_LADDER, (), str(settings.checkpoints),
                        settings.map_cache)
    assert len(engine._maps) > 0  # the page's engine, not a new one
    fresh = load_zoo(get_family("lite"), tmp_path / "none", keys=("baseline",)).models[0].net
    for name, value in fresh.state_dict().items():
        assert torch.equal(engine.zoo.get("baseline").net.state_dict()[name], value), name


def test_a_family_with_no_model_available_says_so_instead_of_maps_ready(monkeypatch, tmp_path):
    """#32 item 12: the efficientnet family offline (nothing in the torch hub cache) said "Maps
    ready in 0.00 s (6 images × 0 models: ; all maps from cache)"."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    at = _start(monkeypatch, tmp_path)
    at.selectbox(key="family").set_value("efficientnet").run()
    _ok(at)
    label = _labels(at)
    assert "Maps ready" not in label and "0 models" not in label
    assert ("No maps: none of the selected models (baseline, depth, width, resolution, "
            "compound) is available in the efficientnet family") in label
    # why each is unavailable, and the command that fills it, stand above the grid
    assert sum(m.value.endswith("To make it:") for m in at.markdown) == 5 and len(at.code) == 5
