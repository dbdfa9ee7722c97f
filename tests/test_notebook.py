"""``cam.compare``, the notebook entry: the README's example run as written, and what it returns
checked against what is computed without it — a plain forward pass through the same models, the
command line's own grid of the same images, the same pictures given as PIL images — and its
refusals of bad input, made before any model loads."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import REPO, SAMPLE_IMAGES

README_HEADING = "## In a notebook: `cam.compare`"
EXAMPLE_FILES = [SAMPLE_IMAGES / "chelsea.png", SAMPLE_IMAGES / "coffee.png"]
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = (967, 968)  # espresso, cup


def readme_example() -> str:
    """The python block of the README's notebook section, as a reader copies it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert README_HEADING in text, "the README has lost its notebook section"
    return text.split(README_HEADING, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def example():
    """The README example's result, run from the checkout as a reader would."""
    here = os.getcwd()
    os.chdir(REPO)
    try:
        namespace: dict = {}
        exec(compile(readme_example(), "README example", "exec"), namespace)
        return namespace["result"]
    finally:
        os.chdir(here)


def figure_pixels(figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_readme_example_runs_and_predicts_what_a_plain_forward_pass_does(example):
    from matplotlib.figure import Figure

    from cam import CompareResult

    result = example
    assert isinstance(result, CompareResult) and isinstance(result.figure, Figure)
    models = result.models
    assert [m.key for m in models] == ["baseline", "depth", "width", "resolution", "compound"]
    ran = [m for m in models if m.available]
    assert ran, "the lite family always has its published baseline"
    # one row per (image, model that ran), images in the order given, models in paper order
    assert [(r.image_id, r.model_key) for r in result.rows] == [
        (name, m.key) for name in ("chelsea", "coffee") for m in ran]
    assert {u.key for u in result.unavailable} == {m.key for m in models if not m.available}
    for missing in result.unavailable:
        assert missing.reason and "python -m scaled_models.train" in missing.make_available
    # each model once over both pictures, decoded by PIL itself, through the unfolded network
    pictures = [Image.open(path).convert("RGB") for path in EXAMPLE_FILES]
    passes = {}
    with torch.inference_mode():
        for model in ran:
            logits, features = model.net.forward_with_features(
                torch.stack([model.preprocessing(picture) for picture in pictures]))
            passes[model.key] = logits.softmax(dim=1), features, model.net.fc.weight
    for row in result.rows:
        probs, features, weights = passes[row.model_key]
        probs = probs[row.image_index]
        assert row.prediction == int(probs.argmax()) == row.target_class
        assert row.probability == pytest.approx(float(probs.max()), abs=1e-4)
        # the exact CAM of that class, Σ_k w_k A_k
        cam = torch.einsum("chw,c->hw", features[row.image_index], weights[row.prediction])
        assert np.allclose(row.cam.raw_map, cam.numpy(), rtol=1e-3, atol=1e-3 * float(
            cam.abs().max()))
        assert result.map_of(row.image_id, row.model_key) is row.cam
        assert row.ground_truth is None and row.correct is None
    baseline = {r.image_id: r.prediction for r in result.rows if r.model_key == "baseline"}
    assert baseline["chelsea"] in CAT_CLASSES and baseline["coffee"] in COFFEE_CLASSES


def test_figure_is_the_command_lines_grid_pixel_for_pixel(example, tmp_path):
    import json

    from cam.cli.main import main

    result = example
    out = tmp_path / "cli.png"
    here = os.getcwd()
    os.chdir(REPO)  # the same default checkpoints folder as the example
    try:
        assert main(["figure", "--images", *map(str, EXAMPLE_FILES), "--family", "lite",
                     "--method", "cam", "--dpi", "100", "--out", str(out)]) == 0
    finally:
        os.chdir(here)
    cli = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(figure_pixels(result.figure), cli)
    assert np.array_equal(np.asarray(result.grid), cli)
    # the figure is as large as the grid it shows, at the style's DPI (~11 in. wide: one cell)
    width, height = result.figure.get_size_inches() * result.figure.dpi
    assert (round(width), round(height)) == result.grid.size
    manifest = json.loads(out.with_suffix(".json").read_text())
    for row in result.rows:
        panel = manifest["images"][row.image_index]["panels"][row.model_key]
        assert panel["top5"][0][0] == row.prediction
    # save() writes what the command writes
    written, _ = result.save(tmp_path / "saved.png")
    assert np.array_equal(np.asarray(Image.open(written[0]).convert("RGB")), cli)


def test_pil_images_give_the_maps_of_their_files_and_models_stay_loaded(example):
    from cam import compare
    from cam.notebook.compare import _ENGINES

    result = example
    engines = len(_ENGINES)
    in_memory = Image.fromarray(np.asarray(Image.open(EXAMPLE_FILES[0]).convert("RGB")))
    mixed = compare([in_memory, EXAMPLE_FILES[1]], family="lite", method="cam")
    assert len(_ENGINES) == engines  # the example's models, not a second load
    assert [i.image_id for i in mixed.images] == ["image 1", "coffee"]
    assert [(r.image_index, r.model_key, r.prediction) for r in mixed.rows] == [
        (r.image_index, r.model_key, r.prediction) for r in result.rows]
    for before, after in zip(result.rows, mixed.rows):
        assert np.allclose(after.cam.raw_map, before.cam.raw_map, rtol=1e-5, atol=1e-5)
    # the file given by path is the same picture: its maps come from the engine's cache
    assert mixed.map_of("coffee", "baseline") is result.map_of("coffee", "baseline")
    # models= picks roles (paper order whatever the order given) from the same loaded engine
    two = compare(EXAMPLE_FILES[:1], family="lite", models=["compound", "baseline"])
    assert [m.key for m in two.spec.models] == ["baseline", "compound"]
    assert two.map_of(0, "baseline") is result.map_of(0, "baseline")
    assert len(_ENGINES) == engines


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "gradcamx"}, "unknown CAM method 'gradcamx'; choose from cam, gradcam, "),
    ({"family": "b7"}, "unknown family 'b7'; choose auto, "),
    ({"models": "baseline,huge"}, "unknown model 'huge' in the table7 ladder of the lite "
                                  "family; choose from all, baseline, depth"),
    ({"target": "no such class at all"}, "is not 'predicted', 'gt', a class index"),
])
def test_unknown_choices_are_refused_with_the_choices(kwargs, message):
    from cam import compare
    from cam.notebook.compare import _ENGINES

    engines = dict(_ENGINES)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        compare(EXAMPLE_FILES, **{"family": "lite", **kwargs})
    assert _ENGINES == engines  # refused before any model loads


def test_unreadable_images_are_named(tmp_path):
    from cam import ImageLoadError, compare
    from cam.notebook.compare import _ENGINES

    web_page = tmp_path / "photo.jpg"
    web_page.write_text("<html><body>not a photo</body></html>")
    engines = dict(_ENGINES)
    with pytest.raises(ValueError, match=r"missing\.jpg: no such file"):
        compare([EXAMPLE_FILES[0], tmp_path / "missing.jpg"], family="lite")
    with pytest.raises(ImageLoadError, match=r"2 images could not be read: .*missing\.jpg.*"
                                             r"photo\.jpg: the file contains HTML"):
        compare([tmp_path / "missing.jpg", web_page], family="lite")
    with pytest.raises(ValueError, match="no images given"):
        compare([], family="lite")
    with pytest.raises(ValueError, match="image 2: 'int' is neither a path nor a PIL image"):
        compare([EXAMPLE_FILES[0], 3], family="lite")
    assert _ENGINES == engines


def test_a_16_bit_pil_image_is_scaled_as_its_png_file_is_not_clipped():
    """A 16-bit PIL image goes through the decoder as the same picture saved as a PNG file would:
    its values scaled to 8 bits (65535 → 255), not clipped at 255 (which made a dark 16-bit
    gradient white)."""
    from cam.notebook.compare import _read_images
    from safe_io.images import load_image

    ramp = Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16))
    assert ramp.mode == "I;16"
    buffer = io.BytesIO()
    ramp.save(buffer, format="PNG")
    (picture,) = _read_images([ramp])
    from_file = np.asarray(load_image(buffer.getvalue()))
    np.testing.assert_array_equal(np.asarray(picture.image), from_file)
    assert from_file[..., 0].flat[1000] == 62  # 16000 · 255 / 65535 = 62.3; clipping gives 255


@pytest.mark.parametrize("kwargs, message", [
    ({"target": 3.5}, "target 3.5 is not 'predicted', 'gt', a class index"),
    ({"target": True}, "target True is not 'predicted', 'gt', a class index"),
    ({"target": 1000}, "target class must be 0..999, got 1000"),
    ({"target": ""}, "target is empty"),
    ({"style": "big"}, "style must be a cam.RenderStyle"),
    ({"models": ","}, "no model named in ','"),
    ({"models": []}, "no model named in ''"),
    ({"models": [1, 2]}, "models must be column keys or brought models"),
    ({"method": 3}, "method must be a name"),
    ({"device": "tpu"}, "device 'tpu' is not one of cpu, cuda, cuda:N, mps"),
    ({"checkpoints": ""}, "checkpoints must name a folder"),
    ({"progress": "yes"}, "progress must be a function"),
])
def test_wrong_types_and_empty_choices_are_refused_before_any_model_runs(kwargs, message):
    """#32 items 8 and 9: target=3.5 was an AttributeError, style="big" one after the maps had
    been computed, models="," a grid without model columns, device="tpu" a torch error."""
    from cam import compare
    from cam.notebook.compare import _ENGINES

    engines = dict(_ENGINES)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        compare(EXAMPLE_FILES[:1], **{"family": "lite", **kwargs})
    assert _ENGINES == engines  # refused before any model loads


def test_a_style_that_cannot_be_drawn_is_refused_when_it_is_made():
    from cam import RenderStyle

    with pytest.raises(ValueError, match="colormap 'bogus' is not one of jet"):
        RenderStyle(colormap="bogus")
    with pytest.raises(ValueError, match="alpha must be a number from 0 to 1, got nan"):
        RenderStyle(alpha=float("nan"))
    with pytest.raises(ValueError, match="dpi must be a whole number from 50 to 600"):
        RenderStyle(dpi=5000)


def test_a_numpy_integer_is_a_class_index(example):
    """#32 item 9: np.int64(5) (what argmax gives) was an AttributeError. Class 5 (electric ray)
    is what every map explains, checked against the model's own logits for that class."""
    from cam import compare

    result = compare(EXAMPLE_FILES[:1], family="lite", models="baseline", target=np.int64(5))
    (row,) = result.rows
    assert row.target_class == 5 and result.target.class_index == 5
    model = result.models[0]
    with torch.no_grad():
        logits = model.net(model.preprocessing(result.images[0].image)[None])
    assert row.target_probability == pytest.approx(float(logits.softmax(1)[0, 5]), abs=2e-3)
