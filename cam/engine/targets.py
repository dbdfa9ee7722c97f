"""Which class a map explains: each model's own top-1, the image's ground truth, or one class.

One ``Target.resolve(image)`` answers "which class, for this image?" for both the engine's target
selection and its cache key, so the two can never disagree (class 0, "tench", once read as "no
class" because a falsy index was mistaken for a missing one).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cam.engine.inputs import CamImage
from safe_io.imagenet import CLASS_NAMES, class_index_of, class_label, is_wnid

NO_GROUND_TRUTH_NOTE = "no ground truth for this image: the map explains the prediction"


class TargetMode(Enum):
    """How the explained class is chosen."""

    PREDICTED = "predicted"
    GROUND_TRUTH = "gt"
    CLASS = "class"


@dataclass(frozen=True)
class Target:
    """A target mode, plus a class index: the class for ``CLASS``, and for ``GROUND_TRUTH`` an
    optional class for images without a label (else each model's prediction)."""

    mode: TargetMode
    class_index: int | None = None

    def __post_init__(self) -> None:
        if self.mode is TargetMode.CLASS and self.class_index is None:
            raise ValueError("a CLASS target needs a class index")
        if self.mode is TargetMode.PREDICTED and self.class_index is not None:
            raise ValueError("a PREDICTED target takes no class index")
        if self.class_index is not None and not 0 <= self.class_index < len(CLASS_NAMES):
            raise ValueError(f"target class must be 0..{len(CLASS_NAMES) - 1}, "
                             f"got {self.class_index}")

    @classmethod
    def of_class(cls, index: int) -> "Target":
        return cls(TargetMode.CLASS, int(index))

    @classmethod
    def ground_truth_or(cls, index: int | None) -> "Target":
        """The ground truth where an image has one, else class ``index`` (``None``: each
        model's prediction) — the rule for comparing models' maps of the same class."""
        return cls(TargetMode.GROUND_TRUTH, None if index is None else int(index))

    @property
    def label(self) -> str:
        """Words for titles and manifests."""
        if self.mode is TargetMode.CLASS:
            return _class_words(self.class_index)
        if self.mode is TargetMode.GROUND_TRUTH:
            otherwise = (_class_words(self.class_index) if self.class_index is not None
                         else "each model's prediction")
            return f"ground truth, else {otherwise}"
        return "each model's prediction"

    def resolve(self, image: CamImage) -> int | None:
        """The class to explain for ``image``; ``None`` means each model's own top-1."""
        if self.mode is TargetMode.PREDICTED:
            return None
        if self.mode is TargetMode.GROUND_TRUTH and image.gt_class is not None:
            return image.gt_class
        return self.class_index

    def note(self, image: CamImage) -> str | None:
        """What a caption should add when the target cannot be honoured as asked."""
        if self.mode is TargetMode.GROUND_TRUTH and image.gt_class is None:
            if self.class_index is not None:
                return (f"no ground truth for this image: the map explains "
                        f"{_class_words(self.class_index)}")
            return NO_GROUND_TRUTH_NOTE
        return None


def _class_words(index: int) -> str:
    return f"class {index} ({class_label(index)})"


PREDICTED = Target(TargetMode.PREDICTED)
GROUND_TRUTH = Target(TargetMode.GROUND_TRUTH)


def parse_target(text: str) -> Target:
    """``predicted`` | ``gt`` | a class index, wnid or unique class name (or name fragment)."""
    value = text.strip()
    if not value:
        raise ValueError("target is empty: give 'predicted', 'gt', a class index, a wnid or an "
                         "ImageNet class name")
    if value.lower() in ("predicted", "pred", "top1"):
        return PREDICTED
    if value.lower() in ("gt", "ground-truth", "ground_truth", "label"):
        return GROUND_TRUTH
    if value.isdigit() and int(value) < len(CLASS_NAMES):
        return Target.of_class(int(value))
    if is_wnid(value):
        return Target.of_class(class_index_of(value))
    exact = [i for i, n in enumerate(CLASS_NAMES)
             if value.lower() in (p.strip().lower() for p in n.split(","))]
    matches = exact or [i for i, n in enumerate(CLASS_NAMES) if value.lower() in n.lower()]
    if len(matches) == 1:
        return Target.of_class(matches[0])
    if not matches:
        raise ValueError(f"target {text!r} is not 'predicted', 'gt', a class index, a wnid or "
                         "an ImageNet class name")
    shown = ", ".join(f"{i} {class_label(i)}" for i in matches[:6])
    raise ValueError(f"target {text!r} matches several classes ({shown}…); give the index or wnid")
