"""A checkpoint's metadata as one typed, versioned value: the trainer writes it
(``scaled_models.train``) as ``<checkpoint>.json``; loading, headers, tables, reports, teachers and
the variants table read it here, parsed once — how the model was made and how it does on images it
was not fit to.

The JSON carries ``"scalecam_checkpoint": CHECKPOINT_FORMAT``. A file without it was written
before the field (format 0) and reads the same way; a newer format is refused with the file
named, rather than half understood. Fields a reader needs are typed; the whole record stays in
``record`` for the trainer, which adds to it (the map agreement) and writes it back.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .family import WeightsUnavailable
from .files import read_checkpoint_metadata


def teacher_view_size(teacher_resolution: int, crop_size: int, image_size: int) -> int:
    """The size, in px, at which a distillation run shows its teacher a training crop that the
    student, running at ``image_size``, sees at ``crop_size``: the same fraction of the
    teacher's own resolution. The student learns the teacher at the teacher's pixel density,
    so the two densities keep their ratio whatever the crop size (with 224 px crops for a
    448 px student, a teacher shown them at 224 px would see what the student sees, and
    matching it would teach no change of resolution at all)."""
    return max(1, round(teacher_resolution * crop_size / image_size))

CHECKPOINT_FORMAT = 1  # the "scalecam_checkpoint" version written into checkpoint metadata
FORMAT_KEY = "scalecam_checkpoint"
_RECIPE_STATUS = {"match": "adapted", "fixres": "adapted", "distill": "distilled",
                  "paper": "trained"}


@dataclass(frozen=True)
class ArchitectureRef:
    """The network a checkpoint's tensors fit: a family's architecture at width × depth."""

    family: str | None
    width: float
    depth: float


@dataclass(frozen=True)
class BaseRef:
    """The published file a delta checkpoint's tensors are laid over."""

    name: str | None
    source: str | None
    sha256: str | None
    role: str = "baseline"


@dataclass(frozen=True)
class PreprocessingRef:
    """How the checkpoint was shown its images (``None``: the family's default)."""

    crop_pct: float | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str | None = None


@dataclass(frozen=True)
class DataRef:
    """What the checkpoint was fit to: a folder, how many of its photos, those held out."""

    folder: str | None
    images: int | None
    held_out: int | None = None
    held_out_fingerprint: str | None = None
    extra: tuple[tuple[str, int], ...] = ()  # --extra-data folders: (name, images)


@dataclass(frozen=True)
class CheckpointMeta:
    """A checkpoint's ``.json``, parsed once (``from_record``, ``read``)."""

    format: int
    recipe: str | None = None
    architecture: ArchitectureRef | None = None
    image_size: int | None = None
    preprocessing: PreprocessingRef = PreprocessingRef()
    base: BaseRef | None = None
    teacher: str | None = None  # the teacher's name, in words
    teacher_resolution: int | None = None
    data: DataRef | None = None
    epoch: int | None = None
    steps: int | None = None
    crop_size: int | None = None  # --crop-size, when it differs from the run's image size
    crop_min_area: float | None = None  # --crop-min-area or the recipe's, where recorded
    autoaugment: bool = False  # --autoaugment: AutoAugment on the training crops
    frozen_blocks: int = 0  # --frozen-blocks: the stem and this many blocks kept as they started
    ema_decay: float | None = None  # --ema: the weights are the student's moving average
    fine_tuned: tuple[str, ...] = ()  # what FixRes tuned
    images_seen: int | None = None
    wall_time_s: float | None = None
    evaluation: Mapping = field(default_factory=dict)  # the trainer's held-out record
    spearman: tuple[float, float, float] | None = None  # maps vs the baseline's: mean, 95 % CI
    record: Mapping = field(default_factory=dict)  # everything, as written

    @classmethod
    def read(cls, path: Path) -> CheckpointMeta | None:
        """``<checkpoint>.json`` beside ``path``, or ``None`` when there is none."""
        record = read_checkpoint_metadata(path)
        return cls.from_record(record, str(path.with_suffix(".json"))) if record else None

    @classmethod
    def from_record(cls, record: Mapping, where: str) -> CheckpointMeta:
        """The typed value of a metadata record; ``WeightsUnavailable`` naming ``where`` and the
        field when the record is from a newer scalecam or a field has the wrong type."""
        version = record.get(FORMAT_KEY, 0)
        if not isinstance(version, int) or version > CHECKPOINT_FORMAT:
            raise WeightsUnavailable(f"{where}: checkpoint metadata format {version!r}; this "
                                     f"scalecam reads formats up to {CHECKPOINT_FORMAT}",
                                     "update scalecam, or retrain the checkpoint with this one")
        try:
            return cls._parse(record, version)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise WeightsUnavailable(f"{where}: unreadable checkpoint metadata ({exc})") from None

    @classmethod
    def _parse(cls, record: Mapping, version: int) -> CheckpointMeta:
        arch = record.get("architecture") or None
        base = record.get("base") or None
        pre = record.get("preprocessing") or {}
        teacher = record.get("teacher") or {}
        config = record.get("config") or {}
        spearman = ((record.get("map_agreement") or {}).get("baseline") or {}).get("spearman")
        image_size = _int(record.get("image_size"))
        crop = _int(config.get("crop_size"))
        crop_area = config.get("crop_area")
        return cls(
            format=version, recipe=record.get("recipe"),
            architecture=(ArchitectureRef(arch.get("family"), float(arch["width"]),
                                          float(arch["depth"])) if arch else None),
            image_size=image_size,
            preprocessing=PreprocessingRef(
                _float(pre.get("crop_pct")), _triple(pre.get("mean")), _triple(pre.get("std")),
                pre.get("interpolation")),
            base=(BaseRef(base.get("name"), base.get("source"), base.get("sha256"),
                          base.get("role", "baseline")) if base else None),
            teacher=teacher.get("name"), teacher_resolution=_int(teacher.get("resolution")),
            data=_data(record.get("data")),
            epoch=_int(record.get("epoch")), steps=_int(record.get("steps")),
            crop_size=crop if crop != image_size else None,
            crop_min_area=_float(crop_area[0]) if isinstance(crop_area, list) and crop_area
            else None,
            autoaugment=config.get("autoaugment") is True,
            frozen_blocks=_int(config.get("frozen_blocks")) or 0,
            ema_decay=_float(config.get("ema_decay")) if record.get("ema") else None,
            fine_tuned=tuple(record.get("fine_tuned") or ()),
            images_seen=_int(record.get("images_seen")),
            wall_time_s=_float(record.get("wall_time_s")),
            evaluation=record.get("eval") or {},
            spearman=(float(spearman["mean"]), *map(float, spearman["ci95"])) if spearman
            else None,
            record=dict(record))

    def to_record(self) -> dict:
        """What the trainer writes: the record, with this scalecam's format."""
        return {FORMAT_KEY: CHECKPOINT_FORMAT} | {k: v for k, v in self.record.items()
                                                   if k != FORMAT_KEY}

    @property
    def status(self) -> str:
        """One word for a checkpoint (``Provenance.status``), from its recipe."""
        return _RECIPE_STATUS.get(self.recipe, "trained")

    def top1(self) -> tuple[float | None, str | None]:
        """Top-1 and the images it was measured on, from the ``eval`` record: the held-out
        comparison the trainer writes (``train.evaluation.comparison``), or the bare top-1 of
        checkpoints written before it."""
        evaluation = self.evaluation
        trained, on = evaluation.get("trained"), evaluation.get("on") or {}
        if trained is not None:
            return float(trained["top1"]), f"{trained['images']} {_judged_images(on)}"
        if evaluation.get("top1") is None:
            return None, None
        return (float(evaluation["top1"]),
                f"{evaluation.get('images')} images of {evaluation.get('dir')}")

    def headline(self) -> str:
        """A checkpoint in a few words, for a grid header."""
        base = self.base.name if self.base is not None and self.base.name else "the baseline"
        if self.recipe == "match":
            return f"fine-tuned from {base}"
        if self.recipe == "fixres":
            return f"adapted from {base} (FixRes)"
        if self.recipe == "distill":
            return f"distilled from {self.teacher or 'a teacher'}"
        if self.recipe == "paper":
            return "trained from scratch"
        return "local checkpoint"

    def describe(self) -> str:
        """What a checkpoint is, in a sentence."""
        on = self._fit_to()
        steps = f", {self.steps:,} steps" if self.steps else ""
        base = self.base.name if self.base is not None and self.base.name else "the baseline"
        teacher_px = self.teacher_resolution or 224
        if self.recipe == "match":
            shown = (f", shown to it at {self.crop_size} px in training (to {base} at "
                     f"{teacher_view_size(teacher_px, self.crop_size, self.image_size)} px)"
                     if self.crop_size else "")
            share = (f" ({self.crop_min_area * 100:g}–100 % of each photo)"
                     if self.crop_min_area else "")
            augmented = " under AutoAugment's ImageNet policy" if self.autoaugment else ""
            tuned = (f"every weight after the stem and the first {self.frozen_blocks} blocks"
                     if self.frozen_blocks else "every weight")
            average = (f"; the weights are the moving average of the fine-tuned ones (decay "
                       f"{self.ema_decay:g})" if self.ema_decay else "")
            return (f"adapted to {self.image_size} px from {base}: {tuned} fine-tuned so "
                    f"that at {self.image_size} px it says what {base} says at {teacher_px} px "
                    f"about the same random crops{share}{augmented}{shown} (self-distillation, "
                    f"no label){on}{steps}{average}")
        if self.recipe == "fixres":
            tuned = " and ".join(self.fine_tuned or ("head BatchNorm",))
            return (f"adapted to {self.image_size} px (FixRes) from {base}: BatchNorm "
                    f"statistics re-estimated and the {tuned} fine-tuned to the baseline's own "
                    f"{teacher_px} px predictions{on}{steps}")
        if self.recipe == "distill":
            return f"distilled from {self.teacher or 'a teacher'}{on}{steps}"
        if self.recipe == "paper":
            return f"trained from scratch (paper recipe){on}{steps}"
        return "local checkpoint" + on

    def _fit_to(self) -> str:
        data = self.data
        if data is None or not data.folder:
            return ""
        held = f"; {data.held_out:,} more held out to judge it" if data.held_out else ""
        extra = "".join(f" and {folder} ({images:,} images)" for folder, images in data.extra)
        return f" on {data.folder} ({data.images:,} images{held}){extra}"


def _int(value) -> int | None:
    return None if value is None else int(value)


def _float(value) -> float | None:
    return None if value is None else float(value)


def _triple(value) -> tuple[float, float, float] | None:
    return None if value is None else tuple(float(v) for v in value)


def _data(data) -> DataRef | None:
    if not isinstance(data, Mapping):
        return None
    holdout = data.get("holdout") or {}
    return DataRef(data.get("folder"), _int(data.get("images")),
                   _int(holdout.get("held_out_images")), holdout.get("held_out_fingerprint"),
                   tuple((extra.get("folder"), int(extra.get("images")))
                         for extra in data.get("extra") or ()))


def _judged_images(on: dict) -> str:
    if on.get("kind") == "held-out":
        return f"held-out photos of {on.get('folder')}"
    return f"images of {on.get('folder')}"


def _signed(points: float) -> str:
    """+2.4 or −9.2 (a minus sign, as the statistics' sentences write it)."""
    return f"{points:+.1f}".replace("-", "−")


@dataclass(frozen=True)
class Judged:
    """How a trained model does on images it was not fit to, beside the model it started from
    and the baseline on the same images (read from the checkpoint's ``eval`` record)."""

    top1: float
    ci95: tuple[float, float]
    images: int
    where: str  # "held-out photos of imagenet_sample_1k_half"
    start_top1: float
    baseline_top1: float | None  # None: the baseline could not be run
    gain_points: float  # trained − start, top-1 points
    p: float  # exact McNemar, trained vs start
    verdict: str  # "better than its start", …
    spearman: tuple[float, float, float] | None = None  # maps vs the baseline's: mean, 95 % CI

    @classmethod
    def from_metadata(cls, meta: CheckpointMeta) -> Judged | None:
        evaluation = meta.evaluation
        trained, start = evaluation.get("trained"), evaluation.get("start")
        if trained is None or start is None:
            return None
        diff = evaluation["trained_minus_start"]
        return cls(trained["top1"], tuple(trained["top1_ci95"]), trained["images"],
                   _judged_images(evaluation.get("on") or {}), start["top1"],
                   (evaluation.get("baseline") or {}).get("top1"), diff["top1_points"],
                   diff["mcnemar_p"], evaluation["verdict"], meta.spearman)

    def sentence(self) -> str:
        """E.g. "top-1 84.1 [80.0, 88.0] on 251 held-out photos of imagenet_sample_1k_half;
        start 81.7; baseline 90.4; trained − start +2.4 points, McNemar p = 0.04: better than
        its start; maps' Spearman with the baseline's 0.80 [0.78, 0.82]"."""
        baseline = ("baseline not measured" if self.baseline_top1 is None
                    else f"baseline {self.baseline_top1:.1f}")
        text = (f"top-1 {self.top1:.1f} [{self.ci95[0]:.1f}, {self.ci95[1]:.1f}] on "
                f"{self.images} {self.where}; start {self.start_top1:.1f}; {baseline}; "
                f"trained − start {_signed(self.gain_points)} points, McNemar p = {self.p:.2g}: "
                f"{self.verdict}")
        if self.spearman is not None:
            mean, low, high = self.spearman
            text += f"; maps' Spearman with the baseline's {mean:.2f} [{low:.2f}, {high:.2f}]"
        return text

    def short(self) -> str:
        """A grid header's line, as short as a panel is wide: "unseen 84.1 (start 81.7)", the
        top-1 in percent on images the model was not fit to."""
        return f"unseen {self.top1:.1f} (start {self.start_top1:.1f})"


