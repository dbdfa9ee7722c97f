"""What a checkpoint's metadata says, in words: the trainer writes it (``scaled_models.train``),
headers, tables and reports read it here — how the model was made and how it does on images it
was not fit to."""
from __future__ import annotations

from dataclasses import dataclass

CHECKPOINT_FORMAT = 1  # the "scalecam_checkpoint" version written into checkpoint metadata
_RECIPE_STATUS = {"match": "adapted", "fixres": "adapted", "distill": "distilled",
                  "paper": "trained"}


def checkpoint_status(metadata: dict) -> str:
    """One word for a checkpoint (``Provenance.status``), from its recipe."""
    return _RECIPE_STATUS.get(metadata.get("recipe"), "trained")


def checkpoint_top1(metadata: dict) -> tuple[float | None, str | None]:
    """A checkpoint's top-1 and the images it was measured on, from its ``eval`` record: the
    held-out comparison the trainer writes (``train.evaluation.comparison``), or the bare
    top-1 of checkpoints written before it."""
    evaluation = metadata.get("eval") or {}
    trained, on = evaluation.get("trained"), evaluation.get("on") or {}
    if trained is not None:
        return float(trained["top1"]), f"{trained['images']} {_judged_images(on)}"
    if evaluation.get("top1") is None:
        return None, None
    return (float(evaluation["top1"]),
            f"{evaluation.get('images')} images of {evaluation.get('dir')}")


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
    def from_metadata(cls, metadata: dict) -> Judged | None:
        evaluation = metadata.get("eval") or {}
        trained, start = evaluation.get("trained"), evaluation.get("start")
        if trained is None or start is None:
            return None
        diff = evaluation["trained_minus_start"]
        spearman = ((metadata.get("map_agreement") or {}).get("baseline") or {}).get("spearman")
        return cls(trained["top1"], tuple(trained["top1_ci95"]), trained["images"],
                   _judged_images(evaluation.get("on") or {}), start["top1"],
                   (evaluation.get("baseline") or {}).get("top1"), diff["top1_points"],
                   diff["mcnemar_p"], evaluation["verdict"],
                   (spearman["mean"], *spearman["ci95"]) if spearman else None)

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


def checkpoint_headline(metadata: dict) -> str:
    """A checkpoint in a few words, for a grid header."""
    recipe = metadata.get("recipe")
    if recipe == "match":
        return f"fine-tuned from {(metadata.get('base') or {}).get('name', 'the baseline')}"
    if recipe == "fixres":
        return f"adapted from {(metadata.get('base') or {}).get('name', 'the baseline')} (FixRes)"
    if recipe == "distill":
        return f"distilled from {(metadata.get('teacher') or {}).get('name', 'a teacher')}"
    if recipe == "paper":
        return "trained from scratch"
    return "local checkpoint"


def describe_checkpoint(metadata: dict) -> str:
    """What a checkpoint is, in words, from the metadata the trainer wrote."""
    recipe = metadata.get("recipe")
    data = metadata.get("data") or {}
    held = (data.get("holdout") or {}).get("held_out_images") if isinstance(data, dict) else None
    on = (f" on {data.get('folder')} ({data.get('images'):,} images"
          + (f"; {held:,} more held out to judge it)" if held else ")")
          + "".join(f" and {extra.get('folder')} ({extra.get('images'):,} images)"
                    for extra in data.get("extra") or [])  # --extra-data (#35)
          if isinstance(data, dict) and data.get("folder") else "")
    steps = metadata.get("steps")
    steps_text = f", {steps:,} steps" if steps else ""
    if recipe == "match":
        base = (metadata.get("base") or {}).get("name") or "the baseline"
        resolution = (metadata.get("teacher") or {}).get("resolution", 224)
        crop = (metadata.get("config") or {}).get("crop_size")  # --crop-size (#35)
        shown = (f", shown to it at {crop} px in training" if crop
                 and crop != metadata.get("image_size") else "")
        return (f"adapted to {metadata.get('image_size')} px from {base}: every weight "
                f"fine-tuned so that at {metadata.get('image_size')} px it says what {base} "
                f"says at {resolution} px about the same random crops{shown} "
                f"(self-distillation, no label){on}{steps_text}")
    if recipe == "fixres":
        base = (metadata.get("base") or {}).get("name") or "the baseline"
        tuned = " and ".join(metadata.get("fine_tuned") or ["head BatchNorm"])
        return (f"adapted to {metadata.get('image_size')} px (FixRes) from {base}: BatchNorm "
                f"statistics re-estimated and the {tuned} fine-tuned to the baseline's own "
                f"{(metadata.get('teacher') or {}).get('resolution', 224)} px predictions{on}"
                f"{steps_text}")
    if recipe == "distill":
        teacher = (metadata.get("teacher") or {}).get("name") or "a teacher"
        return f"distilled from {teacher}{on}{steps_text}"
    if recipe == "paper":
        return f"trained from scratch (paper recipe){on}{steps_text}"
    return "local checkpoint" + on
