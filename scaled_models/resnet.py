"""The ``resnet`` family: torchvision's ResNets with the ``IMAGENET1K_V2`` weights, which fill the
``resnet`` ladder — Table 3's ResNet-50 row (Tan & Le 2019) with real, published networks.

Deeper and wider ResNets are published by one training recipe (torchvision's V2 weights):
ResNet-101 and ResNet-152 are ResNet-50 with more bottleneck blocks, Wide ResNet-50-2 is
ResNet-50 with every bottleneck's inner width doubled. So the ladder's depth and width columns
are real models, unlike Table 7's d=4 and w=2 EfficientNets, which nobody publishes. Its
resolution column is ResNet-50's weights run at twice the resolution, which is a test-time
change and labelled as one. Its compound column stays empty: no published ResNet scales depth,
width and resolution together from ResNet-50.

What the weights are (file, preprocessing, top-1) is read from torchvision's ``Weights`` enums,
as for the ``efficientnet`` family. How much deeper and wider each network is, is counted on the
built network (``architectures.measure_shape``), not typed.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import cached_property

import torch
from torch import nn

from .architectures import Architecture, CamNet
from .efficientnet import torchvision_weights
from .family import PublishedWeights, RoleBinding, WeightFamily, register_family
from .ladders import RESNET_LADDER, Column, Ladder
from .paper import TABLE3_RESNET, Scaling
from .preprocessing import IMAGENET_MEAN, IMAGENET_STD

WEIGHTS = "IMAGENET1K_V2"  # one recipe for every depth and width
# (column key, torchvision name, the network's name, what it scales). The resolution column is
# ResNet-50 at twice its resolution; the compound column has no published network.
_COLUMNS = (
    ("resnet50", "resnet50", "ResNet-50", Scaling.BASELINE),
    ("resnet101", "resnet101", "ResNet-101", Scaling.DEPTH),
    ("resnet152", "resnet152", "ResNet-152", Scaling.DEPTH),
    ("wide_resnet50_2", "wide_resnet50_2", "Wide ResNet-50-2", Scaling.WIDTH),
)
RESOLUTION_FACTOR = 2
NO_COMPOUND = ("no published ResNet scales depth, width and resolution together from ResNet-50: "
               "Wide ResNet-101-2 is deeper and wider but runs at ResNet-50's resolution, and "
               "the paper's compound-scaled ResNet-50 (Table 3) was never released")


def wrap(net: nn.Module) -> CamNet:
    """A torchvision ResNet in the CamNet form: its layers up to ``layer4`` (named as torchvision
    names them) → global average pooling → ``fc``: the same function, since torchvision's
    ``avgpool`` is a global average and nothing follows it but ``fc``."""
    features = nn.Sequential(OrderedDict(
        (name, getattr(net, name)) for name in
        ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
    return CamNet(features, net.fc, 0.0)


def _build_as_published(arch: Architecture, *, stochastic_depth: float = 0.0,
                        bn_momentum: float | None = None) -> CamNet:
    """torchvision's network named by ``arch`` (``Architecture.name``), for inference."""
    import torchvision.models as tvm

    if stochastic_depth or bn_momentum is not None:
        raise ValueError(f"{arch.name} is built as torchvision publishes it, for inference only")
    return wrap(tvm.get_model(_TORCHVISION_NAME[arch.name], weights=None))


_TORCHVISION_NAME = {name: model for _, model, name, _ in _COLUMNS}


@register_family
class ResNetFamily(WeightFamily):
    name = "resnet"
    description = "torchvision ResNets with the IMAGENET1K_V2 weights (one recipe for every size)"
    blocks = "Bottleneck"
    stand_in = False
    crop_pct = 224 / 232  # the V2 weights' evaluation: resize 232, crop 224
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    ladders = (RESNET_LADDER,)

    @staticmethod
    def build(arch: Architecture, *, stochastic_depth: float = 0.0,
              bn_momentum: float | None = None) -> CamNet:
        return _build_as_published(arch, stochastic_depth=stochastic_depth,
                                   bn_momentum=bn_momentum)

    def stages(self, net: CamNet) -> list[nn.Sequential]:
        return [net.features.layer1, net.features.layer2, net.features.layer3,
                net.features.layer4]

    def split_at_head_norm(self, net: CamNet) -> tuple[nn.Module, nn.Module]:
        raise ValueError("a ResNet has no BatchNorm between its last block and the pooling: "
                         "FixRes's head fine-tuning does not apply")

    def adapt_state_dict(self, state: dict[str, torch.Tensor], net: CamNet,
                         origin: str) -> dict[str, torch.Tensor]:
        """torchvision's keys under ``features.``, except the classifier's (``fc``)."""
        return {k if k.startswith("fc.") else f"features.{k}": v for k, v in state.items()}

    @property
    def roles(self) -> dict[str, RoleBinding]:
        return {}  # Table 7's networks are EfficientNets

    def bindings(self, ladder: Ladder) -> dict[str, RoleBinding]:
        return self._resnet_ladder if ladder == RESNET_LADDER else {}

    def _architecture(self, network: str) -> Architecture:
        """The named network, with how much deeper and wider than ResNet-50 it is, counted on
        the built network (blocks of its four stages; a bottleneck's 3×3 channels)."""
        from .architectures import measure_shape

        probe = Architecture(self.name, self.blocks, 1.0, 1.0, 0.0, _build_as_published,
                             name=network)
        with torch.device("meta"):
            shape = measure_shape(self.stages(probe.build()))
            base = measure_shape(self.stages(
                Architecture(self.name, self.blocks, 1.0, 1.0, 0.0, _build_as_published,
                             name="ResNet-50").build()))
        return Architecture(self.name, self.blocks, round(shape.channels / base.channels, 3),
                            round(shape.blocks / base.blocks, 3), 0.0, _build_as_published,
                            name=network)

    @cached_property
    def _published(self) -> dict[str, PublishedWeights]:
        return {key: torchvision_weights(self, model, WEIGHTS, arch=self._architecture(name),
                                         name=name)
                for key, model, name, _ in _COLUMNS}

    @cached_property
    def _resnet_ladder(self) -> dict[str, RoleBinding]:
        bindings = {}
        for key, _, name, scales in _COLUMNS:
            weights = self._published[key]
            column = Column(key, f"{name} ({_relation(scales)})", name, scales,
                            TABLE3_RESNET[scales])
            bindings[key] = RoleBinding(column, weights.arch, weights.preprocessing.resolution,
                                        weights)
        base = self._published["resnet50"]
        resolution = base.preprocessing.resolution * RESOLUTION_FACTOR
        column = Column("resnet50_r2", f"ResNet-50 at {resolution} px (test-time resolution)",
                        f"ResNet-50 @{resolution}", Scaling.RESOLUTION,
                        TABLE3_RESNET[Scaling.RESOLUTION])
        bindings[column.key] = RoleBinding(
            column, base.arch, resolution, base, stand_in=True,
            note=f"test-time resolution, not retrained: ResNet-50's {WEIGHTS} weights (evaluated "
                 f"at {base.preprocessing.resolution} px) run at {resolution} px")
        column = Column("compound", "compound-scaled ResNet-50", "Compound", Scaling.COMPOUND,
                        TABLE3_RESNET[Scaling.COMPOUND])
        bindings[column.key] = RoleBinding(column, base.arch, base.preprocessing.resolution,
                                           None, note=NO_COMPOUND)
        return bindings

    @cached_property
    def catalogue(self) -> list[PublishedWeights]:
        """Every ResNet of the ladder, V2 weights (teachers may be picked from these)."""
        return list(self._published.values())


def _relation(scales: Scaling) -> str:
    return {Scaling.BASELINE: "the baseline", Scaling.DEPTH: "ResNet-50, deeper",
            Scaling.WIDTH: "ResNet-50, wider"}[scales]
