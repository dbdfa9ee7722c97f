"""Network definitions for the two weight families, reduced to one CAM-ready shape.

The exact CAM of Zhou et al. needs a network of the form features → global average pool → linear.
``CamNet`` is that form; both families are built into it so the CAM engine, the trainer and the
checkpoint format never care which library supplied the blocks:

* ``efficientnet``: torchvision's MBConv blocks (SE, SiLU) with the reference rounding —
  channels ``make_divisible(c * w, 8)``, repeats ``ceil(n * d)`` — via ``MBConvConfig``.
* ``lite``: EfficientNet-Lite (no SE, ReLU6, TF "same" padding, stem and head not scaled), built
  with timm's Lite generator, whose module order matches the published Lite state dicts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

NUM_CLASSES = 1000


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


@dataclass(frozen=True)
class Architecture:
    """What is built: a family's block type with width/depth multipliers."""

    family: str  # 'efficientnet' | 'lite'
    width: float
    depth: float
    dropout: float = 0.2

    @property
    def description(self) -> str:
        blocks = "MBConv+SE, SiLU" if self.family == "efficientnet" else "Lite: no SE, ReLU6"
        return f"{self.family} w={self.width:g} d={self.depth:g} ({blocks})"


# EfficientNet-B0's stages: expand ratio, kernel, stride, in channels, out channels, repeats.
_B0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


def _build_efficientnet(arch: Architecture, stochastic_depth: float,
                        bn_momentum: float | None) -> CamNet:
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig

    stage = partial(MBConvConfig, width_mult=arch.width, depth_mult=arch.depth)
    norm = nn.BatchNorm2d if bn_momentum is None else partial(nn.BatchNorm2d, momentum=bn_momentum)
    net = EfficientNet([stage(*s) for s in _B0_STAGES], dropout=arch.dropout,
                       stochastic_depth_prob=stochastic_depth, num_classes=NUM_CLASSES,
                       norm_layer=norm)
    return CamNet(net.features, net.classifier[1], arch.dropout)


def _build_lite(arch: Architecture, stochastic_depth: float, bn_momentum: float | None) -> CamNet:
    # timm's generator is the maintained reference for Lite's scaling rules (fixed stem/head,
    # first/last stage repeats not scaled); its tf_ variants use TF padding and BN eps 1e-3. The
    # variant name only selects timm's metadata; the multipliers below define the network.
    from timm.models._efficientnet_builder import BN_EPS_TF_DEFAULT
    from timm.models.efficientnet import _gen_efficientnet_lite

    bn_args = {"bn_eps": BN_EPS_TF_DEFAULT}
    if bn_momentum is not None:
        bn_args["bn_momentum"] = bn_momentum
    net = _gen_efficientnet_lite("tf_efficientnet_lite0", channel_multiplier=arch.width,
                                 depth_multiplier=arch.depth, pad_type="same",
                                 drop_rate=arch.dropout, drop_path_rate=stochastic_depth, **bn_args)
    # Lite fixes the stem at 32 channels, so at w=2 the first block (16 → 32 channels) would
    # gain a skip connection the baseline does not have; keeping it skip-free (as in every
    # published Lite) is what lets a widened baseline compute the same function.
    net.blocks[0][0].has_skip = False
    features = nn.Sequential(net.conv_stem, net.bn1, net.blocks, net.conv_head, net.bn2)
    return CamNet(features, net.classifier, arch.dropout)


def build(arch: Architecture, *, stochastic_depth: float = 0.0,
          bn_momentum: float | None = None) -> CamNet:
    """A randomly initialised ``CamNet`` for ``arch`` (weights are loaded by ``weights``)."""
    builders = {"efficientnet": _build_efficientnet, "lite": _build_lite}
    if arch.family not in builders:
        raise ValueError(f"unknown family {arch.family!r}; choose from {', '.join(builders)}")
    return builders[arch.family](arch, stochastic_depth, bn_momentum)


def count_macs(net: nn.Module, resolution: int) -> int:
    """Multiply-accumulates for one image, counted by ``torch.utils.flop_counter`` on the meta
    device (no memory, no compute): FLOPs / 2."""
    from torch.utils.flop_counter import FlopCounterMode

    meta_net = _meta_copy(net)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_net(torch.empty(1, 3, resolution, resolution, device="meta"))
    return counter.get_total_flops() // 2


def _meta_copy(net: nn.Module) -> nn.Module:
    import copy

    with torch.device("meta"):
        clone = copy.deepcopy(net).to("meta")
    return clone.eval()


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
