"""The ``efficientnet`` family: the paper's blocks (torchvision's MBConv: SE, SiLU) and the
EfficientNet weights torchvision publishes.

Everything torchvision publishes about its weights — file name, preprocessing, accuracy — is read
from its ``Weights`` enums, never retyped: B0's file name has changed between torchvision
releases before. (The ``auto`` family check reads B0's file from ``derived_facts.json``, which
is the enum's value for the installed torchvision and is re-derived from it by a test.)
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cached_property, partial
from pathlib import Path

import torch
from torch import nn

from .architectures import B0_STAGES, NUM_CLASSES, Architecture, CamNet
from .derived_facts import shipped
from .family import PublishedWeights, RoleBinding, WeightFamily, WeightsUnavailable, register_family
from .ladders import COMPOUND_LADDER, TABLE7_LADDER, Column, Ladder
from .paper import TABLE2, Scaling
from .preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from .table7 import spec_for

_failed_downloads: dict[str, str] = {}  # url -> reason: an offline machine tries each file once


def hub_cache_file(url: str) -> Path:
    """Where torch hub keeps (or would keep) the file behind ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def _locate_or_download(url: str, download: bool = True) -> Path:
    """The hub-cache file, downloaded once if allowed. Progress goes to stderr: stdout stays
    for machine-readable output. ``SCALECAM_OFFLINE`` (or ``download=False``) forbids it."""
    cached = hub_cache_file(url)
    if cached.is_file():
        return cached
    if os.environ.get("SCALECAM_OFFLINE") or not download:
        why = "SCALECAM_OFFLINE is set" if download else "no download was asked for"
        raise WeightsUnavailable(_not_here(cached, why), fetch_hint(url))
    if url not in _failed_downloads:
        print(f"downloading {url} into {cached.parent}", file=sys.stderr, flush=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(cached), sha256_prefix(url), progress=False)
        except Exception as exc:  # noqa: BLE001 - offline machines fail here; that is a reason
            _failed_downloads[url] = str(getattr(exc, "reason", exc))
    if url in _failed_downloads:
        raise WeightsUnavailable(
            _not_here(cached, f"the download failed ({_failed_downloads[url]})"), fetch_hint(url))
    return cached


def sha256_prefix(url: str) -> str:
    """torchvision names its files ``<name>-<first hex digits of their sha256>.pth``."""
    return Path(url).stem.rsplit("-", 1)[-1]


def fetch_hint(url: str) -> str:
    """The one command that fetches a published file to where torchvision reads it (its name in
    the hub cache): on a machine with internet access, then copied to the same path here."""
    return f"curl -L --create-dirs -o {hub_cache_file(url)} {url}"


def _not_here(cached: Path, why: str) -> str:
    return (f"{cached.name} is not in the torch hub cache and {why}: fetch it on a machine with "
            f"internet access and copy it to {cached}")


def _wrap_torchvision(model_name: str) -> CamNet:
    """torchvision's own EfficientNet (V1 or V2) in the CamNet form: features, GAP, linear."""
    import torchvision.models as tvm

    net = tvm.get_model(model_name, weights=None)
    return CamNet(net.features, net.classifier[-1], net.classifier[0].p)


def _build_as_published(arch: Architecture, *, stochastic_depth: float = 0.0,
                        bn_momentum: float | None = None) -> CamNet:
    """torchvision's own network for ``arch`` (its BatchNorm settings included: B5–B7's
    weights were made with eps 1e-3), for inference only."""
    if stochastic_depth or bn_momentum is not None:
        raise ValueError(f"{arch.name} is built as torchvision publishes it, for inference; "
                         "train through the family's own architecture instead")
    return _wrap_torchvision(f"efficientnet_{arch.name.rsplit('-', 1)[-1].lower()}")


def torchvision_weights(family: WeightFamily, model_name: str,
                        weights_name: str = "IMAGENET1K_V1",
                        arch: Architecture | None = None,
                        name: str | None = None) -> PublishedWeights:
    """One torchvision weights entry, described from its enum; ``name`` is what headers call
    it (default: an EfficientNet's, "EfficientNet-B3", with the weights' name unless V1)."""
    import torchvision.models as tvm

    enum = tvm.get_model_weights(model_name)[weights_name]
    if name is None:
        variant = model_name.removeprefix("efficientnet_").replace("_", "-").upper()
        name = f"EfficientNet-{variant}" + ("" if weights_name == "IMAGENET1K_V1"
                                            else f" ({weights_name})")
    return PublishedWeights(
        family=family, name=name,
        source=f"torchvision {type(enum).__name__}.{enum.name}",
        preprocessing=Preprocessing.of_torchvision(enum.transforms()),
        top1=enum.meta["_metrics"]["ImageNet-1K"]["acc@1"],
        locate=partial(_locate_or_download, enum.url),
        install_hint=fetch_hint(enum.url),
        arch=arch, builder=partial(_wrap_torchvision, model_name), url=enum.url,
        sha256_prefix=sha256_prefix(enum.url))


@register_family
class EfficientNetFamily(WeightFamily):
    name = "efficientnet"
    description = "the paper's networks (torchvision MBConv blocks: SE, SiLU)"
    blocks = "MBConv + SE, SiLU"
    stand_in = False
    crop_pct = 0.875
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    ladders = (TABLE7_LADDER, COMPOUND_LADDER)

    @staticmethod
    def build(arch: Architecture, *, stochastic_depth: float = 0.0,
              bn_momentum: float | None = None) -> CamNet:
        """Table 7's rounding, as in the reference code: channels ``make_divisible(c·w, 8)``,
        repeats ``ceil(n·d)`` (torchvision's ``MBConvConfig``)."""
        from torchvision.models.efficientnet import EfficientNet, MBConvConfig

        stage = partial(MBConvConfig, width_mult=arch.width, depth_mult=arch.depth)
        norm = (nn.BatchNorm2d if bn_momentum is None
                else partial(nn.BatchNorm2d, momentum=bn_momentum))
        net = EfficientNet([stage(*s) for s in B0_STAGES], dropout=arch.dropout,
                           stochastic_depth_prob=stochastic_depth, num_classes=NUM_CLASSES,
                           norm_layer=norm)
        return CamNet(net.features, net.classifier[1], arch.dropout)

    def stages(self, net: CamNet) -> list[nn.Sequential]:
        return list(net.features[1:-1])  # stem, seven stages, head conv

    def split_at_head_norm(self, net: CamNet) -> tuple[nn.Module, nn.Module]:
        head = net.features[-1]  # torchvision Conv2dNormActivation: conv, BatchNorm, SiLU
        return nn.Sequential(*net.features[:-1], head[0]), head[1:]

    def adapt_state_dict(self, state: dict[str, torch.Tensor], net: CamNet,
                         origin: str) -> dict[str, torch.Tensor]:
        """torchvision's ``classifier.1`` is our ``fc``; every other key is shared."""
        return {k.replace("classifier.1.", "fc."): v for k, v in state.items()}

    @cached_property
    def roles(self) -> dict[str, RoleBinding]:
        # B0 is Table 7's baseline and B3's coefficients are its compound row (B3's own dropout).
        baseline, compound = spec_for("baseline"), spec_for("compound")
        b0 = torchvision_weights(self, "efficientnet_b0",
                                 arch=self.architecture(baseline.width, baseline.depth))
        b3 = torchvision_weights(self, "efficientnet_b3",
                                 arch=self.architecture(compound.width, compound.depth, 0.3))
        return self.table7_bindings(
            {"baseline": b0, "resolution": b0, "compound": b3},
            stand_ins=("resolution",), native_resolution=("compound",),
            notes={"compound": f"EfficientNet-B3 (w={b3.arch.width:g}, d={b3.arch.depth:g}) "
                               f"weights, trained at {b3.preprocessing.resolution} px"})

    def bindings(self, ladder: Ladder) -> dict[str, RoleBinding]:
        if ladder == COMPOUND_LADDER:
            return self._compound_ladder
        return super().bindings(ladder)

    @cached_property
    def _compound_ladder(self) -> dict[str, RoleBinding]:
        """B0 → B7 as torchvision publishes them (``IMAGENET1K_V1``: one family of weights),
        each at the resolution its weights are evaluated at, beside Table 2's row."""
        bindings = {}
        for name, row in TABLE2.items():
            arch = Architecture(self.name, self.blocks, row.width, row.depth, 0.0,
                                _build_as_published, name=f"EfficientNet-{name}")
            weights = torchvision_weights(self, f"efficientnet_{name.lower()}", arch=arch)
            column = Column(name.lower(), f"EfficientNet-{name}", f"EfficientNet-{name}",
                            Scaling.BASELINE if name == "B0" else Scaling.COMPOUND, row)
            bindings[column.key] = RoleBinding(column, arch, weights.preprocessing.resolution,
                                               weights)
        return bindings

    def published_locator(self, key: str) -> tuple[Callable[..., Path], str]:
        """From the shipped facts while they match this code and torch/torchvision
        (``derived_facts.py``): the ``auto`` family check then needs no torchvision import
        (seconds on a small CPU); otherwise from torchvision's enum."""
        fact = shipped("published").get(self.name, {}).get(key)
        if fact is None:
            return super().published_locator(key)
        return partial(_locate_or_download, fact["url"]), fact["source"]

    def derive_published_facts(self) -> dict[str, dict[str, str]]:
        """Each role's file and source, read from torchvision's enums."""
        return {key: {"url": binding.weights.url, "source": binding.weights.source}
                for key, binding in self.roles.items() if binding.weights is not None}

    @cached_property
    def catalogue(self) -> list[PublishedWeights]:
        """Every EfficientNet torchvision publishes (V1 and V2): the teachers one may cache."""
        import torchvision.models as tvm

        return [torchvision_weights(self, name, weights.name)
                for name in tvm.list_models(include="efficientnet*")
                for weights in tvm.get_model_weights(name)]
