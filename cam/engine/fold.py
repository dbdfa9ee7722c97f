"""Inference copies with BatchNorm folded into the preceding convolution.

In eval mode a BatchNorm is a per-channel affine map, so ``conv → bn`` equals one convolution with
rescaled weights and a bias. Folding removes a full pass over every activation tensor, which on a
CPU is a large share of an EfficientNet's time (depthwise convolutions are memory-bound).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


class _ActAfterFold(nn.Module):
    """What remains of a BatchNorm with a built-in activation (the Lite family's
    ``BatchNormAct2d``) once its affine part is folded away."""

    def __init__(self, bn_act: nn.Module) -> None:
        super().__init__()
        self.act = bn_act.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)


def folding_pays(net: nn.Module) -> bool:
    """Whether a folded copy is worth its memory: for networks with depthwise convolutions
    (EfficientNet, Lite, MobileNet), whose cheap memory-bound layers make the BatchNorm passes a
    large share of the time; a ResNet's dense convolutions dominate its time, and folding it
    gains nothing measurable on a CPU."""
    return any(isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
               for m in net.modules())


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """A folded deep copy of an eval-mode ``net`` (the original is untouched).

    A convolution immediately followed, in registration order, by a BatchNorm over its output
    channels is folded — this is how torchvision's ``Conv2dNormActivation`` and the Lite blocks
    are laid out.
    """
    folded = copy.deepcopy(net).eval()
    with torch.no_grad():
        for parent in list(folded.modules()):
            children = list(parent.named_children())
            for (conv_name, first), (name, second) in zip(children, children[1:]):
                if (isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d)
                        and second.num_features == first.out_channels):
                    setattr(parent, conv_name, fuse_conv_bn_eval(first, second))
                    plain = type(second) is nn.BatchNorm2d
                    setattr(parent, name, nn.Identity() if plain else _ActAfterFold(second))
    return folded
