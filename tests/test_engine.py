"""The CAM engine on real weights and real ImageNet validation images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cam.engine.engine import CamEngine
from cam.engine.inputs import image_from_path, image_from_sample
from cam.engine.methods import EXACT, METHODS
from cam.engine.targets import GROUND_TRUTH, PREDICTED, Target, parse_target
from safe_io.imagenet import class_index_of

from .conftest import SAMPLE_IMAGES


@pytest.fixture(scope="module")
def val_images(val_sample):
    from safe_io.imagenet_val import open_val_dir

    return [image_from_sample(s) for s in open_val_dir(val_sample).samples]


def test_exact_cam_is_classifier_weights_times_feature_map(lite_engine):
    model = lite_engine.zoo.get("baseline")
    image = image_from_path(SAMPLE_IMAGES / "chelsea.png")
    result = lite_engine.compute([image], EXACT, Target.of_class(281), ["baseline"])[
        (image.key, "baseline")]
    x = model.preprocessing(image.image)[None]
    with torch.no_grad():
        features = model.net.features(x)[0]  # C×h×w
    by_hand = sum(model.net.fc.weight[281, k] * features[k] for k in range(features.shape[0]))
    assert result.raw_map.shape == tuple(features.shape[1:]) == (7, 7)
    np.testing.assert_allclose(result.raw_map, by_hand.numpy(), rtol=1e-4, atol=1e-4)
    assert result.target_class == 281


def test_gradcam_equals_exact_cam_up_to_positive_scale(lite_engine):
    """For GAP+FC, Grad-CAM's channel weights are w_c / (h·w): the same map, ReLU'd."""
    image = image_from_path(SAMPLE_IMAGES / "coffee.png")
    exact = lite_engine.compute([image], EXACT, PREDICTED, ["baseline"])[(image.key, "baseline")]
    grad = lite_engine.compute([image], METHODS["gradcam"], PREDICTED, ["baseline"])[
        (image.key, "baseline")]
    assert grad.target_class == exact.target_class
    relu_exact = np.maximum(exact.raw_map, 0).ravel()
    corr = np.corrcoef(relu_exact, grad.raw_map.ravel())[0, 1]
    assert corr > 0.99
    np.testing.assert_allclose(grad.raw_map.ravel() * 49, relu_exact, rtol=1e-3, atol=1e-4)


def test_espresso_is_top1_on_the_coffee_photo(lite_engine):
    image = image_from_path(SAMPLE_IMAGES / "coffee.png")
    results = lite_engine.compute([image], EXACT, PREDICTED, ["baseline", "compound"])
    for key in ("baseline", "compound"):
        assert results[(image.key, key)].pred_class == class_index_of("n07920052")  # espresso


def test_lite_accuracy_on_the_shared_val_sample(lite_engine, val_images):
    """TF-style preprocessing gives Lite0 81 % / 100 % and Lite2 88 % / 100 % here."""
    results = lite_engine.compute(val_images, EXACT, PREDICTED, ["baseline", "compound"])
    for key, min_top1 in (("baseline", 0.70), ("compound", 0.80)):
        top1 = np.mean([results[(i.key, key)].pred_class == i.gt_class for i in val_images])
        top5 = np.mean([i.gt_class in [c for c, _ in results[(i.key, key)].top5]
                        for i in val_images])
        print(f"{key}: top-1 {top1:.1%}, top-5 {top5:.1%} on {len(val_images)} images")
        assert top1 >= min_top1 and top5 >= 0.90


def test_targets_ground_truth_and_fixed_class(lite_engine, val_images):
    images = val_images[:3]
    gt = lite_engine.compute(images, EXACT, GROUND_TRUTH, ["baseline"])
    assert [gt[(i.key, "baseline")].target_class for i in images] == [i.gt_class for i in images]
    fixed = lite_engine.compute(images, EXACT, parse_target("bakery"), ["baseline"])
    assert {fixed[(i.key, "baseline")].target_class for i in images} == {415}


def test_ground_truth_target_without_label_explains_the_prediction(lite_engine):
    image = image_from_path(SAMPLE_IMAGES / "rocket.jpg")
    result = lite_engine.compute([image], EXACT, GROUND_TRUTH, ["baseline"])[
        (image.key, "baseline")]
    assert result.target_class == result.pred_class
    assert "no ground truth" in result.notes[0]


def test_batched_results_equal_one_at_a_time(lite_zoo, val_images):
    images = val_images[:4]
    batched = CamEngine(lite_zoo, batch_size=4).compute(images, EXACT, PREDICTED, ["baseline"])
    single = CamEngine(lite_zoo, batch_size=1).compute(images, EXACT, PREDICTED, ["baseline"])
    for image in images:
        np.testing.assert_allclose(batched[(image.key, "baseline")].raw_map,
                                   single[(image.key, "baseline")].raw_map, atol=1e-3)


def test_parse_target_rejects_ambiguous_and_unknown():
    assert parse_target("n02776631") == Target.of_class(415)
    assert parse_target("967") == Target.of_class(967)
    with pytest.raises(ValueError, match="several classes"):
        parse_target("crane")
    with pytest.raises(ValueError, match="not 'predicted'"):
        parse_target("unicorn")


def test_unavailable_models_are_never_run(lite_engine):
    image = image_from_path(SAMPLE_IMAGES / "chelsea.png")
    results = lite_engine.compute([image], EXACT, PREDICTED)
    assert {key for _, key in results} == {"baseline", "resolution", "compound"}


def test_a_single_val_file_brings_its_label_and_boxes(val_sample, tmp_path):
    from cam.engine.inputs import collect_images

    report = collect_images([val_sample / "ILSVRC2012_val_00000008.JPEG",
                             SAMPLE_IMAGES / "coffee.png"])
    bakery, coffee = report.images
    assert bakery.gt_class == 415 and len(bakery.boxes) == 4
    assert bakery.image_id == "ILSVRC2012_val_00000008"
    assert coffee.gt_class is None and coffee.boxes == ()


@pytest.mark.parametrize("tolerance, kept", [(0.0, False), (1.0, True)])
def test_reduced_precision_is_kept_only_within_tolerance(lite_zoo, monkeypatch, tolerance, kept):
    """Autocast (tried on CUDA by default; forced here on the CPU's bf16) is checked against
    fp32 on the first batch and kept per model only if no map moves beyond tolerance. Two cases
    whose decision is known without the engine: no bf16 map equals its fp32 map exactly, so a
    tolerance of 0 refuses autocast; min-max-scaled maps never differ by more than 1, and bf16
    does not flip a 95 % espresso, so a tolerance of 1 keeps it."""
    import cam.engine.engine

    monkeypatch.setattr(cam.engine.engine, "AUTOCAST_TOLERANCE", tolerance)
    images = [image_from_path(SAMPLE_IMAGES / "coffee.png")]
    reference = CamEngine(lite_zoo, cache_mb=0, autocast=False)
    trial = CamEngine(lite_zoo, cache_mb=0, autocast=True)
    expected = reference.compute(images, EXACT, PREDICTED, ["baseline"])
    first = trial.compute(images, EXACT, PREDICTED, ["baseline"])
    assert trial.autocast_checks["baseline"]["dtype"] == "bfloat16"
    assert trial.autocast_checks["baseline"]["enabled"] is kept
    key = (images[0].key, "baseline")
    # the checking batch itself is returned in fp32
    np.testing.assert_allclose(first[key].raw_map, expected[key].raw_map, atol=1e-4)
    again = trial.compute(images, EXACT, PREDICTED, ["baseline"])[key].raw_map
    if kept:  # the later batch really ran in bf16: its map moved
        assert np.abs(again - expected[key].raw_map).max() > 1e-4
        assert again.shape == expected[key].raw_map.shape
    else:
        np.testing.assert_allclose(again, expected[key].raw_map, atol=1e-4)
    assert CamEngine(lite_zoo).autocast_checks == {}  # CPU default: fp32 only


@pytest.mark.parametrize("text", ["0", "tench", "n01440764"])
def test_class_zero_tench_can_be_the_target(lite_engine, text):
    """Class index 0 is a class like any other (it once read as 'no class')."""
    image = image_from_path(SAMPLE_IMAGES / "chelsea.png")
    target = parse_target(text)
    assert target.class_index == 0
    result = lite_engine.compute([image], EXACT, target, ["baseline"])[(image.key, "baseline")]
    assert result.target_class == 0


def test_a_figure_keeps_no_network_alive_once_its_engine_is_gone(tmp_path):
    """#31: the app's downloads keep a figure for minutes after their visitor left; the figure
    describes its columns (still available, same provenance) without holding their networks,
    so a released engine's weights are freed while the figure lives on."""
    import gc
    import weakref

    from cam.engine.figure import make_figure
    from scaled_models import get_family, load_zoo

    zoo = load_zoo(get_family("lite"), tmp_path, keys=("baseline",), device="cpu")
    engine = CamEngine(zoo)
    image = image_from_path(SAMPLE_IMAGES / "chelsea.png")
    spec = make_figure(engine, [image])
    net = weakref.ref(zoo.get("baseline").net)
    column = spec.models[0]
    assert column.available and column.provenance == zoo.get("baseline").provenance
    assert spec.rows[0].results["baseline"].raw_map.shape == (7, 7)
    del zoo, engine
    gc.collect()
    assert net() is None and spec.models[0].key == "baseline"


def test_maps_kept_on_disk_serve_a_second_engine_as_computed_and_only_for_the_same_inputs(
        lite_zoo, tmp_path):
    """#36's second start: an engine given the map store of an earlier one (a server that
    restarted) reads those maps instead of computing them, equal to a fresh computation; a
    different class, method, picture or set of weights is computed, not read."""
    import dataclasses
    import io

    from cam.engine.engine import ModelRun
    from cam.engine.inputs import image_from_bytes
    from cam.engine.methods import get_method
    from safe_io.digest_store import DigestStore

    images = [image_from_path(SAMPLE_IMAGES / n) for n in ("chelsea.png", "coffee.png")]
    keys = ["baseline", "compound"]
    store = DigestStore(tmp_path / "maps")
    runs: list[ModelRun] = []
    first = CamEngine(lite_zoo, store=store).compute(images, model_keys=keys)
    again = CamEngine(lite_zoo, store=store).compute(images, model_keys=keys,
                                                      progress=runs.append)
    fresh = CamEngine(lite_zoo).compute(images, model_keys=keys)
    assert [(r.computed, r.cached, r.from_disk) for r in runs] == [(0, 2, 2)] * 2
    for key, result in fresh.items():
        np.testing.assert_array_equal(again[key].raw_map, result.raw_map)
        assert again[key].top5 == result.top5 == first[key].top5
        assert again[key].target_class == result.target_class
        assert again[key].crop_box == result.crop_box

    def counts(engine: CamEngine, *args, **kwargs) -> list[tuple[int, int]]:
        seen: list[ModelRun] = []
        engine.compute(*args, model_keys=["baseline"], progress=seen.append, **kwargs)
        return [(r.computed, r.from_disk) for r in seen]

    engine = CamEngine(lite_zoo, store=store)
    assert counts(engine, images, EXACT, Target.of_class(1)) == [(2, 0)]
    assert counts(engine, images, get_method("gradcam")) == [(2, 0)]
    pixels = images[0].image.copy()
    pixels.putpixel((0, 0), (0, 0, 0))  # one pixel changed: another file, another content hash
    png = io.BytesIO()
    pixels.save(png, format="PNG")
    assert counts(engine, [image_from_bytes(png.getvalue(), "chelsea.png")]) == [(1, 0)]
    other_weights = dataclasses.replace(lite_zoo, models=[dataclasses.replace(
        m, provenance=dataclasses.replace(m.provenance, sha256="0" * 64))
        for m in lite_zoo.models])
    assert counts(CamEngine(other_weights, store=store), images) == [(2, 0)]
    assert counts(CamEngine(lite_zoo, store=store), images) == [(0, 2)]  # still there


def test_a_network_read_back_after_parking_gets_its_unsaved_buffers_too():
    """A state dict leaves out buffers registered with ``persistent=False`` (e.g. a fixed
    blur filter); a parked network read back must get them from the fresh load as well."""
    from cam.engine.engine import _Inference

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        net.register_buffer("blur", torch.full((4, 1, 1), 0.25), persistent=False)
        return net.eval()

    net = build()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        before = net(x) * net.blur
    slot = _Inference(net, build)
    assert slot.park(0)
    assert net.blur.is_meta and net[0].weight.is_meta
    with slot.use(), torch.no_grad():
        after = net(x) * net.blur
    assert not any(t.is_meta for t in [*net.parameters(), *net.buffers()])
    assert torch.equal(after, before)


def test_the_folded_copy_computes_what_the_network_does_and_shares_nothing_with_it(lite_zoo):
    """The exact CAM's Lite network with BatchNorm folded into its convolutions: on a real
    photo, the same logits and features as the unfolded network (to float rounding), and a
    copy of its own — a hook on the original never sees the copy's forward pass, and a change
    to the original's classifier leaves the copy's logits as they were."""
    from cam.engine.fold import fold_batchnorm

    net = lite_zoo.get("baseline").net
    x = lite_zoo.get("baseline").preprocessing(image_from_path(SAMPLE_IMAGES / "coffee.png").image)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 49
    calls = []
    handle = net.fc.register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            expected, got = net(x[None]), folded(x[None])
            features, folded_features = net.features(x[None]), folded.features(x[None])
        assert len(calls) == 1  # the original's own forward only
    finally:
        handle.remove()
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(folded_features.numpy(), features.numpy(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        net.fc.weight.mul_(2)
        try:
            again = folded(x[None])
        finally:
            net.fc.weight.div_(2)
    assert torch.equal(again, got)


def test_two_callers_asking_for_the_same_maps_at_once_compute_them_once(lite_zoo):
    """A shared server's first pages (two visitors, or one and the server's warm-up) ask for
    the same maps at the same moment: each model's maps are computed by one caller, and the
    other waits and takes them from the cache; both get the same maps."""
    import threading

    images = [image_from_path(SAMPLE_IMAGES / name) for name in ("chelsea.png", "coffee.png")]
    engine = CamEngine(lite_zoo)
    start = threading.Barrier(2)
    runs: list = []
    results: list = []

    def caller() -> None:
        start.wait()
        results.append(engine.compute(images, progress=runs.append))

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    available = [m.key for m in lite_zoo.available()]
    assert len(available) == 3
    assert sum(run.computed for run in runs) == len(images) * len(available)
    assert sum(run.cached for run in runs) == len(images) * len(available)
    assert results[0].keys() == results[1].keys()
    for pair, result in results[0].items():
        assert results[1][pair] is result
