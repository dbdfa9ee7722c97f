"""The one network shape every family is built into, and how its cost is counted.

The exact CAM of Zhou et al. needs a network of the form features → global average pool → linear.
``CamNet`` is that form; each weight family (``family.py``) builds its blocks into it, so the CAM
engine, the trainer and the checkpoint format never care which library supplied the blocks.
The dependency points one way: a family makes its ``Architecture``s and hands each the function
that builds it, so nothing here knows what a family is.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

NUM_CLASSES = 1000


class Stage(NamedTuple):
    """One stage of EfficientNet-B0 (Tan & Le 2019, Table 1), in torchvision's ``MBConvConfig``
    argument order."""

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


# EfficientNet-B0's seven MBConv stages; the Lite networks share them (without SE, with ReLU6).
B0_STAGES = (
    Stage(1, 3, 1, 32, 16, 1),
    Stage(6, 3, 2, 16, 24, 2),
    Stage(6, 5, 2, 24, 40, 2),
    Stage(6, 3, 2, 40, 80, 3),
    Stage(6, 5, 1, 80, 112, 3),
    Stage(6, 5, 2, 112, 192, 4),
    Stage(6, 3, 1, 192, 320, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """The reference code's channel rounding (``round_filters`` in github.com/tensorflow/tpu,
    models/official/efficientnet): the nearest multiple of ``divisor``, never more than 10 %
    below ``value``. torchvision has the same rule as a private helper; the Lite family must
    not import torchvision (seconds of start-up), so it is written once here."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class CamNet(nn.Module):
    """``features`` (→ B×C×h×w) → GAP → dropout → ``fc``: the structure the exact CAM relies on."""

    def __init__(self, features: nn.Module, fc: nn.Linear, dropout: float) -> None:
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout)
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x).mean((2, 3))))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the last feature map from one pass (the exact CAM needs both)."""
        feats = self.features(x)
        return self.fc(self.dropout(feats.mean((2, 3)))), feats


class LibraryNet(nn.Module):
    """A classifier that is not features → GAP → one linear layer (VGG, ConvNeXt, MobileNetV3):
    the grad-cam library's methods explain it at ``features`` (its last convolutional body);
    the exact CAM of Zhou et al. is not defined for it, and ``why_not_exact`` says so."""

    def __init__(self, model: nn.Module, features: nn.Module, why_not_exact: str) -> None:
        super().__init__()
        self.model = model
        self.features = features  # a module inside ``model``: the library's target layer
        self.why_not_exact = why_not_exact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class Architecture:
    """What is built: a family's blocks with width/depth multipliers (and the dropout the
    family's recipe uses at that size), and the function that builds them. Families make these
    (``WeightFamily.architecture``); ``family`` is the family's name, as checkpoints record it."""

    family: str
    blocks: str  # the family's blocks in words, e.g. "MBConv + SE, SiLU"
    width: float
    depth: float
    dropout: float
    # builder(arch, stochastic_depth=…, bn_momentum=…): a randomly initialised CamNet of arch
    builder: Callable[..., CamNet] = field(repr=False)
    name: str = ""  # a published network's own name ("ResNet-152"), where it has one

    @property
    def description(self) -> str:
        coefficients = f"w={self.width:g} d={self.depth:g}"
        if self.name:
            return f"{self.name} ({self.family}: {self.blocks}, {coefficients})"
        return f"{self.family} {coefficients} ({self.blocks})"

    def build(self, *, stochastic_depth: float = 0.0, bn_momentum: float | None = None
              ) -> CamNet:
        """A randomly initialised network (weights are loaded by ``weights``)."""
        return self.builder(self, stochastic_depth=stochastic_depth, bn_momentum=bn_momentum)

    def as_record(self) -> dict:
        """What checkpoint metadata stores: plain values."""
        return {"family": self.family, "width": self.width, "depth": self.depth}


MAC_COUNTING = ("multiply-accumulates per image of every convolution and linear layer (what "
                "torch.utils.flop_counter counts, halved)")  # said once for every table


def count_macs(net: nn.Module, resolution: int) -> int:
    """Multiply-accumulates for one image: every convolution contributes (output elements) ×
    (input channels per group × kernel height × kernel width), every linear layer
    (inputs × outputs) — what ``torch.utils.flop_counter`` counts, halved (the tests check the two
    agree). Counted from one forward pass on the meta device (shapes only: no memory, no
    arithmetic), with module hooks, which is several times faster than the dispatch-level
    counter on the app's first screen."""
    if next(net.parameters()).device.type != "meta":
        with torch.device("meta"):
            net = copy.deepcopy(net).to("meta")
    total = 0

    def conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * kernel

    def linear(module: nn.Linear, inputs, _output) -> None:
        nonlocal total
        total += inputs[0].numel() * module.out_features

    handles = [m.register_forward_hook(conv) for m in net.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear) for m in net.modules()
                if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            net.eval()(torch.empty(1, 3, resolution, resolution, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@dataclass(frozen=True)
class NetShape:
    """What depth and width scaling change, counted on a built network: its residual blocks
    (the repeats depth multiplies) and the channels of its last stage's last spatial
    convolution (the ones width multiplies: an MBConv's depthwise convolution, a bottleneck's
    3×3)."""

    blocks: int
    channels: int


def measure_shape(stages: list[nn.Module]) -> NetShape:
    """``NetShape`` of a network given its stages (``WeightFamily.stages``): counted, not read
    from any coefficient, so rounding (``make_divisible``, ``ceil``) shows."""
    last_spatial = [m for m in stages[-1].modules()
                    if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
    return NetShape(sum(len(stage) for stage in stages), last_spatial[-1].out_channels)
