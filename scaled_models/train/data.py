"""The photos a model is trained on: any folder of images, searched recursively; labelled when
every photo sits in a folder named by its ImageNet wnid (an ImageFolder such as
``imagenet_sample_1k_half/<wnid>/…`` or ``train/<wnid>/…``). Every photo is decoded by scalecam's
one decoder (``safe_io.images``), and a photo that cannot be decoded is skipped and named,
not fatal.

A model may be fit to more than one folder (``--extra-data``: more photos, labelled or not, that
are never judged on); ``FitPhotos`` is the union, with every photo whose bytes are those of a
photo the model is judged on left out, so no judged photo is fitted under another name.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from PIL import Image

from safe_io.imagenet import class_index_of, is_wnid
from safe_io.images import SUPPORTED_EXTENSIONS, ImageLoadError, check_image_file, load_image

from ..files import file_sha256
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


def find_images(root: Path, mixed: bool = False) -> ImageSet:
    """Every usable image file under ``root`` (recursively, symlinked folders not followed).
    A file whose header cannot be read (a dangling or looping link, a page saved as .jpg) is
    named and left out here, so the count and the fingerprint cover the files used. With
    ``mixed`` (photos only fitted, never judged) photos in wnid folders keep their class and
    the others get -1 (no label); otherwise a mix is refused (``_labels``)."""
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
    if mixed:
        return ImageSet(root, tuple(paths), tuple(
            class_index_of(p.parent.name) if is_wnid(p.parent.name) else -1 for p in paths))
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


def training_images(data: Path, mixed: bool = False) -> ImageSet:
    """``data/train`` when ``data`` holds a ``train/`` split (the ImageNet layout), else every
    image under ``data`` (``mixed``: as ``find_images``)."""
    data = Path(data)
    return find_images(data / "train" if (data / "train").is_dir() else data, mixed)


@dataclass(frozen=True)
class LeftOut:
    """A photo found in a folder to fit on but not fitted, and why: its bytes are those of a
    photo the model is judged on, or of a photo already among those fitted."""

    file: str  # "<folder>/<path in it>"
    same_bytes_as: str  # the judged photo ("<folder>/<path>") or the one fitted instead
    judged: bool  # True: the twin is judged on; False: it is fitted already

    def record(self) -> dict:
        return {"file": self.file, "same_bytes_as": self.same_bytes_as,
                "why": "a photo it is judged on" if self.judged else "fitted already"}


@dataclass(frozen=True)
class FitPhotos:
    """Every photo a model is fit to: the training side of ``--data`` first, then each
    ``--extra-data`` folder in the order given, each less the photos in ``left_out``. Its
    ``paths`` and ``labels`` (-1: none) run over the parts in order, as one dataset."""

    parts: tuple[ImageSet, ...]
    left_out: tuple[LeftOut, ...] = ()

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    @property
    def primary(self) -> ImageSet:
        return self.parts[0]

    @property
    def root(self) -> Path:
        return self.primary.root

    @cached_property  # read per photo by CropDataset
    def paths(self) -> tuple[Path, ...]:
        return tuple(path for part in self.parts for path in part.paths)

    @cached_property
    def labels(self) -> tuple[int, ...]:
        return tuple(label for part in self.parts
                     for label in (part.labels if part.labels is not None else [-1] * len(part)))

    @property
    def fingerprint(self) -> str:
        """``--data``'s fingerprint alone when nothing else is fitted (a run saved before
        ``--extra-data`` existed still resumes), else sha256 over every part's fingerprint."""
        if len(self.parts) == 1:
            return self.primary.fingerprint
        return hashlib.sha256("\n".join(part.fingerprint for part in self.parts).encode()
                              ).hexdigest()

    def record(self) -> dict:
        """The checkpoint's ``data``: ``--data``'s record as before (folder, images fitted,
        fingerprint, labels), then every other folder fitted on, the total, and each photo
        left out with its reason."""
        extra = []
        for part in self.parts[1:]:
            labelled = sum(label >= 0 for label in part.labels) if part.labels else 0
            extra.append({"folder": part.root.name, "path": str(part.root), "images": len(part),
                          "fingerprint": part.fingerprint, "labelled": labelled,
                          "unlabelled": len(part) - labelled})
        return self.primary.record() | {
            "extra": extra, "fit_images": len(self), "fit_fingerprint": self.fingerprint,
            "left_out": [item.record() for item in self.left_out]}

    def words(self) -> str:
        """The photos in a few words, for the run's first line."""
        folders = " and ".join(f"{len(part)} from {part.root}" for part in self.parts)
        left = (f" ({len(self.left_out)} left out: same bytes as a photo judged on or fitted "
                "already)" if self.left_out else "")
        return f"{len(self)} photos: {folders}{left}" if len(self.parts) > 1 \
            else f"{len(self)} photos from {self.root}{left}"


def fit_photos(train: ImageSet, extra: list[ImageSet], judged: tuple[Path, ...],
               judged_root: Path | None) -> FitPhotos:
    """The photos to fit on: ``train`` then each ``extra`` set, with every photo whose sha256
    is that of a judged photo (``judged``, under ``judged_root``) or of a photo already kept
    left out and named. Names are not compared: the same photo under another name or folder
    is still the same bytes. A part left with no photo stops the run."""
    seen = {file_sha256(path): (_named(path, judged_root), True) for path in judged}
    parts, left_out = [], []
    for part in (train, *extra):
        kept = []
        for index, path in enumerate(part.paths):
            digest = file_sha256(path)
            if digest in seen:
                twin, is_judged = seen[digest]
                left_out.append(LeftOut(_named(path, part.root), twin, is_judged))
                print(f"left out {path}: the same bytes as "
                      f"{'the judged photo' if is_judged else 'the fitted photo'} {twin}",
                      file=sys.stderr, flush=True)
                continue
            seen[digest] = (_named(path, part.root), False)
            kept.append(index)
        if not kept:
            raise SystemExit(f"{part.root}: every photo in it is also a photo the model is "
                             "judged on or one fitted already (same bytes); nothing to fit")
        parts.append(part if len(kept) == len(part) else part.subset(kept))
    return FitPhotos(tuple(parts), tuple(left_out))


def _named(path: Path, root: Path | None) -> str:
    """``<folder>/<path in it>``, how a record names a photo."""
    if root is None or not path.is_relative_to(root):
        return str(path)
    return f"{root.name}/{path.relative_to(root).as_posix()}"


def default_eval_dir(data: Path) -> Path | None:
    """A ``train/``+``val/`` layout is evaluated on its ``val/``: the folder itself is returned,
    since safe_io.imagenet_val's readers find ``val/<wnid>/`` under it."""
    return Path(data) if (Path(data) / "val").is_dir() and (Path(data) / "train").is_dir() \
        else None


class CropDataset(torch.utils.data.Dataset):
    """(crop in [0, 1], class or -1) per photo; normalisation is each model's own, on device.
    ``None`` for a photo the decoder refuses (``skip_unreadable`` drops it from the batch)."""

    def __init__(self, images: ImageSet | FitPhotos, crop) -> None:
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
