"""Images as the CAM engine sees them: decoded once, keyed by content, with ground truth if known.

Every entry point (CLI files and folders, app uploads, ImageNet val samples) ends up as a
``CamImage``, so the engine, the renderer and the metrics never care where a picture came from.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from safe_io.imagenet_val import Box, ValDataset, ValSample, open_val_dir
from safe_io.images import (
    SUPPORTED_EXTENSIONS,
    ImageLoadError,
    image_id_for,
    load_image,
    read_image_file,
)


@dataclass(frozen=True, eq=False)
class CamImage:
    """One decoded RGB picture; ``key`` is its content hash (the cache key), ``image_id`` the
    name shown to people (an ILSVRC id, or the file name)."""

    key: str
    image_id: str
    image: Image.Image
    gt_class: int | None = None
    boxes: tuple[Box, ...] = ()
    source: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def image_from_bytes(data: bytes, name: str, *, gt_class: int | None = None,
                     boxes: tuple[Box, ...] = (), image_id: str | None = None) -> CamImage:
    """Decode an upload or a file's bytes; raises ``ImageLoadError`` with a clear message."""
    image = load_image(data, name=name)
    return CamImage(image_id_for(data), image_id or Path(name).stem, image, gt_class, boxes, name)


def image_from_path(path: str | os.PathLike, **kwargs) -> CamImage:
    """A picture file; read with ``read_image_file`` so a huge, odd or non-image file is refused
    before it is read, then decoded like an upload (the bytes also give the content key)."""
    data = read_image_file(path)
    return image_from_bytes(data, os.fspath(path), **kwargs)


def image_from_sample(sample: ValSample) -> CamImage:
    """An ImageNet validation sample with its label and boxes."""
    return image_from_path(sample.path, gt_class=sample.class_index, boxes=sample.boxes,
                           image_id=sample.image_id)


def with_unique_ids(images: list[CamImage]) -> list[CamImage]:
    """The images with distinct display names: a second ``photo`` becomes ``photo (2)``, so two
    different uploads with the same file name can both be shown and picked."""
    seen: dict[str, int] = {}
    out = []
    for image in images:
        count = seen[image.image_id] = seen.get(image.image_id, 0) + 1
        out.append(image if count == 1 else dataclasses.replace(
            image, image_id=f"{image.image_id} ({count})"))
    return out


@dataclass
class LoadReport:
    """What came in: the images that decoded and, per bad file, why not."""

    images: list[CamImage] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def collect_images(paths: list[str | os.PathLike]) -> LoadReport:
    """Files and folders → images. A folder that is an ImageNet val directory contributes its
    labels and boxes; any other folder contributes its image files. Bad files are reported,
    never fatal."""
    report = LoadReport()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _collect_dir(path, report)
        elif path.is_file():
            sample = _annotation_for(path)
            _add(report, str(path), lambda p=path, s=sample:
                 image_from_sample(s) if s is not None else image_from_path(p))
        else:
            report.failures.append((str(path), "no such file or folder"))
    return report


def _val_dir(folder: Path) -> ValDataset | None:
    """The folder as an ImageNet val directory, or None when it carries no annotations."""
    try:
        dataset = open_val_dir(folder)
    except (ValueError, OSError):
        return None
    return dataset if len(dataset) else None


def _annotation_for(path: Path) -> ValSample | None:
    """A single val image given by path still gets its label and boxes from its folder."""
    if not path.name.startswith("ILSVRC2012_val_"):
        return None
    dataset = _val_dir(path.parent)
    sample = dataset.find(path.stem) if dataset is not None else None
    return sample if sample is not None and sample.path.resolve() == path.resolve() else None


def _collect_dir(folder: Path, report: LoadReport) -> None:
    dataset = _val_dir(folder)
    if dataset is not None:
        for sample in dataset.samples:
            _add(report, str(sample.path), lambda s=sample: image_from_sample(s))
        return
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
    if not files:
        report.failures.append((str(folder), "no image files in this folder"))
    for file in files:
        _add(report, str(file), lambda p=file: image_from_path(p))


def _add(report: LoadReport, name: str, load) -> None:
    try:
        report.images.append(load())
    except ImageLoadError as exc:
        report.failures.append((name, str(exc)))
