"""What a weight family is, and the registry of them.

A *family* is one architecture style (block type, activation, padding) together with the published
weights that exist for it. It owns how its networks are built, how their stages are found (for the
depth expansion), how foreign state dicts map onto its modules, and which weights fill each Table 7
role. A grid is drawn from one family only, so it never silently mixes SE/SiLU networks with Lite
ones.

Adding a family is one new module that subclasses ``WeightFamily`` and decorates it with
``@register_family`` (see ``efficientnet.py`` and ``lite.py``), plus its import in
``scaled_models/__init__.py``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .architectures import Architecture, CamNet
from .ladders import DEFAULT_LADDER, TABLE7_LADDER, Column, Ladder
from .preprocessing import Preprocessing
from .table7 import TABLE7


class WeightsUnavailable(RuntimeError):
    """The weights for a role cannot be used here. ``reason`` says why (naming the file when one
    exists) and ``make_available`` what would fix it; ``weights.load_weights`` is the one place
    that turns this into an unavailable role, so a bad file disables its own role only."""

    def __init__(self, reason: str, make_available: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.make_available = make_available


@dataclass(frozen=True, eq=False)
class PublishedWeights:
    """Weights someone else trained and published, described by what they published.

    ``arch`` is set when the weights fit one of the family's own architectures (B0, B3, the
    Lites); otherwise ``builder`` makes the publisher's network in the ``CamNet`` form."""

    family: WeightFamily  # whose key adapter reads the file
    name: str  # short name for headers and teacher lists, e.g. "EfficientNet-B3"
    source: str  # where they come from, e.g. "torchvision EfficientNet_B3_Weights.IMAGENET1K_V1"
    preprocessing: Preprocessing  # at the resolution they were trained at
    top1: float  # published ImageNet-1k top-1 at that resolution
    locate: Callable[..., Path]  # locate(download=True): the file here; raises WeightsUnavailable
    install_hint: str
    arch: Architecture | None = None
    builder: Callable[[], CamNet] | None = None
    url: str | None = None  # where the publisher serves the file, when it is a download
    sha256_prefix: str | None = None  # what the published file's sha256 starts with, if known

    def build(self) -> CamNet:
        """An untrained network these weights fit."""
        return self.arch.build() if self.arch is not None else self.builder()


@dataclass(frozen=True)
class RoleBinding:
    """What fills one column of a ladder in one family when no checkpoint exists: an
    architecture, the resolution it runs at, and published weights (``None``: nobody publishes
    this model).

    ``stand_in`` says the weights were trained for another configuration than the column's
    (e.g. B0's weights evaluated at 448 px, or Lite2 for the compound model), and ``note``
    how."""

    column: Column
    arch: Architecture
    resolution: int
    weights: PublishedWeights | None = None
    stand_in: bool = False
    note: str = ""

    @property
    def key(self) -> str:
        return self.column.key


class WeightFamily(ABC):
    """One architecture style and its weights. Subclasses set the class attributes and
    implement ``build`` (a static method) and ``stages``; ``roles`` binds each Table 7 row
    (empty for a family without Table 7's networks), ``bindings`` every ladder it fills."""

    name: str  # CLI/app choice and the checkpoints sub-folder
    description: str  # one line for selectors and tables
    blocks: str  # e.g. "MBConv + SE, SiLU"
    stand_in: bool  # the whole family only stands in for the paper's networks
    crop_pct: float  # preprocessing for checkpoints that record none
    ladders: tuple[Ladder, ...] = (TABLE7_LADDER,)  # the ladders ``bindings`` fills
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def architecture(self, width: float, depth: float, dropout: float = 0.2) -> Architecture:
        """One of this family's networks, carrying the family's ``build`` (the architecture
        never calls back into the family)."""
        return Architecture(self.name, self.blocks, width, depth, dropout, self.build)

    def preprocessing(self, resolution: int) -> Preprocessing:
        """The family's evaluation preprocessing at ``resolution``."""
        return Preprocessing.from_crop_pct(resolution, self.crop_pct, self.mean, self.std)

    @staticmethod
    @abstractmethod
    def build(arch: Architecture, *, stochastic_depth: float = 0.0,
              bn_momentum: float | None = None) -> CamNet:
        """A randomly initialised ``CamNet`` of ``arch``: a plain function of the architecture
        (no family state), which each architecture carries as its builder."""

    @abstractmethod
    def stages(self, net: CamNet) -> list[nn.Sequential]:
        """The seven MBConv stages, in order (the depth expansion appends blocks to them)."""

    @abstractmethod
    def split_at_head_norm(self, net: CamNet) -> tuple[nn.Module, nn.Module]:
        """``net.features`` as (everything before the BatchNorm that precedes the global pooling,
        that BatchNorm with its activation). Both share ``net``'s modules: FixRes fine-tunes the
        second one."""

    def adapt_state_dict(self, state: dict[str, torch.Tensor], net: CamNet,
                         origin: str) -> dict[str, torch.Tensor]:
        """A foreign state dict (as published) under ``net``'s keys; identity by default."""
        return state

    @property
    @abstractmethod
    def roles(self) -> dict[str, RoleBinding]:
        """Each Table 7 key → its binding in this family, in paper order."""

    def bindings(self, ladder: Ladder) -> dict[str, RoleBinding]:
        """Each column key of ``ladder`` → its binding in this family, baseline first (empty:
        this family does not fill the ladder). Table 7's ladder is ``roles``; a family that
        fills other ladders extends this."""
        return dict(self.roles) if ladder == TABLE7_LADDER else {}

    def fills(self, ladder: Ladder) -> bool:
        """Whether this family has columns for ``ladder``, said by its ``ladders`` (building
        the bindings may import torchvision: seconds the first screen does not wait for)."""
        return ladder in self.ladders

    @property
    @abstractmethod
    def catalogue(self) -> list[PublishedWeights]:
        """Every published model of this family (teachers are chosen from these)."""

    def role(self, key: str) -> RoleBinding:
        return self.roles[key]

    def published_locator(self, key: str) -> tuple[Callable[..., Path], str]:
        """How to find role ``key``'s published file, and where it comes from."""
        weights = self.role(key).weights
        return weights.locate, weights.source

    def published_available(self, key: str) -> tuple[bool, str]:
        """Whether role ``key``'s published weights can be had on this machine (found, or
        downloaded where that is allowed; not loaded): where they come from, or why not."""
        locate, source = self.published_locator(key)
        try:
            locate()
        except WeightsUnavailable as exc:
            return False, f"{source}: {exc.reason}"
        return True, source

    def derive_published_facts(self) -> dict[str, dict[str, str]]:
        """Per role, what ``published_locator`` may read from the shipped facts instead of
        deriving it (``derived_facts.py``); nothing by default."""
        return {}

    def table7_bindings(self, published: dict[str, PublishedWeights], *,
                        stand_ins: tuple[str, ...] = (), native_resolution: tuple[str, ...] = (),
                        notes: dict[str, str] | None = None) -> dict[str, RoleBinding]:
        """Bindings derived from Table 7: each role's architecture and resolution are Table 7's.
        Roles in ``stand_ins`` use published weights trained for another configuration (their
        architecture is built); roles in ``native_resolution`` run at their weights' own
        resolution instead of Table 7's; ``notes`` say how, in words."""
        bindings = {}
        for spec in TABLE7:
            weights = published.get(spec.key)
            stand_in = spec.key in stand_ins
            arch = weights.arch if stand_in else self.architecture(spec.width, spec.depth)
            resolution = (weights.preprocessing.resolution if spec.key in native_resolution
                          else spec.paper_resolution)
            note = (notes or {}).get(spec.key, "")
            if stand_in and not note and resolution != weights.preprocessing.resolution:
                note = (f"test-time resolution, not retrained: {weights.name}'s weights (trained "
                        f"at {weights.preprocessing.resolution} px) run at {resolution} px")
            bindings[spec.key] = RoleBinding(Column.of_table7(spec), arch, resolution, weights,
                                             stand_in, note)
        return bindings

    def __repr__(self) -> str:
        return f"<family {self.name}>"


FAMILIES: dict[str, WeightFamily] = {}
# The request that lets the ladder and the weights at hand choose (``resolve_family``): every
# menu's and option's default.
AUTO_FAMILY = "auto"


def register_family(cls: type[WeightFamily]) -> type[WeightFamily]:
    """Class decorator: one instance of ``cls`` becomes selectable by its ``name``."""
    FAMILIES[cls.name] = cls()
    return cls


def paper_family() -> WeightFamily:
    """The family with the paper's own blocks: Table 7's costs are counted on it, the paper
    recipe trains it, and ``auto`` prefers it when its baseline's weights can be had."""
    return next(f for f in FAMILIES.values() if not f.stand_in and f.fills(TABLE7_LADDER))


def offline_family() -> WeightFamily:
    """The first stand-in family: what ``auto`` falls back to without the paper's weights."""
    return next(f for f in FAMILIES.values() if f.stand_in)


def families_for(ladder: Ladder) -> list[WeightFamily]:
    """The families that fill ``ladder``, in registration order."""
    return [family for family in FAMILIES.values() if family.fills(ladder)]


def get_family(name: str | WeightFamily) -> WeightFamily:
    """The registered family ``name`` (a family passes through); the error lists the names."""
    if isinstance(name, WeightFamily):
        return name
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; choose from "
                         f"{', '.join(FAMILIES)}") from None


def resolve_family(requested: str, ladder: Ladder = DEFAULT_LADDER) -> tuple[WeightFamily, str]:
    """A family's name, or ``auto``, for ``ladder``; with the reason. ``auto`` is the one family
    that fills a ladder only one fills (the ResNets), else ``efficientnet`` when B0's weights
    can be had, else the offline ``lite``. Called once, where the request is read (a command
    line's ``--family``, the app's selector): everything below takes the family itself."""
    fillers = families_for(ladder)
    if requested in FAMILIES:
        family = FAMILIES[requested]
        if family not in fillers:
            choices = " or ".join([AUTO_FAMILY, *(f.name for f in fillers)])
            raise ValueError(f"the {family.name} family has no models for the {ladder.name} "
                             f"ladder; choose {choices}")
        return family, requested_reason(family)
    if requested != AUTO_FAMILY:
        raise ValueError(f"unknown family {requested!r}; choose {AUTO_FAMILY}, "
                         f"{', '.join(FAMILIES)}")
    if len(fillers) == 1:
        return fillers[0], f"auto: the only family with models for the {ladder.name} ladder"
    paper, offline = paper_family(), offline_family()
    ok, why = paper.published_available("baseline")
    if ok:
        return paper, f"auto: {paper.role('baseline').weights.name}'s weights are available ({why})"
    return offline, f"auto: using the offline {offline.name} stand-ins because {why}"


def requested_reason(family: WeightFamily) -> str:
    """Why a family that was named is used."""
    return f"family {family.name!r} was requested"
