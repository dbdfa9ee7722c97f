"""The rows of Tan & Le's tables (ICML 2019, arXiv:1905.11946v5) that scalecam's columns are set
beside, as printed, and the words for the ways a network is scaled.

Table 7 (B0 scaled one way at a time, and compounded) is ``table7.py``'s, which ships the
rows' coefficients for building them; here are the other two tables a ladder quotes: Table 3's
ResNet-50 rows (the paper scales ResNet-50 by depth, width and resolution, and compounds them,
without printing the compound coefficients) and Table 2's EfficientNet-B0…B7 (the compound
ladder). Nothing here is fitted or measured: a measured MAC count is printed beside these,
never instead of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Scaling(str, Enum):
    """What a column changes relative to its ladder's baseline (Figure 7's columns)."""

    BASELINE = "baseline"
    DEPTH = "depth"
    WIDTH = "width"
    RESOLUTION = "resolution"
    COMPOUND = "compound"
    BROUGHT = "brought"  # a model a user brought: it scales nothing the ladder states

    @property
    def single_dimension(self) -> bool:
        return self in (Scaling.DEPTH, Scaling.WIDTH, Scaling.RESOLUTION)


@dataclass(frozen=True)
class PaperRow:
    """One printed row: the model's words, its FLOPs and ImageNet top-1 as printed, and its
    scaling coefficients where the paper gives them (``None`` where it does not)."""

    table: str  # "Table 3"
    label: str  # as printed, e.g. "Scale ResNet-50 by depth (d=4)"
    flops: str  # as printed, e.g. "16.2B" (the paper's FLOPs are multiply-adds)
    top1: float  # percent, as printed
    width: float | None = None
    depth: float | None = None
    resolution: float | None = None  # r, relative to the baseline's input size

    @property
    def coefficients(self) -> str:
        """E.g. "d=4" or "w=1.2, d=1.4, r=1.3": what the paper printed, nothing inferred."""
        given = [(name, value) for name, value in
                 (("w", self.width), ("d", self.depth), ("r", self.resolution))
                 if value is not None]
        if not given:
            return "(coefficients not printed)"
        scaled = [(name, value) for name, value in given if value != 1]
        if not scaled:
            return "baseline"
        return ", ".join(f"{name}={value:g}" for name, value in scaled)

    @property
    def short(self) -> str:
        """A header's line: "Table 3 d=4: 16.2B, 78.1 %"."""
        printed = any(v is not None for v in (self.width, self.depth, self.resolution))
        where = f"{self.table} {self.coefficients}" if printed else self.table
        return f"{where}: {self.flops}, {self.top1:.1f} %"


# Table 3, "Scaling Up MobileNets and ResNet": the ResNet-50 rows.
TABLE3_RESNET: dict[Scaling, PaperRow] = {
    Scaling.BASELINE: PaperRow("Table 3", "Baseline ResNet-50 (He et al., 2016)", "4.1B", 76.0,
                               width=1, depth=1, resolution=1),
    Scaling.DEPTH: PaperRow("Table 3", "Scale ResNet-50 by depth (d=4)", "16.2B", 78.1,
                            depth=4),
    Scaling.WIDTH: PaperRow("Table 3", "Scale ResNet-50 by width (w=2)", "14.7B", 77.7,
                            width=2),
    Scaling.RESOLUTION: PaperRow("Table 3", "Scale ResNet-50 by resolution (r=2)", "16.4B",
                                 77.5, resolution=2),
    Scaling.COMPOUND: PaperRow("Table 3", "ResNet-50 compound scale", "16.7B", 78.8),
}

# Table 2: EfficientNet-B0…B7 (top-1 as printed), with the (w, d, resolution) of the
# reference code's ``efficientnet_params`` (github.com/tensorflow/tpu,
# models/official/efficientnet/efficientnet_builder.py), r relative to B0's 224 px.
TABLE2: dict[str, PaperRow] = {
    name: PaperRow("Table 2", f"EfficientNet-{name}", flops, top1, width, depth,
                   round(pixels / 224, 3))
    for name, flops, top1, width, depth, pixels in (
        ("B0", "0.39B", 77.1, 1.0, 1.0, 224),
        ("B1", "0.70B", 79.1, 1.0, 1.1, 240),
        ("B2", "1.0B", 80.1, 1.1, 1.2, 260),
        ("B3", "1.8B", 81.6, 1.2, 1.4, 300),
        ("B4", "4.2B", 82.9, 1.4, 1.8, 380),
        ("B5", "9.9B", 83.6, 1.6, 2.2, 456),
        ("B6", "19B", 84.0, 1.8, 2.6, 528),
        ("B7", "37B", 84.3, 2.0, 3.1, 600),
    )
}
