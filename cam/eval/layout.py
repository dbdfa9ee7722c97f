"""Every file an evaluation run writes, named in one place from its ``--out``.

``cam evaluate --out r.csv`` writes ``r.csv`` (a row per image and model), ``r.agreement.csv``,
``r.options.json`` (what made the rows: ``--resume`` compares it), ``r.summary.json``, ``r.png``,
``r.agreement.png``; with ``--save-maps`` ``r.maps.<model>.npz`` (``r.maps.parts/`` while the run
goes); with ``--sanity`` ``r.sanity.csv`` and its own summary, plot, options and maps. A
torchrun job's processes write ``<file>.part<rank>`` until process 0 merges them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def file_safe(model_key: str) -> str:
    """A model key as part of a file name: a brought model's key (``torchvision:resnet152.
    IMAGENET1K_V2``, ``timm:resnet50=/path/w.pth``) has characters no file name may hold."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model_key)


def rank_part(path: Path, rank: int, world_size: int) -> Path:
    """Where process ``rank`` of a ``world_size``-process job writes ``path``'s rows."""
    return path if world_size == 1 else path.with_name(f"{path.name}.part{rank}")


@dataclass(frozen=True)
class RunFiles:
    """The files of one run whose rows go to ``rows`` (``--out``, or ``r.sanity.csv`` for the
    sanity checks beside ``r.csv``)."""

    rows: Path

    def _beside(self, suffix: str) -> Path:
        return self.rows.with_name(f"{self.rows.stem}{suffix}")

    @property
    def agreement(self) -> Path:
        return self._beside(f".agreement{self.rows.suffix}")

    @property
    def options(self) -> Path:
        return self._beside(".options.json")

    @property
    def summary(self) -> Path:
        return self._beside(".summary.json")

    @property
    def plot(self) -> Path:
        return self._beside(".png")

    @property
    def agreement_plot(self) -> Path:
        return self._beside(".agreement.png")

    def maps(self, model_key: str) -> Path:
        return self._beside(f".maps.{file_safe(model_key)}.npz")

    @property
    def map_parts(self) -> Path:
        return self._beside(".maps.parts")

    @property
    def sanity(self) -> RunFiles:
        """The sanity checks' run beside this one: ``r.sanity.csv`` and its own files."""
        return RunFiles(self._beside(f".sanity{self.rows.suffix}"))
