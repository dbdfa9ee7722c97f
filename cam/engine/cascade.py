"""Cascading model-parameter randomisation (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018, §3.1): a network's layers re-initialised from the top down, cumulatively, one step
at a time, so that each step's map can be compared with the trained network's.

**Granularity.** A step of a ``CamNet`` is one of its *units*, found from the network itself, so
every family (and every depth) is walked the same way: the classifier ``fc`` first, then the
modules of ``net.features`` from the last to the first, where a ``Sequential`` (the stages, and
torchvision's conv-norm-activation blocks) is opened and anything else with parameters (an
MBConv or depthwise-separable block, a lone convolution) is one unit, and a BatchNorm joins the
unit before it (it normalises that layer's output). So Lite0 has 19 steps: fc, the head (1×1
convolution + BatchNorm), its 16 blocks from the last to the first, and the stem (convolution +
BatchNorm); Lite2 has 24. Adebayo et al. randomise Inception v3 "layer by layer" at the
granularity of its named blocks (Mixed_7c, ...); a block here plays that part.

**Initialisation.** Each unit's layers are re-initialised with their PyTorch layer's own default
(``reset_parameters``: convolutions and linear layers Kaiming-uniform with a = √5, biases
uniform), under a seed derived from (``seed``, step), so a step's new weights do not depend on
which images or chunk are being explained, and the same seed gives the same network on every
run. Adebayo et al. re-draw from the initialisation the network was trained from (a truncated
normal for Inception); Quantus' randomisation uses these layer defaults too. Their scale is
smaller than the trained weights' (on Lite0 the features shrink about tenfold every few blocks,
to 1e-8 after the stem, far from float32's limits), so in a block with a skip connection the
randomised branch adds less to what passes through the skip than the trained branch did: the
skip connections carry the lower layers' signal up, as they do in any freshly built network of
this shape. That is the network the check asks about (an untrained one), and no rescaling is
applied to make it look otherwise.

**BatchNorm.** Its affine parameters are re-initialised (γ = 1, β = 0), as Adebayo et al. did
for every weight, and its running statistics are reset too (mean 0, variance 1): the trained
statistics describe the activations of the trained weights, and kept beside random weights they
would rescale random activations by numbers that belong to neither network. After a step, the
randomised part of the network is exactly what a freshly built network of that shape is in
evaluation mode; the layers below it keep their trained weights and statistics.

The copy is a ``copy.deepcopy`` of the network: the resident models (the engine's, the app's)
are never touched, and one copy is alive at a time per call.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from scaled_models.architectures import CamNet


@dataclass(frozen=True)
class CascadeStep:
    """One step of the cascade: the unit it re-initialises (module names in ``net``), its
    1-based position, a short label (``fc``, ``head``, ``block 16``, ``stem``), and whether it
    completes a stage (the next step's unit sits in another container: the coarser cascade
    ``stages`` records only these steps)."""

    index: int
    label: str
    modules: tuple[str, ...]
    ends_stage: bool = True


def _units(features: nn.Module, prefix: str) -> list[list[str]]:
    """``features``' units, first to last: a Sequential is opened, a BatchNorm joins the unit
    before it, any other module with parameters is a unit; parameterless modules are skipped."""
    units: list[list[str]] = []
    for name, child in features.named_children():
        path = f"{prefix}.{name}"
        if isinstance(child, nn.Sequential):
            units += _units(child, path)
        elif isinstance(child, nn.modules.batchnorm._BatchNorm) and units:
            units[-1].append(path)
        elif any(True for _ in child.parameters()):
            units.append([path])
    return units


def cascade_steps(net: CamNet) -> list[CascadeStep]:
    """The cascade of ``net``, in the order it randomises: ``fc``, then ``features``' units from
    the last to the first (see the module's docstring)."""
    units = _units(net.features, "features")
    if len(units) < 2:
        raise ValueError("the network's features have fewer than two units: nothing to cascade")
    blocks = len(units) - 2  # between the stem (first unit) and the head (last)
    labels = ["head", *(f"block {i}" for i in range(blocks, 0, -1)), "stem"]
    ordered = [("fc", ["fc"]), *zip(labels, reversed(units))]
    parents = [unit[0].rpartition(".")[0] for _, unit in ordered] + [None]
    return [CascadeStep(i + 1, label, tuple(unit), parents[i] != parents[i + 1])
            for i, (label, unit) in enumerate(ordered)]


def step_seed(seed: int, step: int) -> int:
    """The seed of one step's new weights: from (``seed``, ``step``) only."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def reinitialise(net: nn.Module, step: CascadeStep, seed: int) -> None:
    """Re-initialise ``step``'s modules of ``net`` in place with their layers' defaults (BatchNorm:
    affine and running statistics), under ``step_seed(seed, step.index)``. The global torch
    generator is left as it was. A module holding parameters but no ``reset_parameters`` is
    refused, so no trained weight is silently left in a 'randomised' unit."""
    modules = dict(net.named_modules())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(step_seed(seed, step.index))
        for name in step.modules:
            for path, module in modules[name].named_modules():
                own = list(module.parameters(recurse=False))
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
                elif own:
                    raise TypeError(f"{name}.{path} ({type(module).__name__}) has parameters "
                                    "but no reset_parameters: cannot re-initialise it")


def randomised_copies(net: CamNet, seed: int) -> Iterator[tuple[CascadeStep, CamNet]]:
    """Step by step, one deep copy of ``net`` with every unit up to that step re-initialised
    (cumulatively: the same copy, one more unit each time). The copy is in evaluation mode and
    needs no gradient for its parameters, like the resident models; ``net`` is not touched."""
    randomised = copy.deepcopy(net).eval().requires_grad_(False)
    try:
        for step in cascade_steps(net):
            reinitialise(randomised, step, seed)
            yield step, randomised
    finally:
        del randomised
