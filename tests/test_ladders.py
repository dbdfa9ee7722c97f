"""Ladders beside Table 7 — the ResNet-50 row of Table 3 with torchvision's ResNets, the
compound ladder — and models a user brings, loaded through the real loading code.

No test downloads anything. torchvision reads a file already in ``$TORCH_HOME/hub/checkpoints``
under its published name without checking it, so the tests save randomly initialised state
dicts of the right architectures there, under the names torchvision's own ``Weights`` enums
give; the maps of such networks mean nothing, which these tests never ask of them (they check
plumbing, shapes, arithmetic and provenance).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from scaled_models import get_family, load_zoo
from scaled_models.ladders import COMPOUND_LADDER, RESNET_LADDER

from .conftest import REPO, SAMPLE_IMAGES

V2 = {"resnet50": tvm.ResNet50_Weights.IMAGENET1K_V2,
      "resnet101": tvm.ResNet101_Weights.IMAGENET1K_V2,
      "resnet152": tvm.ResNet152_Weights.IMAGENET1K_V2,
      "wide_resnet50_2": tvm.Wide_ResNet50_2_Weights.IMAGENET1K_V2}


def _save_random(name: str, folder: Path, seed: int = 0) -> Path:
    """A randomly initialised ``name`` saved where torchvision looks for its V2 weights."""
    torch.manual_seed(seed)
    path = folder / "hub" / "checkpoints" / Path(V2[name].url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tvm.get_model(name, weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory) -> Path:
    """A TORCH_HOME holding the four networks' files (about 0.76 GB, written once)."""
    home = tmp_path_factory.mktemp("torch-home")
    for seed, name in enumerate(V2):
        _save_random(name, home, seed)
    return home


@pytest.fixture
def resnet_home(torch_home, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    return torch_home


@pytest.fixture
def resnet_zoo(resnet_home, tmp_path):
    return load_zoo(get_family("resnet"), tmp_path, device="cpu", ladder=RESNET_LADDER)


def test_the_resnet_ladder_loads_every_published_network_and_no_compound_one(resnet_zoo):
    models = {m.key: m for m in resnet_zoo.models}
    assert list(models) == ["resnet50", "resnet101", "resnet152", "wide_resnet50_2",
                            "resnet50_r2", "compound"]
    assert [m.available for m in models.values()] == [True] * 5 + [False]
    compound = models["compound"].provenance
    assert "no published ResNet scales depth, width and resolution" in compound.unavailable_reason
    assert not compound.make_available  # nothing to run: nobody publishes one
    # the resolution column is ResNet-50's own network at twice its resolution, not a copy
    assert models["resnet50_r2"].net is models["resnet50"].net
    assert "test-time resolution, not retrained" in models["resnet50_r2"].provenance.recipe
    bindings = get_family("resnet").bindings(RESNET_LADDER)
    for key, weights in V2.items():
        prov = models[key].provenance
        # what the weights are comes from torchvision's enum: file, top-1, preprocessing
        transforms = weights.transforms()
        assert Path(prov.file).name == Path(weights.url).name
        assert bindings[key].weights.top1 == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert (prov.preprocessing["resolution"], prov.preprocessing["resize_size"]) == (
            transforms.crop_size[0], transforms.resize_size[0])
        assert prov.preprocessing["interpolation"] == transforms.interpolation.value
        digest = hashlib.sha256(Path(prov.file).read_bytes()).hexdigest()
        assert prov.sha256 == digest
        # these files are random stand-ins under the published names: torchvision would load
        # them without a word; scalecam loads them and says they are not the published bytes
        assert (prov.status, prov.top1) == ("unverified", None)
        assert f"does not start with {Path(weights.url).stem.rsplit('-', 1)[1]}" in prov.recipe
    r2 = models["resnet50_r2"].preprocessing
    assert (r2.resolution, r2.resize_size) == (448, 464)  # 2 × (224 of 232), crop kept


def test_counted_depth_width_and_cost_are_what_the_networks_are(resnet_zoo):
    """Blocks per stage are He et al.'s ([3,4,6,3], [3,4,23,3], [3,8,36,3]); Wide ResNet-50-2
    doubles the bottleneck's 3×3 channels; MACs equal torchvision's published GFLOPS."""
    models = {m.key: m for m in resnet_zoo.models}
    assert models["resnet101"].scaled.depth == pytest.approx(33 / 16, abs=1e-3)
    assert models["resnet152"].scaled.depth == pytest.approx(50 / 16, abs=1e-3)
    assert (models["wide_resnet50_2"].scaled.width, models["wide_resnet50_2"].scaled.depth) == \
        (2.0, 1.0)
    assert models["resnet50_r2"].scaled.resolution == 2.0
    assert models["compound"].scaled is None  # no network to count
    for key, weights in V2.items():
        assert models[key].run_macs / 1e9 == pytest.approx(weights.meta["_ops"], rel=0.01)
    # at twice the resolution, four times the multiply-adds
    assert models["resnet50_r2"].run_macs == pytest.approx(4 * models["resnet50"].run_macs,
                                                            rel=0.01)
    assert models["resnet152"].column.paper.label == "Scale ResNet-50 by depth (d=4)"


def test_the_exact_cam_of_a_resnet_is_layer4_weighted_by_fc(resnet_home, tmp_path):
    """Zhou et al.'s CAM computed by hand on torchvision's own ResNet-50 (loaded with
    torchvision's loader from the same file, preprocessed by torchvision's transforms):
    layer4's output weighted by fc's row of the predicted class."""
    from cam.engine.engine import CamEngine
    from cam.engine.inputs import collect_images

    zoo = load_zoo(get_family("resnet"), tmp_path, ["resnet50"], "cpu", ladder=RESNET_LADDER)
    image = collect_images([SAMPLE_IMAGES / "chelsea.png"]).images[0]
    result = CamEngine(zoo).compute([image])[(image.key, "resnet50")]

    net = tvm.resnet50()
    net.load_state_dict(torch.load(zoo.get("resnet50").provenance.file))
    net.eval()
    features = {}
    net.layer4.register_forward_hook(lambda _m, _i, out: features.setdefault("layer4", out))
    x = V2["resnet50"].transforms()(Image.open(SAMPLE_IMAGES / "chelsea.png").convert("RGB"))
    with torch.no_grad():
        predicted = int(net(x[None]).argmax())
        by_hand = torch.einsum("chw,c->hw", features["layer4"][0],
                               net.fc.weight[predicted]).numpy()
    assert result.target_class == predicted
    assert result.raw_map.shape == by_hand.shape == (7, 7)
    np.testing.assert_allclose(result.raw_map, by_hand, rtol=1e-3,
                               atol=1e-3 * np.abs(by_hand).max())


def test_a_resnet_runs_its_exact_cam_on_its_one_resident_copy(resnet_home, tmp_path):
    """#31's memory: the ResNets' exact CAM runs on the loaded network itself (a BN-folded copy
    would double the ladder's 0.76 GB and gains no speed on a dense ResNet), while a Lite
    network, depthwise, keeps its faster folded copy. Seen from outside: after a first map,
    doubling the resident network's ``fc`` doubles the next map of the ResNet only."""
    from cam.engine.engine import CamEngine
    from cam.engine.fold import folding_pays
    from cam.engine.inputs import collect_images

    image = collect_images([SAMPLE_IMAGES / "chelsea.png"]).images[0]
    resnet = load_zoo(get_family("resnet"), tmp_path, ["resnet50"], "cpu", ladder=RESNET_LADDER)
    lite = load_zoo(get_family("lite"), tmp_path / "none", ["baseline"], "cpu")
    for zoo, key, shares in ((resnet, "resnet50", True), (lite, "baseline", False)):
        engine = CamEngine(zoo, cache_mb=0, autocast=False)
        net = zoo.get(key).net
        assert folding_pays(net) is not shares  # ResNets have no depthwise convolution
        before = engine.compute([image])[(image.key, key)]
        with torch.no_grad():
            net.fc.weight.mul_(2)
            net.fc.bias.mul_(2)
        after = engine.compute([image])[(image.key, key)]
        assert after.target_class == before.target_class
        ratio = 2.0 if shares else 1.0
        np.testing.assert_allclose(after.raw_map, ratio * before.raw_map, rtol=1e-4,
                                   atol=1e-5 * np.abs(before.raw_map).max())


def test_an_idle_network_is_let_go_and_read_back_from_its_file_for_the_next_map(
        tmp_path, monkeypatch):
    """#31's memory with a ladder visitor who stays: a server lets an idle network's weights go
    (``park_idle``); the next map reads them back from the same file and comes out as before,
    for a ResNet (shared by two columns) and a Lite network (whose folded copy goes too). A
    network in use is never let go, and a file that changed meanwhile is refused, named."""
    from cam.engine.engine import CamEngine
    from cam.engine.inputs import collect_images
    from cam.engine.methods import get_method
    from scaled_models.family import WeightsUnavailable

    home = tmp_path / "home"
    weights_file = _save_random("resnet50", home)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    image = collect_images([SAMPLE_IMAGES / "chelsea.png"]).images[0]
    resnet = load_zoo(get_family("resnet"), tmp_path, ["resnet50", "resnet50_r2"], "cpu",
                      ladder=RESNET_LADDER)
    lite = load_zoo(get_family("lite"), tmp_path / "none", ["baseline"], "cpu")
    gradcam = get_method("gradcam")
    for zoo, keys in ((resnet, ["resnet50", "resnet50_r2"]), (lite, ["baseline"])):
        engine = CamEngine(zoo, cache_mb=0, autocast=False)
        net = zoo.get(keys[0]).net
        first = engine.compute([image])
        first_gradcam = engine.compute([image], gradcam, model_keys=keys[:1])
        assert engine.park_idle(3600) == []  # just used
        with engine.resident(keys[0]):
            assert engine.park_idle(0) == []  # in use
        assert engine.park_idle(0) == keys
        assert all(t.is_meta for t in [*net.parameters(), *net.buffers()])
        # Score-CAM's count (one pass per feature channel) comes from shapes: nothing read back
        assert engine.forward_passes(get_method("scorecam"), keys[0]) == net.fc.in_features
        assert all(t.is_meta for t in net.parameters())
        again = engine.compute([image])
        assert not any(t.is_meta for t in [*net.parameters(), *net.buffers()])
        assert not any(p.requires_grad for p in net.parameters())
        for key in keys:
            np.testing.assert_array_equal(again[(image.key, key)].raw_map,
                                          first[(image.key, key)].raw_map)
            assert again[(image.key, key)].top5 == first[(image.key, key)].top5
        engine.park_idle(0)
        np.testing.assert_array_equal(
            engine.compute([image], gradcam, model_keys=keys[:1])[(image.key, keys[0])].raw_map,
            first_gradcam[(image.key, keys[0])].raw_map)

    engine = CamEngine(resnet, cache_mb=0, autocast=False)
    engine.compute([image], model_keys=["resnet50"])
    assert engine.park_idle(0) == ["resnet50", "resnet50_r2"]
    _save_random("resnet50", home, seed=1)  # another file under the same name
    with pytest.raises(WeightsUnavailable, match=weights_file.name) as refused:
        engine.compute([image], model_keys=["resnet50"])
    assert "no longer the file this server loaded" in str(refused.value)


def test_a_ladder_drawn_one_network_at_a_time_holds_one_networks_weights(resnet_zoo):
    """#31's serve peak: a server's ladder engine (``one_network_at_a_time``) lets each
    network's weights go once its maps are drawn. While a column's maps are reported, only
    its own network (shared by ResNet-50's two columns) holds weights; after the draw none
    does; the maps are those of an engine that keeps every network, and a second draw reads
    the weights back to the same maps."""
    from cam.engine.engine import CamEngine
    from cam.engine.inputs import collect_images

    images = collect_images([SAMPLE_IMAGES / "chelsea.png", SAMPLE_IMAGES / "coffee.png"]).images
    keys = ["resnet50", "resnet101", "resnet50_r2", "wide_resnet50_2"]
    nets = {key: resnet_zoo.get(key).net for key in keys}

    def resident() -> set[str]:
        return {key for key, net in nets.items()
                if not any(t.is_meta for t in [*net.parameters(), *net.buffers()])}

    kept = CamEngine(resnet_zoo, cache_mb=0, autocast=False).compute(images, model_keys=keys)
    assert resident() == set(keys)
    seen: dict[str, set[str]] = {}
    engine = CamEngine(resnet_zoo, cache_mb=0, autocast=False, one_network_at_a_time=True)
    drawn = engine.compute(images, model_keys=keys,
                           progress=lambda run: seen.setdefault(run.model_key, resident()))
    assert seen == {"resnet50": {"resnet50", "resnet50_r2"}, "resnet101": {"resnet101"},
                    "resnet50_r2": {"resnet50", "resnet50_r2"},
                    "wide_resnet50_2": {"wide_resnet50_2"}}
    assert resident() == set()
    again = engine.compute(images, model_keys=keys)
    for pair, result in kept.items():
        np.testing.assert_array_equal(drawn[pair].raw_map, result.raw_map)
        np.testing.assert_array_equal(again[pair].raw_map, result.raw_map)
        assert drawn[pair].top5 == result.top5


def test_a_library_method_on_a_resnet_holds_it_from_other_sessions_exact_cams(
        resnet_home, tmp_path, monkeypatch):
    """With one copy of a ResNet, a library method's hooks sit on the network the exact CAM
    runs: another session's exact CAM of that model must wait (its forward pass would land in
    the library's recorded activations), and both maps come out as computed alone."""
    import threading

    import cam.engine.engine as engine_module
    from cam.engine.engine import CamEngine
    from cam.engine.inputs import collect_images
    from cam.engine.methods import EXACT, get_method
    from cam.engine.targets import PREDICTED

    image = collect_images([SAMPLE_IMAGES / "chelsea.png"]).images[0]
    zoo = load_zoo(get_family("resnet"), tmp_path, ["resnet50"], "cpu", ladder=RESNET_LADDER)
    gradcam = get_method("gradcam")
    alone = {m: CamEngine(zoo, cache_mb=0, autocast=False).compute([image], m)[
        (image.key, "resnet50")].raw_map for m in (EXACT, gradcam)}
    real, inside, started, seen = (engine_module.library_cam, threading.Event(),
                                   threading.Event(), [])

    def hooked_library_cam(net, *args, **kwargs):
        handle = net.features.register_forward_hook(lambda *_: seen.append("forward"))
        inside.set()
        started.wait(timeout=300)
        exact.join(timeout=5)  # the exact CAM's chance to run (it must not)
        handle.remove()
        return real(net, *args, **kwargs)

    monkeypatch.setattr(engine_module, "library_cam", hooked_library_cam)
    engine = CamEngine(zoo, cache_mb=0, autocast=False)
    got: dict = {}
    exact = threading.Thread(target=lambda: got.update(
        exact=engine.compute([image], EXACT, PREDICTED, ["resnet50"])), daemon=True)
    library = threading.Thread(target=lambda: got.update(
        library=engine.compute([image], gradcam, PREDICTED, ["resnet50"])), daemon=True)
    library.start()
    assert inside.wait(timeout=300)
    exact.start()
    started.set()
    library.join(timeout=600)
    exact.join(timeout=600)
    assert seen == []  # no other session's forward pass passed the library's hook
    for name, method in (("exact", EXACT), ("library", gradcam)):
        np.testing.assert_allclose(got[name][(image.key, "resnet50")].raw_map, alone[method],
                                   rtol=1e-4, atol=1e-5 * np.abs(alone[method]).max())


def test_a_file_is_published_only_if_its_sha256_starts_as_its_name_says(tmp_path):
    """torchvision names a file <name>-<first 8 hex digits of its sha256>.pth."""
    from scaled_models.weights import unverified_reason

    path = tmp_path / "resnet50-00000000.pth"
    path.write_bytes(b"not the published bytes")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert unverified_reason("torchvision X", digest[:8], path, digest) is None
    other = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
    reason = unverified_reason("torchvision X", other, path, digest)
    assert f"does not start with {other}" in reason and path.name in reason


def test_a_truncated_or_foreign_file_disables_only_its_own_column(tmp_path, monkeypatch):
    home = tmp_path / "home"
    for name in ("resnet50", "wide_resnet50_2"):
        _save_random(name, home)
    truncated = _save_random("resnet101", home)
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    foreign = home / "hub" / "checkpoints" / Path(V2["resnet152"].url).name
    torch.save(tvm.resnet18().state_dict(), foreign)  # another network under its name
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    zoo = load_zoo(get_family("resnet"), tmp_path, device="cpu", ladder=RESNET_LADDER)
    state = {m.key: m.provenance for m in zoo.models}
    assert [k for k, p in state.items() if p.available] == ["resnet50", "wide_resnet50_2",
                                                            "resnet50_r2"]
    assert truncated.name in state["resnet101"].unavailable_reason
    assert "not a loadable tensor file" in state["resnet101"].unavailable_reason
    assert foreign.name in state["resnet152"].unavailable_reason
    assert "does not fit this architecture" in state["resnet152"].unavailable_reason


def test_without_the_files_every_column_is_grey_with_the_command_that_fetches_it(tmp_path):
    out = tmp_path / "fig.png"
    env = os.environ | {"TORCH_HOME": str(tmp_path / "empty"), "SCALECAM_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "cam", "figure", "--ladder", "resnet",
                          "--images", str(SAMPLE_IMAGES / "chelsea.png"), "--out", str(out),
                          "--checkpoints", str(tmp_path)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["ladder"] == "resnet"
    for model in manifest["models"]:
        assert not model["available"]
        if model["key"] == "compound":
            continue
        url = V2[model["key"].removesuffix("_r2")].url
        destination = tmp_path / "empty" / "hub" / "checkpoints" / Path(url).name
        assert model["make_available"] == f"curl -L --create-dirs -o {destination} {url}"
        assert f"copy it to {destination}" in model["unavailable_reason"]
    assert Image.open(out).size[0] > 0


@pytest.mark.slow
def test_evaluate_report_and_save_maps_run_on_the_resnet_ladder(resnet_home, val_sample,
                                                                tmp_path):
    env = os.environ | {"TORCH_HOME": str(resnet_home), "SCALECAM_OFFLINE": "1"}
    out = tmp_path / "r.csv"
    common = ["--ladder", "resnet", "--models", "resnet50,wide_resnet50_2,compound",
              "--checkpoints", str(tmp_path), "--limit", "2", "--faithfulness-steps", "2"]
    run = subprocess.run([sys.executable, "-m", "cam", "evaluate", "--val-dir", str(val_sample),
                          "--out", str(out), "--save-maps", "--quiet", *common],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    rows = out.read_text().splitlines()
    header = rows[0].split(",")
    models = [line.split(",")[header.index("model")] for line in rows[1:]]
    assert models == ["resnet50", "wide_resnet50_2"] * 2  # the compound column has no weights
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["models"] == ["resnet50", "wide_resnet50_2"]
    # each column against the ladder's baseline (its first column)
    assert list(summary["differences"]) == ["wide_resnet50_2|resnet50"]
    options = json.loads(out.with_suffix(".options.json").read_text())
    assert options["ladder"] == "resnet"
    for key in ("resnet50", "wide_resnet50_2"):
        with np.load(tmp_path / f"r.maps.{key}.npz") as arrays:
            provenance = json.loads(str(arrays["provenance"]))
            assert arrays["a_batch"].shape == (2, 1, 224, 224)
        weights_file = resnet_home / "hub" / "checkpoints" / Path(V2[key].url).name
        assert provenance["sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
        assert provenance["preprocessing"]["resize_size"] == 232
    report = tmp_path / "report.pdf"
    run = subprocess.run([sys.executable, "-m", "cam", "report", "--val-dir", str(val_sample),
                          "--images", str(SAMPLE_IMAGES / "coffee.png"), "--out", str(report),
                          "--quiet", *common], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert report.read_bytes().startswith(b"%PDF")


@pytest.mark.slow
def test_the_notebook_compares_a_ladder_and_a_brought_model(resnet_home, tmp_path):
    from cam import compare

    result = compare([SAMPLE_IMAGES / "coffee.png"], ladder="resnet",
                     models="resnet50,resnet152,torchvision:wide_resnet50_2.IMAGENET1K_V2",
                     checkpoints=tmp_path, device="cpu")
    assert [r.model_key for r in result.rows] == [
        "resnet50", "resnet152", "torchvision:wide_resnet50_2.IMAGENET1K_V2"]
    assert result.ladder.name == "resnet" and result.family == "resnet"
    # the brought network is the ladder's own Wide ResNet file, so it gives the same map
    ladder = compare([SAMPLE_IMAGES / "coffee.png"], ladder="resnet", models="wide_resnet50_2",
                     checkpoints=tmp_path, device="cpu")
    np.testing.assert_allclose(result.rows[2].cam.raw_map, ladder.rows[0].cam.raw_map,
                               rtol=1e-4, atol=1e-4)


def test_the_compound_ladder_counts_lite_rungs_as_built(tmp_path):
    """Lite keeps the first and last stages' repeats: d=1.1 gives [1,3,3,4,4,5,1] = 21 blocks
    of B0's 16; Lite2's w=1.1 makes the last stage's depthwise channels 6·208 = 1248 of
    1152 (make_divisible(192·1.1) = 208); resolutions 224/240/260."""
    zoo = load_zoo(get_family("lite"), tmp_path, device="cpu", ladder=COMPOUND_LADDER)
    counted = {m.key: (m.scaled.depth, m.scaled.width, m.scaled.resolution) for m in zoo.models}
    assert counted == {"lite0": (1.0, 1.0, 1.0),
                       "lite1": (round(21 / 16, 3), 1.0, round(240 / 224, 3)),
                       "lite2": (round(21 / 16, 3), round(1248 / 1152, 3), round(260 / 224, 3))}
    assert [m.provenance.top1 for m in zoo.models] == [75.1, 76.7, 77.6]  # TF release table
    assert all(m.available for m in zoo.models)


@pytest.mark.parametrize("text, message", [
    ("torchvision:resnet5", "torchvision has no classification model 'resnet5'"),
    ("torchvision:resnet50.IMAGENET1K_V9", "resnet50 has no weights 'IMAGENET1K_V9'; choose"),
    ("timm:no_such_net", "has no model 'no_such_net'"),
    ("torchvision:resnet50=/no/such/file.pth", "no such file /no/such/file.pth"),
    ("torchvision:resnet50=weights.ckpt", "weights.ckpt must be a .safetensors or .pth"),
    ("keras:resnet50", "a brought model is torchvision:NAME[.WEIGHTS], timm:NAME"),
])
def test_a_brought_model_that_cannot_be_is_refused_before_anything_loads(text, message):
    from scaled_models.zoo import zoo_request

    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        zoo_request("lite", "table7", f"baseline,{text}")


@pytest.mark.slow
def test_a_brought_file_of_a_network_without_gap_and_linear_gets_the_library_methods(
        tmp_path):
    """VGG ends in three linear layers: its exact CAM is not defined, said in the grid's
    column; Grad-CAM runs on its convolutional body."""
    from cam import compare

    torch.manual_seed(0)
    weights = tmp_path / "vgg11.pth"
    torch.save(tvm.vgg11().state_dict(), weights)
    brought = f"torchvision:vgg11={weights}"
    exact = compare([SAMPLE_IMAGES / "coffee.png"], family="lite", models=f"baseline,{brought}",
                    checkpoints=tmp_path, device="cpu")
    assert [r.model_key for r in exact.rows] == ["baseline"]
    assert "its exact CAM is not defined" in exact.spec.not_run[brought]
    grad = compare([SAMPLE_IMAGES / "coffee.png"], family="lite", method="gradcam",
                   models=f"baseline,{brought}", checkpoints=tmp_path, device="cpu")
    assert [r.model_key for r in grad.rows] == ["baseline", brought]
    assert grad.rows[1].cam.raw_map.shape == (7, 7)  # VGG's last feature map at 224 px


def test_a_timm_model_is_read_from_the_hugging_face_cache(tmp_path, monkeypatch):
    """A timm model's file laid out as huggingface_hub caches a download, found without any
    network, wrapped as features → GAP → fc (its logits checked on a probe)."""
    import huggingface_hub
    import timm
    from safetensors.torch import save_file

    from cam import compare

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False)
    repo = model.pretrained_cfg["hf_hub_id"]
    snapshot = tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file(model.state_dict(), snapshot / "model.safetensors")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("SCALECAM_OFFLINE", "1")
    result = compare([SAMPLE_IMAGES / "coffee.png"], family="lite",
                     models="baseline,timm:resnet18", checkpoints=tmp_path, device="cpu")
    brought = result.models[1]
    assert brought.provenance.file == str(snapshot / "model.safetensors")
    assert brought.provenance.preprocessing["resolution"] == model.pretrained_cfg[
        "input_size"][-1]
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(brought.net(x), model.eval()(x), atol=1e-4)
    assert [r.model_key for r in result.rows] == ["baseline", "timm:resnet18"]
