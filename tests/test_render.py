"""Rendering: maps placed where each model looked, grid layout, exports and the manifest."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cam.engine import CamResult
from cam.geometry import common_region, map_in_region
from cam.render import RenderStyle, colorize, figure_bytes, normalise, overlay

from .conftest import REPO, SAMPLE_IMAGES


def _result(raw: np.ndarray, crop_box, resolution=224) -> CamResult:
    return CamResult("img", "m", "cam", 0, raw.astype(np.float32), crop_box, resolution,
                     [(0, 1.0)], 1.0, 0.0)


def test_hot_cell_lands_where_the_model_looked():
    # Model A saw x,y in [0, 100); its 10×10 map has a hot cell at row 2, col 7, i.e. the
    # photo's x in [70, 80), y in [20, 30). Model B saw [50, 150) × [0, 100) with a 5×5 map whose
    # hot cell row 1, col 2 covers x in [90, 110), y in [20, 40). Shown in region [50, 100)² at
    # 50 px (1 px per photo pixel), A peaks near display (x 25, y 25) and B near (50-ish, 30).
    a = np.zeros((10, 10))
    a[2, 7] = 1
    region = (50.0, 0.0, 100.0, 50.0)
    shown = map_in_region(a, (0, 0, 100, 100), region, 50)
    y, x = np.unravel_index(shown.argmax(), shown.shape)
    assert 20 <= x <= 29 and 20 <= y <= 29
    b = np.zeros((5, 5))
    b[1, 2] = 1
    shown_b = map_in_region(b, (50, 0, 150, 100), (50.0, 0.0, 150.0, 100.0), 100)
    y, x = np.unravel_index(shown_b.argmax(), shown_b.shape)
    assert 40 <= x <= 59 and 20 <= y <= 39


def test_identity_placement_reproduces_bilinear_upsampling():
    raw = np.random.default_rng(0).random((7, 7))
    result = _result(raw, (10, 20, 234, 244))
    shown = map_in_region(raw, result.crop_box, (10, 20, 234, 244), 224)
    np.testing.assert_allclose(shown[3:-3, 3:-3], result.upsampled()[3:-3, 3:-3], atol=1e-4)


def test_common_region_is_the_intersection_of_centred_crops():
    boxes = [(32.0, 0.0, 288.0, 256.0), (10.0, -5.0, 310.0, 295.0)]
    assert common_region(boxes, 320, 256) == (32.0, 0.0, 288.0, 256.0)


def test_normalisation_per_map_and_shared():
    a, b = np.array([[0.0, 2.0]]), np.array([[1.0, 4.0]])
    per = normalise([a, b], "per-map")
    np.testing.assert_allclose(per[0], [[0, 1]])
    np.testing.assert_allclose(per[1], [[0, 1]])
    shared = normalise([a, b], "shared")
    np.testing.assert_allclose(shared[0], [[0, 0.5]])
    np.testing.assert_allclose(shared[1], [[0.25, 1]])
    with pytest.raises(ValueError):
        normalise([a], "global")


def test_jet_colormap_and_alpha():
    hot = colorize(np.ones((2, 2)), "jet")[0, 0]
    cold = colorize(np.zeros((2, 2)), "jet")[0, 0]
    assert hot[0] > 100 and hot[2] < 50  # red end
    assert cold[2] > 100 and cold[0] < 50  # blue end
    photo = np.full((2, 2, 3), 200, np.uint8)
    np.testing.assert_array_equal(overlay(photo, np.ones((2, 2)), alpha=0.0), photo)
    with pytest.raises(ValueError, match="unknown colormap"):
        colorize(np.ones((2, 2)), "rainbow-unicorn")


def test_figure_bytes_png_and_pdf():
    grid = Image.new("RGB", (40, 30), "white")
    assert figure_bytes(grid, "png", 300).startswith(b"\x89PNG")
    assert figure_bytes(grid, "pdf", 300).startswith(b"%PDF")
    with pytest.raises(ValueError):
        figure_bytes(grid, "gif", 300)


def test_figure_cli_writes_grid_and_manifest(tmp_path):
    out = tmp_path / "fig.png"
    proc = subprocess.run(
        [sys.executable, "-m", "cam", "figure", "--images", str(SAMPLE_IMAGES), "--family", "lite",
         "--checkpoints", str(tmp_path / "none"), "--dpi", "100", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert [m["key"] for m in manifest["models"]] == [
        "baseline", "depth", "width", "resolution", "compound"]
    assert len(manifest["images"]) == 6
    depth = manifest["images"][0]["panels"]["depth"]
    assert depth["available"] is False and "nobody publishes weights" in depth["reason"]
    assert manifest["models"][1]["unavailable_reason"]
    assert manifest["images"][0]["panels"]["baseline"]["top5"]
    style = RenderStyle(dpi=100)
    grid = Image.open(out)
    # one column per model plus the original, one row per image
    assert grid.width > 6 * style.panel_px and grid.width < 7 * style.panel_px
    assert grid.height > 6 * style.panel_px
    # the depth column is a grey placeholder, the baseline column is a coloured overlay
    pixels = np.asarray(grid.convert("RGB")).astype(int)
    size, pad = style.panel_px, max(4, style.panel_px // 40)
    label_w, head_h = round(size * 0.55), round(size * 0.45) + round(size * 0.22)
    y = head_h + size // 2
    depth_x = label_w + 2 * (size + pad) + size // 4
    assert np.ptp(pixels[y, depth_x]) < 5  # grey
    base_patch = pixels[head_h + 5:head_h + size - 5, label_w + size + pad + 5:label_w + 2 * size]
    assert base_patch.std() > 20
    assert "depth: unavailable" in proc.stderr
