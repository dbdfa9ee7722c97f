"""Ladders: ordered sets of columns, each a model scaled from the ladder's baseline in one stated
way, compared side by side as Figure 7 compares Table 7's.

A ladder names *what* is compared; a weight family (``family.py``) says *which weights* fill
each of its columns (``WeightFamily.bindings``), so one ladder can be filled by several
families (Table 7 by the paper's EfficientNets or by the offline Lite stand-ins) and a family
fills only the ladders it has models for. Every column says what it scales and which printed
row of the paper it is set beside (none, where the paper has none): a column never claims to
be a model it is not.

- ``table7``: Table 7's five roles (B0; depth ×4; width ×2; resolution ×2; compound);
- ``resnet``: Table 3's ResNet-50 row filled with published ResNets of one recipe (deeper
  ResNet-101 and ResNet-152, wider Wide ResNet-50-2, ResNet-50 at twice the resolution);
- ``compound``: the compound-scaled ladder itself (Lite0 → Lite2, or B0 → B7).
"""
from __future__ import annotations

from dataclasses import dataclass

from .paper import PaperRow, Scaling
from .table7 import TABLE7, ModelSpec


@dataclass(frozen=True)
class Column:
    """One column of a ladder: its key (the CSV's ``model``, ``--models``), its words, what it
    scales relative to the ladder's baseline, and the paper's row it is set beside."""

    key: str
    label: str  # a sentence's words: "ResNet-152 (ResNet-50, deeper)"
    short_label: str  # a grid header's first line
    scales: Scaling
    paper: PaperRow | None  # the printed row it is compared with; None: the paper has none
    spec: ModelSpec | None = None  # the Table 7 row it is (the trainer's role), if it is one

    @classmethod
    def of_table7(cls, spec: ModelSpec) -> Column:
        return cls(spec.key, spec.label, spec.short_label, spec.scales, spec.paper_row, spec)


TABLE7_COLUMNS: tuple[Column, ...] = tuple(Column.of_table7(spec) for spec in TABLE7)


@dataclass(frozen=True)
class Ladder:
    """A named comparison. Which families fill it is theirs to say (``family.families_for``)."""

    name: str
    title: str  # a selector's words, short enough for a sidebar
    description: str  # one sentence: what is compared, from which paper table
    networks: str = "networks"  # what the page calls them: "where do scaled … look?"


TABLE7_LADDER = Ladder(
    "table7", "Table 7: EfficientNet-B0 scaled",
    "Figure 7's five models: EfficientNet-B0 scaled one dimension at a time (depth ×4, width "
    "×2, resolution ×2) and all three at once (compound), Table 7 of Tan & Le (2019).",
    "EfficientNets")
RESNET_LADDER = Ladder(
    "resnet", "Table 3: ResNet-50 scaled",
    "Table 3's ResNet-50 row filled with published ResNets of one training recipe "
    "(torchvision IMAGENET1K_V2): deeper ResNet-101 and ResNet-152, wider Wide ResNet-50-2, "
    "and ResNet-50 at twice the resolution.", "ResNets")
COMPOUND_LADDER = Ladder(
    "compound", "Compound ladder: Lite0 → Lite2, B0 → B7",
    "The compound-scaled networks themselves, each rung scaling depth, width and resolution "
    "together from the baseline: Lite0 → Lite2 offline, B0 → B7 with torchvision's weights.",
    "EfficientNets")

LADDERS: dict[str, Ladder] = {ladder.name: ladder for ladder in
                              (TABLE7_LADDER, RESNET_LADDER, COMPOUND_LADDER)}
DEFAULT_LADDER = TABLE7_LADDER


def get_ladder(name: str | Ladder) -> Ladder:
    """The ladder ``name`` (a ladder passes through); the error lists the names."""
    if isinstance(name, Ladder):
        return name
    try:
        return LADDERS[name]
    except KeyError:
        raise ValueError(f"unknown ladder {name!r}; choose from {', '.join(LADDERS)}") from None
