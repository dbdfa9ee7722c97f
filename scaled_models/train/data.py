"""The photos a model is trained on: any folder of images, searched recursively; labelled when
every photo sits in a folder named by its ImageNet wnid (an ImageFolder such as
``imagenet_sample_1k_half/<wnid>/…`` or ``train/<wnid>/…``). Every photo is decoded by scalecam's
one decoder (``safe_io.images``), and a photo that cannot be decoded is skipped and named,
not fatal.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from safe_io.imagenet import class_index_of, is_wnid
from safe_io.images import SUPPORTED_EXTENSIONS, ImageLoadError, check_image_file, load_image

from ..preprocessing import Preprocessing


@dataclass(frozen=True)
class ImageSet:
    """The image files under ``root`` in a fixed (sorted) order, with their classes when every
    file's folder is a wnid (``labels`` is ``None`` otherwise)."""

    root: Path
    paths: tuple[Path, ...]
    labels: tuple[int, ...] | None

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def fingerprint(self) -> str:
        """sha256 over every file's relative path and size: the same set of files gives the same
        fingerprint on any machine, a file added, removed or resized changes it."""
        digest = hashlib.sha256()
        for path in self.paths:
            digest.update(f"{path.relative_to(self.root).as_posix()}\t{path.stat().st_size}\n"
                          .encode())
        return digest.hexdigest()

    def record(self) -> dict:
        """What a checkpoint's metadata says about its training data."""
        return {"folder": self.root.name, "path": str(self.root), "images": len(self),
                "fingerprint": self.fingerprint, "labels": self.labels is not None}

    def relative(self) -> list[str]:
        """The files as paths relative to ``root`` (what a record lists)."""
        return [path.relative_to(self.root).as_posix() for path in self.paths]

    def subset(self, indices: list[int]) -> "ImageSet":
        """The files at ``indices`` (kept in this set's sorted order)."""
        indices = sorted(indices)
        return ImageSet(self.root, tuple(self.paths[i] for i in indices),
                        None if self.labels is None
                        else tuple(self.labels[i] for i in indices))


@dataclass(frozen=True)
class HoldoutSplit:
    """A seeded split of one folder into the photos a model is fit to and the photos it is
    judged on. Each file's side is decided by sha256(seed, its relative path): the same files
    and seed give the same split on any machine, and adding a photo moves at most one other
    photo across (a shuffle of the sorted list would move about half of them)."""

    train: ImageSet
    held_out: ImageSet
    fraction: float
    seed: int

    def record(self) -> dict:
        """What a checkpoint says about the split: enough to rebuild it, and to check it."""
        return {"fraction": self.fraction, "seed": self.seed, "rule": HOLDOUT_RULE,
                "train_images": len(self.train), "held_out_images": len(self.held_out),
                "train_fingerprint": self.train.fingerprint,
                "held_out_fingerprint": self.held_out.fingerprint,
                "held_out_files": self.held_out.relative()}


HOLDOUT_RULE = ("files sorted by sha256('<seed>:<path relative to the folder>'); the first "
                "floor(n * fraction + 0.5) are held out")


def holdout_split(images: ImageSet, fraction: float, seed: int) -> HoldoutSplit:
    """``images`` split into a training part and ``fraction`` of it held out (``HOLDOUT_RULE``).
    Both parts must keep at least one photo."""
    if not 0.0 < fraction < 1.0:
        raise SystemExit(f"--holdout must be between 0 and 1 (exclusive), got {fraction:g}")
    names = images.relative()
    order = sorted(range(len(names)),
                   key=lambda i: hashlib.sha256(f"{seed}:{names[i]}".encode()).hexdigest())
    count = math.floor(len(order) * fraction + 0.5)
    if not 0 < count < len(order):
        raise SystemExit(f"{images.root}: holding out {fraction:g} of {len(order)} photos leaves "
                         "one side empty; use more photos or another --holdout")
    return HoldoutSplit(images.subset(order[count:]), images.subset(order[:count]), fraction,
                        seed)


def find_images(root: Path) -> ImageSet:
    """Every usable image file under ``root`` (recursively, symlinked folders not followed).
    A file whose header cannot be read (a dangling or looping link, a page saved as .jpg) is
    named and left out here, so the count and the fingerprint cover the files used."""
    root = Path(root)
    if not root.is_dir():
        raise SystemExit(f"{root}: not a folder of images")
    found = sorted(Path(folder) / name for folder, _, files in os.walk(root) for name in files
                   if os.path.splitext(name)[1].lower() in SUPPORTED_EXTENSIONS)
    if not found:
        raise SystemExit(f"{root}: no image files ({', '.join(SUPPORTED_EXTENSIONS)}) in it")
    paths = []
    for path in found:
        try:
            check_image_file(path)
            paths.append(path)
        except ImageLoadError as exc:
            print(f"skipped {exc}", file=sys.stderr, flush=True)
    if not paths:
        raise SystemExit(f"{root}: none of its {len(found)} image files can be read")
    return ImageSet(root, tuple(paths), _labels(root, paths))


def _labels(root: Path, paths: list[Path]) -> tuple[int, ...] | None:
    """Each photo's class from its folder's wnid, or ``None`` when no photo sits in an ImageNet
    class folder. A mix stops the run: treated as unlabelled, the photos that have a class
    would lose it and the model would be judged on nothing, without a word."""
    outside = Counter(p.parent for p in paths if not is_wnid(p.parent.name))
    if not outside:
        return tuple(class_index_of(p.parent.name) for p in paths)
    if len(outside) == len({p.parent for p in paths}):
        return None
    shown = [f"{folder.relative_to(root).as_posix() if folder != root else '.'}/ "
             f"({count} photo{'s' if count > 1 else ''})"
             for folder, count in sorted(outside.items())]
    if len(shown) > 5:
        shown = shown[:5] + [f"and {len(shown) - 5} more folders"]
    labelled = len(paths) - sum(outside.values())
    raise SystemExit(
        f"--data {root}: {labelled} photos sit in ImageNet class (wnid) folders, but "
        f"{sum(outside.values())} sit in folders that are not one of the 1000 ImageNet-1k "
        f"classes: {', '.join(shown)}. Move those out to train on labelled photos (and be "
        "judged on them), or put every photo outside wnid folders to train without labels.")


def training_images(data: Path) -> ImageSet:
    """``data/train`` when ``data`` holds a ``train/`` split (the ImageNet layout), else every
    image under ``data``."""
    data = Path(data)
    return find_images(data / "train" if (data / "train").is_dir() else data)


def default_eval_dir(data: Path) -> Path | None:
    """A ``train/``+``val/`` layout is evaluated on its ``val/``: the folder itself is returned,
    since safe_io.imagenet_val's readers find ``val/<wnid>/`` under it."""
    return Path(data) if (Path(data) / "val").is_dir() and (Path(data) / "train").is_dir() \
        else None


class CropDataset(torch.utils.data.Dataset):
    """(crop in [0, 1], class or -1) per photo; normalisation is each model's own, on device.
    ``None`` for a photo the decoder refuses (``skip_unreadable`` drops it from the batch)."""

    def __init__(self, images: ImageSet, crop) -> None:
        self.images = images
        self.crop = crop

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        path = self.images.paths[index]
        try:
            picture = load_image(path)
        except ImageLoadError as exc:
            print(f"skipped {exc}", file=sys.stderr, flush=True)
            return None
        label = self.images.labels[index] if self.images.labels is not None else -1
        return self.crop(picture), label


def skip_unreadable(batch: list) -> list[torch.Tensor] | None:
    """``collate_fn`` that leaves out photos the decoder refused."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return None
    return torch.utils.data.default_collate(kept)


def train_crop(resolution: int, autoaugment: bool, scale: tuple[float, float] = (0.08, 1.0)
               ) -> Callable[[Image.Image], torch.Tensor]:
    """Random-resized crop of ``scale`` of the photo's area + flip (+ AutoAugment): the views of
    every recipe that trains the network."""
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    steps = [T.RandomResizedCrop(resolution, scale=scale, interpolation=bicubic),
             T.RandomHorizontalFlip()]
    if autoaugment:
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=bicubic))
    return T.Compose(steps + [T.ToTensor()])


def test_time_crop(preprocessing: Preprocessing) -> Callable[[Image.Image], torch.Tensor]:
    """The evaluation crop (resize, centre crop): FixRes adapts a model to exactly what it sees
    at test time."""
    from torchvision.transforms import functional as TF

    def crop(picture: Image.Image) -> torch.Tensor:
        return TF.to_tensor(preprocessing.crop(picture))

    return crop


def normalise(batch: torch.Tensor, preprocessing: Preprocessing, resolution: int | None = None
              ) -> torch.Tensor:
    """[0, 1] crops → a model's input: resized to ``resolution`` (antialiased, same region) if
    given, then normalised with the model's mean and std."""
    if resolution is not None and resolution != batch.shape[-1]:
        batch = torch.nn.functional.interpolate(batch, size=(resolution, resolution),
                                                mode="bicubic", align_corners=False,
                                                antialias=True).clamp(0, 1)
    return preprocessing.normalize_tensor(batch)
