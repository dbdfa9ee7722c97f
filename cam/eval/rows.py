"""The rows an evaluation produces, typed, and the one place that knows their CSV form.

A ``MetricRow`` (one image scored with one model), an ``AgreementRow`` (one image's maps of two
models compared) and a ``SanityRow`` (one image's sanity checks with one model and method, made
by ``sanity_run``) are what ``evaluate`` makes, ``--resume`` reads back, and ``summary`` and the
app summarise. Each field's column name is the field's name, and its codec says how the field is
written as CSV text and read back, so the writer, the resume reader and every reader of a results
CSV agree on one schema instead of retyping column names and re-parsing strings.

Text written from a row reads back to a row that writes the same text: floats keep
``FLOAT_DIGITS`` decimals, flags are ``0``/``1`` and a missing value (no box, no faithfulness
pass) is the empty cell. An image's MaxBoxAccV2 hits (a δ × τ boolean array, 3 × 1000) are kept
exactly, as runs of τ indices: ``0:512 530:532/40:301/-`` is hit for τ indices 0–511 and 530–531
at δ = 30, 40–300 at δ = 50, never at δ = 70.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TextIO, TypeVar

import numpy as np

from cam.eval.metrics.localization import cam_thresholds

FLOAT_DIGITS = 6


@dataclass(frozen=True)
class Codec:
    """How one field is written as CSV text, and read back from it."""

    write: Callable[[Any], str]
    read: Callable[[str], Any]


TEXT = Codec(str, str)
INTEGER = Codec(str, int)
REAL = Codec(lambda value: f"{value:.{FLOAT_DIGITS}f}", float)
FLAG = Codec(lambda value: str(int(value)), lambda text: bool(int(text)))
Runs = tuple[tuple[int, ...], ...]  # per δ: start, stop, start, stop … of the hit τ indices


def _write_runs(runs: Runs) -> str:
    return "/".join(" ".join(f"{a}:{b}" for a, b in zip(r[::2], r[1::2])) or "-" for r in runs)


def _read_runs(text: str) -> Runs:
    if not text:
        return ()
    groups = []
    for group in text.split("/"):
        bounds = () if group == "-" else tuple(
            int(v) for run in group.split() for v in run.split(":", 1))
        if len(bounds) % 2 or any(b <= a for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"box_hits {text!r} is not runs of increasing start:stop indices")
        groups.append(bounds)
    return tuple(groups)


@dataclass(frozen=True, eq=False)
class BoxHits:
    """Where one image's map is right for MaxBoxAccV2 (``metrics.box_hits``): a δ × τ boolean
    array, in memory as it was computed; runs of τ indices only in the CSV (``HITS``)."""

    array: np.ndarray

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoxHits) and np.array_equal(self.array, other.array)

    __hash__ = None  # an array's contents: equal by value, not hashable


def _write_hits(hits: BoxHits | None) -> str:
    return "" if hits is None else _write_runs(hits_to_runs(hits.array))


def _read_hits(text: str) -> BoxHits | None:
    if not text:
        return None
    return BoxHits(runs_to_hits(_read_runs(text), len(cam_thresholds())))


# a δ without hits is "-", no boxes at all "" (``None``)
HITS = Codec(_write_hits, _read_hits)
# a sequence of reals (one per cascade step), space-separated; a constant map's nan as "nan"
REALS = Codec(lambda values: " ".join(REAL.write(v) for v in values),
              lambda text: tuple(float(v) for v in text.split()))
WORDS = Codec("|".join, lambda text: tuple(text.split("|")) if text else ())


def optional(codec: Codec) -> Codec:
    """``codec`` with ``None`` written as the empty cell."""
    return Codec(lambda value: "" if value is None else codec.write(value),
                 lambda text: None if text == "" else codec.read(text))


def _column(codec: Codec) -> Any:
    return dataclasses.field(metadata={"csv": codec})


Row = TypeVar("Row", bound="CsvRow")


class CsvRow:
    """A frozen dataclass whose fields are the CSV's columns, in order, each with its codec."""

    KEY: ClassVar[tuple[str, ...]]  # the fields that identify a row: one row per key in a CSV

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def key_of(cls, **values: str) -> tuple:
        """The key of the row with these ``KEY`` values (whether or not it exists yet)."""
        return (cls.__name__, *(values[name] for name in cls.KEY))

    def key(self) -> tuple:
        return self.key_of(**{name: getattr(self, name) for name in self.KEY})

    def to_csv_row(self) -> dict[str, str]:
        return {f.name: f.metadata["csv"].write(getattr(self, f.name))
                for f in dataclasses.fields(self)}

    @classmethod
    def from_csv_row(cls: type[Row], row: Mapping[str, str]) -> Row:
        return cls(**{f.name: f.metadata["csv"].read(row[f.name])
                      for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class MetricRow(CsvRow):
    """One labelled image explained by one model: its prediction, and how the model's map of the
    ground-truth class localises the object and explains the score (``metrics``). Localization
    fields are ``None`` without boxes, faithfulness fields without a deletion/insertion pass."""

    KEY: ClassVar[tuple[str, ...]] = ("image_id", "model", "method")

    image_id: str = _column(TEXT)
    model: str = _column(TEXT)
    method: str = _column(TEXT)
    family: str = _column(TEXT)
    target_class: int = _column(INTEGER)
    gt_class: int = _column(INTEGER)
    pred_class: int = _column(INTEGER)
    pred_prob: float = _column(REAL)
    target_prob: float = _column(REAL)
    low_confidence: bool = _column(FLAG)
    top1_correct: bool = _column(FLAG)
    top5_correct: bool = _column(FLAG)
    gt_known_loc: bool | None = _column(optional(FLAG))
    top1_loc: bool | None = _column(optional(FLAG))
    loc_iou: float | None = _column(optional(REAL))
    pointing_hit: bool | None = _column(optional(FLAG))
    energy_in_box: float | None = _column(optional(REAL))
    deletion_auc: float | None = _column(optional(REAL))
    insertion_auc: float | None = _column(optional(REAL))
    deletion_auc_norm: float | None = _column(optional(REAL))
    insertion_auc_norm: float | None = _column(optional(REAL))
    # where the image is correct for MaxBoxAccV2; None without boxes
    box_hits: BoxHits | None = _column(HITS)


@dataclass(frozen=True)
class AgreementRow(CsvRow):
    """One image's maps from two models (each of its ``class_*``) compared on the common region
    (``agreement.map_agreement``); ``spearman`` is nan when either map is constant."""

    KEY: ClassVar[tuple[str, ...]] = ("image_id", "method", "model_a", "model_b")

    image_id: str = _column(TEXT)
    method: str = _column(TEXT)
    model_a: str = _column(TEXT)
    model_b: str = _column(TEXT)
    class_a: int = _column(INTEGER)
    class_b: int = _column(INTEGER)
    spearman: float = _column(REAL)
    top20_iou: float = _column(REAL)


@dataclass(frozen=True)
class SanityRow(CsvRow):
    """One image's sanity checks for one model and method (``sanity``): the trained model's
    predicted class every cascade map explains, the random class of the random-logit check, and
    per recorded cascade step (``steps``, in cascade order: ``fc``, ``head``, ``block n``, …,
    ``stem``) the similarity of the randomised network's map with the trained one's."""

    KEY: ClassVar[tuple[str, ...]] = ("image_id", "model", "method")

    image_id: str = _column(TEXT)
    model: str = _column(TEXT)
    method: str = _column(TEXT)
    family: str = _column(TEXT)
    seed: int = _column(INTEGER)
    target_class: int = _column(INTEGER)
    target_prob: float = _column(REAL)
    random_class: int = _column(INTEGER)
    steps: tuple[str, ...] = _column(WORDS)
    spearman_abs: tuple[float, ...] = _column(REALS)
    spearman: tuple[float, ...] = _column(REALS)
    ssim: tuple[float, ...] = _column(REALS)
    entropy_trained: float = _column(REAL)
    entropy_randomised: float = _column(REAL)
    emprt: float = _column(REAL)
    random_logit_ssim: float = _column(REAL)


def hits_to_runs(hits: np.ndarray) -> Runs:
    """A δ × τ boolean array as runs of hit τ indices per δ: (start, stop, start, stop, …),
    each stop exclusive."""
    runs = []
    for row in np.asarray(hits, dtype=bool):
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
        runs.append(tuple(int(e) for e in edges))
    return tuple(runs)


def runs_to_hits(runs: Runs, thresholds: int) -> np.ndarray:
    """``hits_to_runs`` undone: the δ × ``thresholds`` boolean array. Runs past the grid (a
    CSV made on another threshold grid) are refused."""
    if any(bounds and bounds[-1] > thresholds for bounds in runs):
        raise ValueError(f"box_hits {runs} reach past {thresholds} thresholds: made on another "
                         "threshold grid")
    hits = np.zeros((len(runs), thresholds), dtype=bool)
    for row, bounds in zip(hits, runs):
        for start, stop in zip(bounds[::2], bounds[1::2]):
            row[start:stop] = True
    return hits


def read_rows(path: Path, row_type: type[Row]) -> list[Row]:
    """The rows of a results CSV; a torn last line (a run killed mid-write) is ignored."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in row_type.columns() if c not in (reader.fieldnames or ())]
    if text and missing:
        raise ValueError(f"{path}: not a {row_type.__name__} CSV of this scalecam version "
                         f"(no column {', '.join(missing)}); evaluate again into a new file")
    last = row_type.columns()[-1]
    rows = []
    for line, record in enumerate(reader, start=2):
        if record.get(last) is None:
            continue
        try:
            rows.append(row_type.from_csv_row(record))
        except ValueError as exc:
            raise ValueError(f"{path}, line {line}: {exc}") from None
    return rows


def write_csv(fh: TextIO, rows: Iterable[CsvRow], row_type: type[CsvRow],
              header: bool = True) -> None:
    """Rows as a results CSV (``row_type``'s columns, ``\\n`` line ends)."""
    writer = csv.DictWriter(fh, row_type.columns(), lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(r.to_csv_row() for r in rows)
