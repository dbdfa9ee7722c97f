"""Weight families, checkpoint precedence, provenance, and refusing untrusted files."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from scaled_models import WeightsUnavailable, get_family, load_model, load_zoo
from scaled_models.cli import add_zoo_arguments, request_from_args
from scaled_models.family import resolve_family
from scaled_models.files import read_state_dict

LITE, EFFICIENTNET = get_family("lite"), get_family("efficientnet")


def _save_checkpoint(root, family, key, arch, meta=None):
    net = arch.build()
    folder = root / family
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(folder / f"{key}.safetensors"))
    if meta is not None:
        (folder / f"{key}.json").write_text(json.dumps(meta))
    return net


def test_unavailable_role_says_why_and_how(tmp_path):
    model = load_model(LITE, "width", tmp_path)
    assert not model.available and model.net is None
    prov = model.provenance
    assert prov.status == "unavailable"
    assert "nobody publishes weights" in prov.unavailable_reason
    assert prov.make_available.startswith("python -m scaled_models.train --model width")


def test_checkpoint_wins_and_says_what_it_is(tmp_path):
    meta = {"architecture": {"family": "lite", "width": 2.0, "depth": 1.0}, "recipe": "distill",
            "teacher": {"name": "Lite1"}, "data": {"folder": "tiny", "images": 2400},
            "steps": 1500, "image_size": 224,
            "eval": {"top1": 42.5, "images": 12, "dir": "/data/val"}}
    saved = _save_checkpoint(tmp_path, "lite", "width", LITE.architecture(2.0, 1.0),
                             meta)
    model = load_model(LITE, "width", tmp_path)
    prov = model.provenance
    assert model.available and prov.trained_for_config and prov.top1 == 42.5
    assert prov.status == "distilled"
    assert prov.recipe == "distilled from Lite1 on tiny (2,400 images), 1,500 steps"
    assert prov.top1_source == "12 images of /data/val"
    assert prov.file.endswith("width.safetensors") and len(prov.sha256) == 64
    assert prov.stand_in  # a Lite network stands in for the paper's SE/SiLU one
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(model.net(x), saved.eval()(x), atol=1e-5)


def _shipped_resolution(root: Path, edit=None) -> Path:
    """The shipped 448 px Lite checkpoint copied under ``root``, its JSON edited by ``edit``."""
    from scaled_models.files import BUNDLED_CHECKPOINTS

    folder = root / "lite"
    folder.mkdir(parents=True)
    source = BUNDLED_CHECKPOINTS / "lite" / "resolution"
    (folder / "resolution.safetensors").write_bytes(
        source.with_suffix(".safetensors").read_bytes())
    record = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    (folder / "resolution.json").write_text(json.dumps(edit(record) if edit else record))
    return folder / "resolution.json"


def test_metadata_written_before_its_format_field_loads_as_it_did(tmp_path):
    """#33: a checkpoint JSON from before ``scalecam_checkpoint`` existed (format 0) reads the
    same as the shipped one: same words, same judged figures, same network."""
    shipped = load_model(LITE, "resolution", tmp_path / "none")
    old = tmp_path / "old"
    _shipped_resolution(old, lambda r: {k: v for k, v in r.items()
                                        if k != "scalecam_checkpoint"})
    loaded = load_model(LITE, "resolution", old)
    assert loaded.available and loaded.provenance.file.startswith(str(old))
    for name in ("status", "headline", "recipe", "top1", "top1_source", "judged",
                 "preprocessing", "resolution"):
        assert getattr(loaded.provenance, name) == getattr(shipped.provenance, name), name
    # what the trainer wrote, in the words a reader sees
    assert shipped.provenance.headline == "fine-tuned from Lite0"
    assert shipped.provenance.judged.images == 251 and shipped.provenance.resolution == 448
    for a, b in zip(loaded.net.state_dict().values(), shipped.net.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("edit, says", [
    (lambda r: r | {"scalecam_checkpoint": 2}, "checkpoint metadata format 2; this scalecam "
                                               "reads formats up to 1"),
    (lambda r: r | {"architecture": {"family": "lite", "width": "wide", "depth": 1}},
     "unreadable checkpoint metadata (could not convert string to float: 'wide')"),
])
def test_metadata_from_a_newer_scalecam_or_of_the_wrong_type_disables_its_role_only(
        tmp_path, edit, says):
    written = _shipped_resolution(tmp_path, edit)
    model = load_model(LITE, "resolution", tmp_path)
    assert not model.available
    assert f"{written}: {says}" in model.provenance.unavailable_reason
    assert load_model(LITE, "baseline", tmp_path).available


def test_checkpoint_for_another_architecture_is_refused(tmp_path):
    _save_checkpoint(tmp_path, "lite", "depth", LITE.architecture(1.0, 1.0))
    model = load_model(LITE, "depth", tmp_path)
    assert not model.available  # refused for this role only; the others still load
    reason = model.provenance.unavailable_reason
    assert "checkpoint refused" in reason and "depth.safetensors" in reason
    assert "missing keys: features.2.1.2.conv_pw.weight" in reason  # names the keys
    assert load_model(LITE, "baseline", tmp_path).available


def test_pickle_payload_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "lite" / "baseline.pth"
    path.parent.mkdir(parents=True)
    torch.save({"fc.weight": Payload()}, path)
    with pytest.raises(WeightsUnavailable, match="not a loadable tensor file"):
        read_state_dict(path)
    model = load_model(LITE, "baseline", tmp_path)
    assert not model.available
    assert "not a loadable tensor file" in model.provenance.unavailable_reason
    assert not marker.exists()


def test_pth_state_dict_loads_weights_only(tmp_path):
    net = LITE.architecture(1.0, 1.0).build()
    path = tmp_path / "sd.pth"
    torch.save(net.state_dict(), path)
    assert set(read_state_dict(path)) == set(net.state_dict())


def _hub_file(model: str) -> str:
    """The torch hub file name torchvision itself downloads (read from torchvision, not from
    scalecam, and not retyped: it has changed between releases)."""
    import torchvision

    weights = getattr(torchvision.models, f"EfficientNet_{model}_Weights").IMAGENET1K_V1
    return Path(weights.url).name


def _parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_zoo_arguments(parser)
    args = parser.parse_args(list(argv))
    request_from_args(parser, args)
    return args


def test_family_is_resolved_once_when_the_arguments_are_parsed(capsys):
    """--family becomes the family itself (and why) once the arguments are parsed, for the
    ladder asked for; nothing below resolves a name again, and an unknown name, or a family
    without the ladder, stops the command before anything loads."""
    zoo = _parsed("--family", "lite").zoo
    assert (zoo.family, zoo.family_reason) == (LITE, "family 'lite' was requested")
    assert (_parsed().zoo.family, _parsed().zoo.family_reason) == resolve_family("auto")
    assert _parsed("--ladder", "resnet").zoo.family.name == "resnet"
    with pytest.raises(SystemExit):
        _parsed("--family", "resnet50")
    assert "unknown family 'resnet50'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parsed("--family", "lite", "--ladder", "resnet")
    assert "the lite family has no models for the resnet ladder" in capsys.readouterr().err


def test_efficientnet_family_from_torch_hub_cache(tmp_path, monkeypatch):
    """B0's torchvision weights, found in the hub cache, load into the Table 7 baseline."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert resolve_family("auto")[0].name == "lite"
    reference = torchvision.models.efficientnet_b0().eval()
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / _hub_file("B0"))
    family, reason = resolve_family("auto")
    assert family.name == "efficientnet" and "B0's weights are available" in reason
    model = load_model(EFFICIENTNET, "baseline", tmp_path / "none")
    # a random file under the published name: loaded, and said not to be the published bytes
    assert model.provenance.status == "unverified" and not model.provenance.stand_in
    assert model.provenance.source == "torchvision EfficientNet_B0_Weights.IMAGENET1K_V1"
    x = torch.randn(1, 3, 224, 224)
    assert torch.allclose(model.net(x), reference(x), atol=1e-4)
    resolution = load_model(EFFICIENTNET, "resolution", tmp_path / "none")
    assert resolution.provenance.stand_in and resolution.preprocessing.resolution == 448
    compound = load_model(EFFICIENTNET, "compound", tmp_path / "none")
    assert not compound.available and "torch hub cache" in compound.provenance.unavailable_reason


def test_a_bad_published_file_disables_its_own_roles_only(tmp_path, monkeypatch):
    """A truncated download in the torch hub cache makes B0's roles unavailable, with the file
    named; the compound model (B3, a good file) still loads, as a bad local checkpoint would."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / _hub_file("B0")).write_bytes(b"PK\x03\x04 cut short")
    torch.save(torchvision.models.efficientnet_b3().state_dict(),
               cache / _hub_file("B3"))
    zoo = load_zoo(EFFICIENTNET, tmp_path / "none")
    status = {m.key: m.available for m in zoo.models}
    assert status == {"baseline": False, "depth": False, "width": False, "resolution": False,
                      "compound": True}
    reason = zoo.get("baseline").provenance.unavailable_reason
    assert _hub_file("B0") in reason and "not a loadable" in reason


def test_a_checkpoint_with_non_finite_weights_disables_its_own_role_only(tmp_path):
    """#32 item 2: a checkpoint that was 97 % NaN loaded, and every map of its column (and the
    first screen of an app reading the folder) failed with "map contains NaN". Now it is
    refused at load time, in either family, like a truncated or foreign file: its role only,
    with the file and what is wrong named; the grid draws the other columns."""
    import subprocess
    import sys

    from .conftest import REPO, SAMPLE_IMAGES

    root = tmp_path / "ckpt"
    lite0 = load_model(LITE, "baseline", tmp_path / "none").net.state_dict()
    broken = {k: v.clone().contiguous() for k, v in lite0.items()}
    broken["fc.weight"][:3, 0] = float("nan")
    (root / "lite").mkdir(parents=True)
    save_file(broken, str(root / "lite" / "baseline.safetensors"))
    total = sum(v.numel() for v in broken.values() if v.is_floating_point())
    width = EFFICIENTNET.architecture(2.0, 1.0).build().state_dict()
    width["fc.bias"][7] = float("inf")
    (root / "efficientnet").mkdir()
    save_file({k: v.contiguous() for k, v in width.items()},
              str(root / "efficientnet" / "width.safetensors"))

    zoo = load_zoo(LITE, root)
    assert {m.key: m.available for m in zoo.models} == {
        "baseline": False, "depth": False, "width": False, "resolution": True, "compound": True}
    reason = zoo.get("baseline").provenance.unavailable_reason
    assert str(root / "lite" / "baseline.safetensors") in reason
    assert f"3 of {total:,} values are NaN or infinite, in 1 tensor (e.g. fc.weight)" in reason
    refused = load_model(EFFICIENTNET, "width", root).provenance
    assert not refused.available and "width.safetensors" in refused.unavailable_reason
    assert "1 of " in refused.unavailable_reason and "fc.bias" in refused.unavailable_reason

    out = tmp_path / "fig.png"
    proc = subprocess.run([sys.executable, "-m", "cam", "figure", "--family", "lite",
                           "--checkpoints", str(root), "--images",
                           str(SAMPLE_IMAGES / "chelsea.png"), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, SCALECAM_OFFLINE="1"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "baseline: unavailable" in proc.stderr and "NaN or infinite" in proc.stderr
    panels = json.loads(out.with_suffix(".json").read_text())["images"][0]["panels"]
    assert {key: panel["available"] for key, panel in panels.items()} == {
        "baseline": False, "depth": False, "width": False, "resolution": True, "compound": True}


def test_the_command_an_unavailable_role_names_is_one_the_trainer_takes(tmp_path):
    """The library names the trainer's command for a role nobody publishes; the trainer alone
    parses it (its options live in scaled_models.train.cli): the command must parse there, with
    the role, family and recipe it says."""
    import shlex

    from scaled_models.train.cli import parse_args

    data = tmp_path / "photos"
    data.mkdir()
    for key, recipe in (("width", "distill"), ("depth", "distill")):
        command = load_model(LITE, key, tmp_path).provenance.make_available
        argv = shlex.split(command.replace("IMAGES_DIR", str(data)))
        assert argv[:3] == ["python", "-m", "scaled_models.train"]
        args = parse_args(argv[3:])
        assert (args.model, args.family, args.recipe) == (key, "lite", recipe)


def test_a_network_built_for_a_file_holds_the_files_tensors_and_no_drawn_copy(tmp_path):
    """``build_empty`` leaves parameters on the meta device (nothing drawn at random, no second
    copy while loading); loading takes the file's values exactly. A network with a buffer no
    state dict holds is built in full, that buffer with its real value."""
    from torch import nn

    from scaled_models.architectures import Architecture
    from scaled_models.weights import build_empty, load_into

    lite0 = load_model(get_family("lite"), "baseline", tmp_path / "none")
    empty = build_empty(get_family("lite").architecture(1.0, 1.0))
    assert all(p.is_meta for p in empty.parameters())
    state = {k: v.clone() for k, v in lite0.net.state_dict().items()}
    load_into(empty, state, "lite0 (test)")
    assert not any(t.is_meta for t in [*empty.parameters(), *empty.buffers()])
    assert all(torch.equal(empty.state_dict()[k], state[k]) for k in state)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(empty.eval()(x), lite0.net.eval()(x))

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)
            self.register_buffer("scale", torch.full((2,), 3.0), persistent=False)

    with_buffer = build_empty(Architecture("test", "linear", 1.0, 1.0, 0.0,
                                           lambda arch, **_: Scaled()))
    assert not with_buffer.scale.is_meta and with_buffer.scale.tolist() == [3.0, 3.0]
