"""ImageNet-1k class metadata, offline.

Every model in scalecam has a 1000-way head in *sorted-wnid* order (the order torchvision, timm and
the Lite packages use), so one table serves all families, the val readers and the app's class
picker.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

_CSV = Path(__file__).with_name("imagenet_classes.csv")


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    with _CSV.open(newline="", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["class_index"]))
    if [int(r["class_index"]) for r in rows] != list(range(1000)):
        raise RuntimeError(f"{_CSV} must list class indices 0..999 exactly once")
    return tuple(r["wnid"] for r in rows), tuple(r["class_name"] for r in rows)


WNIDS: tuple[str, ...] = _table()[0]
CLASS_NAMES: tuple[str, ...] = _table()[1]
SHORT_NAMES: tuple[str, ...] = tuple(name.split(",")[0].strip() for name in CLASS_NAMES)
_INDEX_OF_WNID = {wnid: i for i, wnid in enumerate(WNIDS)}


def class_index_of(wnid: str) -> int:
    """Sorted-wnid index of ``wnid``; KeyError names the unknown wnid."""
    try:
        return _INDEX_OF_WNID[wnid]
    except KeyError:
        raise KeyError(f"{wnid!r} is not one of the 1000 ImageNet-1k wnids") from None


def is_wnid(text: str) -> bool:
    return text in _INDEX_OF_WNID


def class_label(index: int) -> str:
    """Short human label, e.g. ``'bakery'`` for 415 — used in captions and pickers."""
    return SHORT_NAMES[index]
