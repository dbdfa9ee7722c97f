"""Function-preserving expansions of the baseline, to start distillation from.

* ``widen`` (width ×2): every channel whose count doubles gets a second copy; each weight that
  *reads* a doubled channel splits its contribution between the two copies as α and 1 − α, with α
  drawn per channel (LEMON, Wang et al., ICLR 2024, §4.1 "unequal splitting"). The sum is what the
  baseline computed, so the student starts as the baseline; but because α ≠ ½, the two copies of a
  channel receive different gradients from the first step on. With Net2Net's equal halves (Chen
  et al., ICLR 2016) the copies of a network without channel-level dropout get identical gradients
  forever and the "wider" model never becomes more than the baseline in a wider coat.
* ``deepen`` (depth ×4): each stage keeps its original blocks first (the first carries the stride
  and channel change) and gains residual blocks whose last BatchNorm has zero weight and bias, so
  each new block adds exactly zero at initialisation (as in Net2DeeperNet's identity blocks).

The results have exactly the state-dict layout of the family's w=2 and d=4 architectures, so their
checkpoints load like any other. The widening and deepening factors are Table 7's.
"""
from __future__ import annotations

import torch
from torch import nn

from .architectures import CamNet
from .family import WeightFamily
from .table7 import spec_for

# α is drawn from [0.25, 0.75]: far enough from ½ for the copies to part within a few steps,
# far enough from 0 and 1 that neither copy starts with a vanishing share of the gradient.
SPLIT_RANGE = (0.25, 0.75)


def _split_fractions(channels: int, generator: torch.Generator) -> torch.Tensor:
    low, high = SPLIT_RANGE
    return low + (high - low) * torch.rand(channels, generator=generator, dtype=torch.float64)


def _widen_tensor(name: str, source: torch.Tensor, target_shape: torch.Size,
                  generator: torch.Generator) -> torch.Tensor:
    """Duplicate every doubled output dimension; split every doubled input dimension (dim 1 of
    a weight) as α·w for the first copy and (1 − α)·w for the second."""
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
        if dim == 1:  # an input dimension: the two copies of a channel share its contribution
            alpha = _split_fractions(old, generator).to(tensor.dtype)
            shape = [1] * tensor.dim()
            shape[1] = old
            alpha = alpha.view(shape)
            tensor = torch.cat([tensor * alpha, tensor * (1 - alpha)], dim=1)
        else:
            tensor = torch.cat([tensor, tensor], dim=dim)
    return tensor


def widen(net: CamNet, family: WeightFamily, seed: int = 0) -> CamNet:
    """The Table 7 width network computing the same function as ``net`` (the baseline), with
    unequal splits drawn from ``seed``."""
    spec = spec_for("width")
    if spec.width != 2.0:
        raise ValueError("widen duplicates channels: it needs Table 7's width factor 2")
    wide = family.architecture(spec.width, 1.0).build()
    source = net.state_dict()
    target = wide.state_dict()
    if list(source) != list(target):
        raise ValueError("widen expects the baseline architecture of the same family")
    generator = torch.Generator().manual_seed(seed)
    wide.load_state_dict({k: _widen_tensor(k, source[k], target[k].shape, generator)
                          for k in target})
    return wide


def _last_norm(block: nn.Module) -> nn.BatchNorm2d:
    if hasattr(block, "bn3"):  # Lite InvertedResidual
        return block.bn3
    if hasattr(block, "bn2") and hasattr(block, "conv_pw"):  # Lite DepthwiseSeparable
        return block.bn2
    return block.block[-1][1]  # torchvision MBConv: projection Conv2dNormActivation's BN


def _is_residual(block: nn.Module) -> bool:
    return bool(getattr(block, "use_res_connect", False) or getattr(block, "has_skip", False))


def deepen(net: CamNet, family: WeightFamily) -> CamNet:
    """The Table 7 depth network computing the same function as ``net`` (the baseline)."""
    deep = family.architecture(1.0, spec_for("depth").depth).build()
    shallow_stages, deep_stages = family.stages(net), family.stages(deep)
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
