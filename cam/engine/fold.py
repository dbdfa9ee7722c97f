"""Inference copies with BatchNorm folded into the preceding convolution.

In eval mode a BatchNorm is a per-channel affine map, so ``conv → bn`` equals one convolution with
rescaled weights and a bias. Folding removes a full pass over every activation tensor, which on a
CPU is a large share of an EfficientNet's time (depthwise convolutions are memory-bound).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


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
    """A folded copy of an eval-mode ``net`` (the original is untouched).

    A convolution immediately followed, in registration order, by a BatchNorm over its output
    channels is folded — this is how torchvision's ``Conv2dNormActivation`` and the Lite blocks
    are laid out.
    """
    folded = _own_copy(net).eval()
    with torch.no_grad():
        for parent in list(folded.modules()):
            children = list(parent.named_children())
            for (_, first), (name, second) in zip(children, children[1:]):
                if (isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d)
                        and second.num_features == first.out_channels):
                    first.weight, first.bias = fuse_conv_bn_weights(
                        first.weight, first.bias, second.running_mean, second.running_var,
                        second.eps, second.weight, second.bias)
                    plain = type(second) is nn.BatchNorm2d
                    setattr(parent, name, nn.Identity() if plain else _ActAfterFold(second))
    return folded


def _own_copy(module: nn.Module) -> nn.Module:
    """``module``'s tree with module objects, tensors and hook tables of its own, as
    ``copy.deepcopy`` makes it, at a third of its cost: deepcopy walks every attribute of every
    module in Python (0.12-0.25 s for a Lite network here, a share of the first grid), this
    copies the three tables that hold the tree and clones each tensor once. Other attributes
    are shared: a network's configuration (sizes, strides, flags), never changed after it is
    built."""
    twin = module.__class__.__new__(module.__class__)
    state = dict(module.__dict__)
    for key, value in state.items():
        if key == "_parameters":
            state[key] = {name: None if p is None else nn.Parameter(p.detach().clone(),
                                                                   p.requires_grad)
                          for name, p in value.items()}
        elif key == "_buffers":
            state[key] = {name: None if b is None else b.clone() for name, b in value.items()}
        elif key == "_modules":
            state[key] = {name: None if m is None else _own_copy(m) for name, m in value.items()}
        elif isinstance(value, (dict, list, set)):
            state[key] = value.copy()  # hooks, non-persistent buffer names: the copy's own
    twin.__dict__.update(state)
    return twin
