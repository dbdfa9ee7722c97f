"""Models a user brings to a comparison, each a column beside a ladder's: any torchvision
classifier with its published weights (``torchvision:NAME[.WEIGHTS]``), a timm model from the
local Hugging Face cache (``timm:NAME``), or a state-dict file of a named architecture
(``torchvision:NAME=FILE``, ``timm:NAME=FILE``).

Every one is loaded by real loading code (torchvision's ``Weights`` enums say which file,
preprocessing and top-1; timm's pretrained config says which Hugging Face file and
preprocessing), read as tensors only (``weights.read_state_dict``), and turned into the form the
CAMs need:

- ``CamNet`` (features → global average pooling → one linear layer), for which the exact CAM of
  Zhou et al. is defined: torchvision's ResNets, Wide ResNets, ResNeXts, RegNets, EfficientNets,
  MobileNetV2, MNASNet and DenseNets, and timm models whose head is an average pool and a linear
  layer. The form is checked, not assumed: the wrapped network must give the model's own logits
  on a probe input, else the next form is tried;
- ``LibraryNet`` otherwise (VGG, ConvNeXt, MobileNetV3, …): the grad-cam library's methods run
  on its last convolutional block, the exact CAM does not, and it says why;
- neither (vision transformers): unavailable, with the reason.

Nothing is downloaded where ``SCALECAM_OFFLINE`` is set; a model that cannot be had is an
unavailable column with the command that fetches it on a connected machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from .architectures import Architecture, CamNet, LibraryNet
from .family import WeightsUnavailable
from .files import CHECKPOINT_SUFFIXES, file_sha256, read_state_dict
from .ladders import Column
from .paper import Scaling
from .preprocessing import Preprocessing
from .weights import (
    STATUS_PUBLISHED,
    STATUS_UNAVAILABLE,
    STATUS_UNVERIFIED,
    LoadedWeights,
    Provenance,
    load_into,
    unverified_reason,
)

LIBRARIES = ("torchvision", "timm")
_PROBE_PIXELS = 96  # the probe input that checks a wrapped network computes the model's logits


@dataclass(frozen=True)
class BroughtSpec:
    """A brought model, as named: ``text`` is also its column's key."""

    text: str
    library: str  # "torchvision" or "timm"
    name: str  # the architecture (timm: with its pretrained tag, e.g. "resnet50.a1_in1k")
    weights: str | None = None  # a torchvision weights name (IMAGENET1K_V2); None: its DEFAULT
    file: Path | None = None  # a state dict of the architecture instead of published weights


def is_brought(token: str) -> bool:
    """Whether a ``--models`` token names a brought model (``LIBRARY:NAME``, ``ARCH=FILE``)
    rather than a ladder's column."""
    return ":" in token or "=" in token


def parse_brought(text: str) -> BroughtSpec:
    """``torchvision:NAME[.WEIGHTS]``, ``timm:NAME`` or ``ARCH=FILE`` checked against what the
    installed libraries know; ``ValueError`` naming the model and the reason otherwise."""
    arch_text, _, file_text = text.partition("=")
    library, _, name = arch_text.partition(":")
    if library not in LIBRARIES or not name:
        raise ValueError(f"{text!r}: a brought model is torchvision:NAME[.WEIGHTS], timm:NAME, "
                         "or one of them =FILE (a state dict of that architecture)")
    file = None
    if file_text:
        file = Path(file_text).expanduser()
        if file.suffix not in CHECKPOINT_SUFFIXES:
            raise ValueError(f"{text!r}: {file.name} must be a {' or '.join(CHECKPOINT_SUFFIXES)} "
                             "state dict")
        if not file.is_file():
            raise ValueError(f"{text!r}: no such file {file}")
    if library == "torchvision":
        model, _, weights = name.partition(".")
        _torchvision_check(text, model, weights or None, file)
        return BroughtSpec(text, library, model, weights or None, file)
    import timm

    if not timm.is_model(name.partition(".")[0]):
        raise ValueError(f"{text!r}: timm {timm.__version__} has no model "
                         f"{name.partition('.')[0]!r}")
    return BroughtSpec(text, library, name, None, file)


def _torchvision_check(text: str, model: str, weights: str | None, file: Path | None) -> None:
    import torchvision.models as tvm

    known = tvm.list_models(module=tvm)
    if model not in known:
        raise ValueError(f"{text!r}: torchvision has no classification model {model!r} "
                         f"(e.g. {', '.join(known[:6])}, …)")
    published = [w.name for w in tvm.get_model_weights(model)]
    if weights is not None and weights not in published:
        raise ValueError(f"{text!r}: {model} has no weights {weights!r}; choose from "
                         f"{', '.join(published)}")


def brought_column(spec: BroughtSpec) -> Column:
    """A brought model's column: it scales nothing the ladder knows of, and quotes no paper."""
    return Column(spec.text, f"{spec.library} {spec.name}" + (f" ({spec.file.name})"
                                                              if spec.file else ""),
                  spec.name, Scaling.BROUGHT, None)


def load_brought_weights(spec: BroughtSpec) -> LoadedWeights:
    """The brought model loaded, or unavailable with the reason and the command that fixes it
    (the one place its failures become a column's)."""
    arch = Architecture(spec.library, spec.name, 1.0, 1.0, 0.0, partial(_build, spec),
                        name=spec.name)
    try:
        if spec.library == "torchvision":
            return _torchvision(spec, arch)
        return _timm(spec, arch)
    except WeightsUnavailable as exc:
        return LoadedWeights(Provenance(
            family=spec.library, key=spec.text, available=False, source=spec.text,
            architecture=arch.description, resolution=0, trained_for_config=False,
            stand_in=False, status=STATUS_UNAVAILABLE, headline="unavailable",
            recipe="unavailable", file=str(spec.file) if spec.file else None,
            unavailable_reason=exc.reason, make_available=exc.make_available), arch, None, None)


def _build(spec: BroughtSpec, arch: Architecture, *, stochastic_depth: float = 0.0,
           bn_momentum: float | None = None) -> nn.Module:
    """The brought architecture in the form the CAMs use, randomly initialised (for counting
    its cost on the meta device; ``load_brought_weights`` loads the weights)."""
    if stochastic_depth or bn_momentum is not None:
        raise ValueError(f"{spec.text} is a brought model: scalecam does not train it")
    return _cam_form(_raw_model(spec), spec.text, check=False)


def _raw_model(spec: BroughtSpec) -> nn.Module:
    if spec.library == "torchvision":
        import torchvision.models as tvm

        return tvm.get_model(spec.name, weights=None)
    import timm

    return timm.create_model(spec.name, pretrained=False)


# --- torchvision -----------------------------------------------------------------------------

def _torchvision(spec: BroughtSpec, arch: Architecture) -> LoadedWeights:
    import torchvision.models as tvm

    from .efficientnet import _locate_or_download, sha256_prefix

    published = tvm.get_model_weights(spec.name)
    enum = published[spec.weights] if spec.weights else published.DEFAULT
    preprocessing = Preprocessing.of_torchvision(enum.transforms())
    path = spec.file if spec.file is not None else _locate_or_download(enum.url)
    model = tvm.get_model(spec.name, weights=None)
    load_into(model, read_state_dict(path), str(path))
    net = _cam_form(model.eval(), spec.text)
    if spec.file is not None:
        source = f"file {path.name} (torchvision {spec.name})"
        recipe = (f"{spec.name} weights from {path}, preprocessed as torchvision's "
                  f"{type(enum).__name__}.{enum.name} (the file records no preprocessing)")
        top1 = None
    else:
        source = f"torchvision {type(enum).__name__}.{enum.name}"
        unverified = unverified_reason(source, sha256_prefix(enum.url), path, file_sha256(path))
        recipe = unverified or f"published: {source}"
        top1 = None if unverified else enum.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        if unverified:
            return _loaded(spec, arch, net, path, preprocessing, source, recipe, None,
                           STATUS_UNVERIFIED)
    return _loaded(spec, arch, net, path, preprocessing, source, recipe, top1)


# --- timm --------------------------------------------------------------------------------------

def _timm(spec: BroughtSpec, arch: Architecture) -> LoadedWeights:
    import timm
    from timm.data import resolve_model_data_config

    model = timm.create_model(spec.name, pretrained=False)
    config = resolve_model_data_config(model)
    if spec.file is not None:
        path, source = spec.file, f"file {spec.file.name} (timm {spec.name})"
    else:
        path = _timm_cached_file(spec.name, model.pretrained_cfg)
        source = f"timm {spec.name} ({model.pretrained_cfg.get('hf_hub_id')})"
    load_into(model, model.checkpoint_filter_fn(read_state_dict(path), model)
              if hasattr(model, "checkpoint_filter_fn") else read_state_dict(path), str(path))
    resolution = int(config["input_size"][-1])
    preprocessing = Preprocessing.from_crop_pct(
        resolution, float(config.get("crop_pct", 0.875)), tuple(config["mean"]),
        tuple(config["std"]), config.get("interpolation", "bicubic")
        if config.get("interpolation") in ("bicubic", "bilinear") else "bicubic")
    net = _cam_form(model.eval(), spec.text)
    recipe = f"{source}; timm publishes no accuracy with its weights"
    return _loaded(spec, arch, net, path, preprocessing, source, recipe, None)


def _timm_cached_file(name: str, cfg: dict) -> Path:
    """The weights' file in the local Hugging Face cache (downloaded there first where that is
    allowed), or ``WeightsUnavailable`` with the command that fetches it elsewhere."""
    import huggingface_hub

    repo = cfg.get("hf_hub_id")
    if not repo:
        raise WeightsUnavailable(f"timm {name}: its weights are not on the Hugging Face hub "
                                 f"({cfg.get('url') or 'no file'})")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        cached = huggingface_hub.try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return Path(cached)
    fix = (f"python -c \"import timm; timm.create_model('{name}', pretrained=True)\" on a machine "
           f"with internet access, then copy its ~/.cache/huggingface/hub/models--"
           f"{repo.replace('/', '--')} folder to {huggingface_hub.constants.HF_HUB_CACHE}")
    if os.environ.get("SCALECAM_OFFLINE"):
        raise WeightsUnavailable(f"timm {name}: {repo} is not in the Hugging Face cache and "
                                 "SCALECAM_OFFLINE is set", fix)
    try:
        return Path(huggingface_hub.hf_hub_download(repo, "model.safetensors"))
    except Exception as exc:  # noqa: BLE001 - offline machines fail here; that is a reason
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailable(f"timm {name}: {repo} is not in the Hugging Face cache and "
                                 f"the download failed ({first})", fix) from None


# --- the forms the CAMs use ------------------------------------------------------------------

def _loaded(spec: BroughtSpec, arch: Architecture, net: nn.Module, path: Path,
            preprocessing: Preprocessing, source: str, recipe: str, top1: float | None,
            status: str | None = None) -> LoadedWeights:
    notes = () if isinstance(net, CamNet) else (net.why_not_exact,)
    status = status or (STATUS_PUBLISHED if spec.file is None else "local file")
    return LoadedWeights(Provenance(
        family=spec.library, key=spec.text, available=True, source=source,
        architecture=arch.description, resolution=preprocessing.resolution,
        trained_for_config=True, stand_in=False, status=status,
        headline=f"{'unverified' if status == STATUS_UNVERIFIED else 'brought'}: {spec.name}",
        recipe=recipe, file=str(path),
        sha256=file_sha256(path), preprocessing=preprocessing.as_dict(), top1=top1,
        top1_source="published" if top1 is not None else None, notes=notes),
        arch, net, preprocessing)


class _TimmFeatures(nn.Module):
    """A timm model's ``forward_features``, as a module (the CAMs' feature map)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def _candidates(model: nn.Module) -> list[CamNet]:
    """Ways the model may be features → GAP → linear, by the layouts torchvision and timm use;
    ``_cam_form`` keeps the first that computes the model's own logits."""
    found = []
    classifier = getattr(model, "classifier", None)
    fc = getattr(model, "fc", None)
    if hasattr(model, "forward_features") and hasattr(model, "get_classifier"):  # timm
        head = model.get_classifier()
        if isinstance(head, nn.Linear) and getattr(getattr(model, "global_pool", None),
                                                   "pool_type", "avg") == "avg":
            found.append(CamNet(_TimmFeatures(model), head, 0.0))
    if isinstance(fc, nn.Linear):  # ResNet, Wide ResNet, ResNeXt, RegNet: children, then fc
        body = [m for name, m in model.named_children() if name not in ("avgpool", "fc")]
        found.append(CamNet(nn.Sequential(*body), fc, 0.0))
    if isinstance(classifier, nn.Sequential) and isinstance(classifier[-1], nn.Linear) and \
            all(isinstance(m, nn.Dropout) for m in classifier[:-1]):
        body = getattr(model, "features", None) or getattr(model, "layers", None)
        if body is not None:  # EfficientNet (V1, V2), MobileNetV2, MNASNet
            dropout = classifier[0].p if len(classifier) > 1 else 0.0
            found.append(CamNet(body, classifier[-1], dropout))
    if isinstance(classifier, nn.Linear) and hasattr(model, "features"):  # DenseNet
        found.append(CamNet(nn.Sequential(model.features, nn.ReLU()), classifier, 0.0))
    return found


def _cam_form(model: nn.Module, text: str, check: bool = True) -> nn.Module:
    """``model`` as a ``CamNet`` if it is features → GAP → linear (checked on a probe input
    unless ``check`` is off: on the meta device there is nothing to compute), else as a
    ``LibraryNet`` on its last convolutional block, else ``WeightsUnavailable``."""
    for candidate in _candidates(model):
        if not check or _same_function(model, candidate):
            return candidate
    features = getattr(model, "features", None) or getattr(model, "stages", None)
    if features is None:
        raise WeightsUnavailable(
            f"{text}: neither features → global average pooling → one linear layer (the exact "
            "CAM) nor a convolutional body named features or stages (the library's methods); a "
            "vision transformer needs a token reshape scalecam does not do")
    return LibraryNet(model, features,
                      f"{text} is not features → global average pooling → one linear layer, so "
                      "its exact CAM is not defined: choose one of the library's methods")


def _same_function(model: nn.Module, candidate: CamNet) -> bool:
    """Whether the wrapped network computes the model's logits (eval mode, a seeded probe)."""
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(2, 3, _PROBE_PIXELS, _PROBE_PIXELS, generator=generator)
    with torch.inference_mode():
        try:
            expected, got = model.eval()(probe), candidate.eval()(probe)
        except Exception:  # noqa: BLE001 - a layout that does not run is not this model's
            return False
    return (isinstance(expected, torch.Tensor) and expected.shape == got.shape
            and torch.allclose(expected, got, rtol=1e-4, atol=1e-4))
