"""Function-preserving expansions of the baseline (Net2Net-style), to start distillation from.

* ``widen``: every channel whose count doubles is duplicated (copy ``c`` and ``c + C``); a weight
  that *reads* doubled channels gets its input slice duplicated and halved, so each consumer sees
  the same sum. This covers convolutions, depthwise convolutions, SE and the classifier, and
  leaves unscaled tensors (Lite's fixed stem and head) as they are.
* ``deepen``: each stage keeps its original blocks first (the first carries the stride and
  channel change) and gains residual blocks whose last BatchNorm has zero weight and bias, so
  each new block adds exactly zero at initialisation.

The results have exactly the state-dict layout of ``build(Architecture(family, 2, 1))`` and
``build(Architecture(family, 1, 4))``, so their checkpoints load like any other.
"""
from __future__ import annotations

import torch
from torch import nn

from .architectures import Architecture, CamNet, build


def _widen_tensor(name: str, source: torch.Tensor, target_shape: torch.Size) -> torch.Tensor:
    tensor = source
    if tensor.dim() == 0 or tensor.shape == target_shape:
        return tensor.clone()
    if tensor.dim() != len(target_shape):
        raise ValueError(f"{name}: {tuple(tensor.shape)} cannot become {tuple(target_shape)}")
    for dim, (old, new) in enumerate(zip(tensor.shape, target_shape)):
        if new == old:
            continue
        if new != 2 * old:
            raise ValueError(f"{name}: dimension {dim} goes from {old} to {new}, not doubled")
        tensor = torch.cat([tensor, tensor], dim=dim)
        if dim == 1:  # an input dimension: both copies of a channel share its contribution
            tensor = tensor / 2
    return tensor


def widen(net: CamNet, family: str) -> CamNet:
    """The width ×2 network computing the same function as ``net`` (a w=1, d=1 network)."""
    wide = build(Architecture(family, 2.0, 1.0))
    source = net.state_dict()
    target = wide.state_dict()
    if list(source) != list(target):
        raise ValueError("widen expects the baseline architecture of the same family")
    wide.load_state_dict({k: _widen_tensor(k, source[k], target[k].shape) for k in target})
    return wide


def _stages(net: CamNet, family: str) -> list[nn.Sequential]:
    if family == "efficientnet":
        return list(net.features[1:-1])  # torchvision: stem, 7 stages, head conv
    return list(net.features[2])  # Lite: conv_stem, bn1, blocks(stages), conv_head, bn2


def _last_norm(block: nn.Module) -> nn.BatchNorm2d:
    if hasattr(block, "bn3"):  # timm InvertedResidual
        return block.bn3
    if hasattr(block, "bn2") and hasattr(block, "conv_pw"):  # timm DepthwiseSeparableConv
        return block.bn2
    return block.block[-1][1]  # torchvision MBConv: projection Conv2dNormActivation's BN


def _is_residual(block: nn.Module) -> bool:
    return bool(getattr(block, "use_res_connect", False) or getattr(block, "has_skip", False))


def deepen(net: CamNet, family: str) -> CamNet:
    """The depth ×4 network computing the same function as ``net`` (a w=1, d=1 network)."""
    deep = build(Architecture(family, 1.0, 4.0))
    shallow_stages, deep_stages = _stages(net, family), _stages(deep, family)
    with torch.no_grad():
        for index, (old, new) in enumerate(zip(shallow_stages, deep_stages)):
            for position, block in enumerate(new):
                if position < len(old):
                    block.load_state_dict(old[position].state_dict())
                    continue
                if not _is_residual(block):
                    raise ValueError(f"stage {index} block {position} is not residual")
                norm = _last_norm(block)
                norm.weight.zero_()
                norm.bias.zero_()
        staged = {id(p) for stage in deep_stages for p in stage.parameters()}
        staged |= {id(b) for stage in deep_stages for b in stage.buffers()}
        rest = {k: v for k, v in deep.state_dict(keep_vars=True).items()
                if id(v) not in staged}
        source = net.state_dict()
        for key, value in rest.items():
            value.copy_(source[key])
    return deep
