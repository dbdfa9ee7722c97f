"""Rendering: maps placed where each model looked, grid layout, exports and the manifest."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cam.engine.engine import CamResult
from cam.engine.geometry import common_region, map_in_region
from cam.engine.methods import EXACT
from cam.render.export import (
    PAGE_INCHES,
    grid_pages,
    pdf_bytes,
    png_is_split,
    png_parts,
    save_figure,
)
from cam.render.grid import compose_grid
from cam.render.overlay import colorize, normalise, overlay
from cam.render.style import RenderStyle

from .conftest import REPO, SAMPLE_IMAGES


def _result(raw: np.ndarray, crop_box, resolution=224) -> CamResult:
    return CamResult("img", "m", EXACT, 0, raw.astype(np.float32), crop_box, resolution,
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


def test_each_colormap_colours_a_real_map_as_opencv_does(lite_engine):
    """The grid colours a map by looking its 256 levels up in a table; OpenCV's own
    ``applyColorMap`` (BGR, turned to RGB) on the same levels is the reference, for every
    colormap the app offers, on a real CAM, a fine ramp over [0, 1] (every level) and values
    outside it. Blended over a real photo, each pixel is (1 − alpha) · photo + alpha · colour
    written out with OpenCV's colours, the photo's share in float32 as the grid has always
    computed it (a float64 photo share truncates 2 % of pixels one level differently)."""
    import cv2

    from cam.engine.inputs import image_from_path
    from cam.render.style import COLORMAPS

    image = image_from_path(SAMPLE_IMAGES / "chelsea.png")
    raw = lite_engine.compute([image], model_keys=["baseline"])[(image.key, "baseline")].raw_map
    ramp = np.linspace(0, 1, 1021)
    map01 = np.concatenate([normalise([raw])[0].ravel(), ramp, [-0.5, 1.5]])[None, :]
    levels = np.uint8(np.clip(map01, 0, 1) * 255)
    photo = np.asarray(image.image.resize((map01.shape[1], 1)))
    for name, code in COLORMAPS.items():
        expected = cv2.cvtColor(cv2.applyColorMap(levels, code), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(colorize(map01, name), expected, err_msg=name)
        for alpha in (0.0, 0.3, 0.5, 0.77, 1.0):  # the formula as the grid always drew it
            blended = (1 - alpha) * photo.astype(np.float32) + alpha * expected
            np.testing.assert_array_equal(overlay(photo, map01, name, alpha),
                                          np.uint8(np.clip(blended, 0, 255)), err_msg=name)


@pytest.fixture(scope="module")
def long_spec(lite_engine, val_sample):
    """A 20-row grid of real validation images, Shetland sheepdog and Dungeness crab among
    them (the longest labels of the shared sample)."""
    from cam.engine.figure import make_figure
    from cam.engine.inputs import image_from_sample
    from safe_io.imagenet_val import open_val_dir

    samples = open_val_dir(val_sample).samples[:20]
    return make_figure(lite_engine, [image_from_sample(s) for s in samples])


def test_pdf_pages_print_on_a4_and_letter_with_the_header_on_each(long_spec):
    style = RenderStyle(dpi=100)
    pages = grid_pages(long_spec, style)
    assert len(pages) > 1
    limit = (round(PAGE_INCHES[0] * style.dpi), round(PAGE_INCHES[1] * style.dpi))
    assert all(p.width <= limit[0] and p.height <= limit[1] for p in pages)
    pdf = pdf_bytes(long_spec, style)
    boxes = re.findall(rb"/MediaBox \[ ?0 0 ([\d.]+) ([\d.]+) ?\]", pdf)
    assert len(boxes) == len(pages)
    for width, height in boxes:  # points; A4 landscape is 842×595, Letter 792×612
        assert float(width) <= 792.5 and float(height) <= 595.5
    # the column headers (between the title, which numbers the page, and the first row of
    # panels) are the same on every page
    first = np.asarray(pages[0].convert("L"))
    panel_rows = np.nonzero((first < 250).mean(axis=1) > 0.5)[0]
    band = slice(int(panel_rows[0] * 0.35), int(panel_rows[0]))
    assert (first[band] < 128).any()  # the band holds header text
    for page in pages[1:]:
        np.testing.assert_array_equal(np.asarray(page.convert("L"))[band], first[band])


def test_row_labels_are_never_cut_at_the_left_edge(long_spec):
    grid = np.asarray(compose_grid(long_spec, RenderStyle(dpi=100)).convert("L"))
    names = [row.image.image_id for row in long_spec.rows]
    assert "ILSVRC2012_val_00000002" in names  # Shetland sheepdog
    margin = grid[:, :3]  # nothing is drawn in the first pixels: no glyph is cut there
    assert margin.min() == 255


def test_png_and_pdf_bytes_and_a_too_large_png_is_split(long_spec, tmp_path):
    style = RenderStyle(dpi=100)
    written, manifest_path = save_figure(long_spec, style, tmp_path / "fig.png")
    assert len(written) == 1 and written[0].read_bytes().startswith(b"\x89PNG")
    parts = png_parts(long_spec, style, max_megapixels=2)
    assert len(parts) > 1 and all(p.width * p.height <= 2.2e6 for p in parts)
    assert png_is_split(long_spec, style, max_megapixels=2)
    # One row cannot be split: it stays one PNG however large (the app names it .png, not .zip).
    one_row = dataclasses.replace(long_spec, rows=long_spec.rows[:1])
    assert not png_is_split(one_row, style, max_megapixels=0.1)
    assert len(png_parts(one_row, style, max_megapixels=0.1)) == 1
    assert pdf_bytes(long_spec, style).startswith(b"%PDF")
    with pytest.raises(ValueError, match="unsupported format"):
        save_figure(long_spec, style, tmp_path / "fig.gif")


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
    assert 6 * style.panel_px < grid.width < 7.5 * style.panel_px
    assert grid.height > 6 * style.panel_px
    # across a row of panels: two grey columns (depth, width: one panel each, spanning every
    # row) and three coloured map overlays
    pixels = np.asarray(grid.convert("RGB")).astype(int)
    line = pixels[grid.height // 2]
    grey = (np.abs(line - 236).max(axis=1) <= 1).sum()
    coloured = (line.max(axis=1) - line.min(axis=1) > 60).sum()
    assert grey > 1.8 * style.panel_px and coloured > 1.5 * style.panel_px
    assert "depth: unavailable" in proc.stderr


@pytest.mark.parametrize("name", ["turbo", "viridis", "inferno", "magma", "plasma"])
def test_inspect_colorscale_matches_matplotlibs_colormap(name):
    """The plotly colours the Inspect tab uses are OpenCV's table; where matplotlib defines the
    same colormap (an independent source) they agree to within rounding."""
    import matplotlib

    from cam.render.overlay import colorscale

    for t, rgb in colorscale(name, 16):
        ours = np.array([int(v) for v in rgb[4:-1].split(",")])
        reference = np.array(matplotlib.colormaps[name](t)[:3]) * 255
        assert np.abs(ours - reference).max() <= 1.5, (name, t)


def test_hover_coordinates_are_where_the_map_was_sampled():
    """A map whose value is the photo x (or y) coordinate of each cell centre is reproduced by
    bilinear resampling; read at ``pixel_centres`` it must give those coordinates back."""
    from cam.engine.geometry import pixel_centres

    crop = (0.0, 0.0, 200.0, 100.0)
    cells = 20
    centres_x = (np.arange(cells) + 0.5) * 200 / cells
    centres_y = (np.arange(cells) + 0.5) * 100 / cells
    region = (40.0, 20.0, 160.0, 80.0)  # inside the crop, away from its borders
    xs, ys = pixel_centres(region, 30)
    along_x = map_in_region(np.tile(centres_x, (cells, 1)), crop, region, 30)
    along_y = map_in_region(np.tile(centres_y[:, None], (1, cells)), crop, region, 30)
    np.testing.assert_allclose(along_x[0], xs, atol=1e-3)
    np.testing.assert_allclose(along_y[:, 0], ys, atol=1e-3)


def _text_lines(panel: Image.Image) -> int:
    """Rows of text in a panel: runs of pixel rows that hold dark ink, gaps of up to 2 px
    closed (between a letter and its accent or underscore) and runs under 3 px dropped."""
    ink = np.flatnonzero((np.asarray(panel.convert("L")) < 140).any(axis=1))
    if not len(ink):
        return 0
    runs = np.split(ink, np.flatnonzero(np.diff(ink) > 3) + 1)
    return sum(run[-1] - run[0] + 1 >= 3 for run in runs)


def test_an_exported_unavailable_panel_shows_the_whole_command(lite_zoo):
    """A one-row export's panel is square; the reason and the command must still fit whole,
    as many text lines as on a panel tall enough for any text."""
    from cam.render.grid import GreyColumn, unavailable_column

    model = next(m for m in lite_zoo.models if m.key == "width")
    grey = GreyColumn.of(model)
    # the fixture's checkpoints folder is pytest's temporary one, whose path grows with every run
    # on a machine (pytest-9 … pytest-105): the panel's text, and so how small it must be drawn,
    # would depend on it. An operator's usual folder instead:
    root, usual = model.provenance.make_available.split("--out ")[1], "/srv/scalecam/checkpoints"
    width = dataclasses.replace(grey, reason=grey.reason.replace(root, usual),
                                fix=grey.fix.replace(root, usual))
    assert "/srv/scalecam/checkpoints" in width.fix
    tall = _text_lines(unavailable_column(300, 3000, width))
    assert tall >= 8  # title, reason, "To make it:", the command's lines
    assert _text_lines(unavailable_column(300, 300, width)) == tall


def test_a_narrow_grid_wraps_its_title_instead_of_cutting_it(lite_engine):
    """#32 item 12: a one-model Score-CAM figure's title was cut ("…lite famil…"). The same
    title drawn over one model and over five (wide enough for one line) must leave the same
    ink: wrapped, every word is there; cut short, a quarter of it was missing."""
    from cam.engine.figure import make_figure
    from cam.engine.methods import get_method
    from cam.render.grid import compose_grid, grid_layout
    from cam.render.style import RenderStyle

    style = RenderStyle()

    def title_ink(keys):
        spec = make_figure(lite_engine, [], get_method("scorecam"), model_keys=keys)
        band = np.asarray(compose_grid(spec, style).convert("L"))
        band = band[:grid_layout(spec, style, 1 + len(spec.models)).title_h]
        return int((band < 140).sum()), spec.title

    narrow, title = title_ink(["resolution"])
    wide, same_title = title_ink(None)
    assert title == same_title and title.endswith("lite family (Lite: no SE, ReLU6)")
    assert abs(narrow - wide) <= 0.03 * wide, (narrow, wide)


def _panel(grid: Image.Image, spec, style: RenderStyle, row: int, column: int) -> np.ndarray:
    from cam.render.grid import grid_layout

    lay = grid_layout(spec, style, 1 + len(spec.models))
    x, y, size = lay.column_x(column), lay.row_y(row), style.panel_px
    return np.asarray(grid)[y:y + size, x:x + size]


def _drawn_by_hand(spec, style: RenderStyle, row: int, column: int) -> np.ndarray:
    """Panel (row, column ≥ 1) from the geometry and overlay functions directly: the region's
    photo, every shown map resampled into it and scaled as ``style`` says, coloured, boxed."""
    from cam.engine.geometry import boxes_in_region, image_region, region_photo
    from cam.render.overlay import draw_boxes

    figure_row, size = spec.rows[row], style.panel_px
    region = image_region(figure_row.image, spec.models)
    shown = [m.key for m in spec.models if m.key in figure_row.results]
    maps = normalise([map_in_region(figure_row.results[k].raw_map,
                                    figure_row.results[k].crop_box, region, size)
                      for k in shown], style.normalisation)
    pixels = overlay(region_photo(figure_row.image, region, size),
                     maps[shown.index(spec.models[column - 1].key)], style.colormap, style.alpha)
    boxes = boxes_in_region(figure_row.image.boxes, region, size) if style.show_boxes else []
    return draw_boxes(pixels, boxes, size) if boxes else pixels


def test_a_redraw_from_the_kept_still_equals_the_grid_drawn_from_nothing(long_spec):
    """A display change redraws only the maps' colours; the rest of the grid (text, photos, the
    maps resampled into each region) is kept between redraws. The redrawn grid must be the
    one a fresh process draws, and its panels the maps coloured in the new style."""
    from cam.render import grid as grid_module

    spec = dataclasses.replace(long_spec, rows=long_spec.rows[:3])
    first = RenderStyle(dpi=100, show_boxes=True)
    second = RenderStyle(dpi=100, show_boxes=True, colormap="viridis", alpha=0.3,
                         normalisation="shared")
    grid_module._STILLS.clear()
    compose_grid(spec, first)
    assert len(grid_module._STILLS) == 1
    redrawn = compose_grid(spec, second)  # from the still kept by the first style
    assert len(grid_module._STILLS) == 1
    grid_module._STILLS.clear()
    np.testing.assert_array_equal(np.asarray(redrawn), np.asarray(compose_grid(spec, second)))
    for row in range(3):
        for column in (1, len(spec.models)):
            np.testing.assert_array_equal(_panel(redrawn, spec, second, row, column),
                                          _drawn_by_hand(spec, second, row, column))


def test_a_changed_map_is_never_drawn_from_a_stale_still(long_spec):
    """The kept part is keyed by what it is drawn from: the same grid with one model's map of
    the first image replaced (its transpose) draws the new map, not the kept one."""
    spec = dataclasses.replace(long_spec, rows=long_spec.rows[:2])
    style = RenderStyle(dpi=100)
    before = compose_grid(spec, style)
    row, key = spec.rows[0], spec.models[0].key
    changed = dataclasses.replace(row.results[key],
                                  raw_map=np.ascontiguousarray(row.results[key].raw_map.T))
    changed_row = dataclasses.replace(row, results={**row.results, key: changed})
    changed_spec = dataclasses.replace(spec, rows=[changed_row, *spec.rows[1:]])
    after = compose_grid(changed_spec, style)
    np.testing.assert_array_equal(_panel(after, changed_spec, style, 0, 1),
                                  _drawn_by_hand(changed_spec, style, 0, 1))
    assert not np.array_equal(_panel(after, changed_spec, style, 0, 1),
                              _panel(before, spec, style, 0, 1))
    np.testing.assert_array_equal(_panel(after, changed_spec, style, 1, 1),
                                  _panel(before, spec, style, 1, 1))
