"""The one network shape every family is built into, and how its cost is counted.

The exact CAM of Zhou et al. needs a network of the form features → global average pool → linear.
``CamNet`` is that form; each weight family (``family.py``) builds its blocks into it, so the CAM
engine, the trainer and the checkpoint format never care which library supplied the blocks.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .family import WeightFamily

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
    """What is built: a family's blocks with width/depth multipliers (and the dropout the
    family's recipe uses at that size)."""

    family: WeightFamily
    width: float
    depth: float
    dropout: float = 0.2

    @property
    def description(self) -> str:
        return f"{self.family.name} w={self.width:g} d={self.depth:g} ({self.family.blocks})"

    def build(self, *, stochastic_depth: float = 0.0, bn_momentum: float | None = None
              ) -> CamNet:
        """A randomly initialised network (weights are loaded by ``weights``)."""
        return self.family.build(self, stochastic_depth=stochastic_depth,
                                 bn_momentum=bn_momentum)

    def as_record(self) -> dict:
        """What checkpoint metadata stores: plain values."""
        return {"family": self.family.name, "width": self.width, "depth": self.depth}


def count_macs(net: nn.Module, resolution: int) -> int:
    """Multiply-accumulates for one image, counted by ``torch.utils.flop_counter`` on the meta
    device (no memory, no compute): FLOPs / 2."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        meta_net = copy.deepcopy(net).to("meta").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_net(torch.empty(1, 3, resolution, resolution, device="meta"))
    return counter.get_total_flops() // 2


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
