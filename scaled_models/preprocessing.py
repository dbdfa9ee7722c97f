"""Per-weights preprocessing, with the geometry of the crop kept.

Models of one grid see different resolutions and crops (224, 260, 300, 448 px; crop 0.875 or
0.9375). To place each CAM where that model actually looked, preprocessing returns the crop's box
in the original photo's pixel coordinates alongside the tensor.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE_MEAN = (0.5, 0.5, 0.5)
TF_LITE_STD = (0.5, 0.5, 0.5)

_PIL_INTERPOLATION = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}

CropBox = tuple[float, float, float, float]  # x0, y0, x1, y1 (exclusive), original pixels


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to ``resize_size``, centre-crop ``resolution``, normalise."""

    resolution: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    @classmethod
    def from_crop_pct(cls, resolution: int, crop_pct: float, mean: tuple[float, float, float],
                      std: tuple[float, float, float], interpolation: str = "bicubic"
                      ) -> "Preprocessing":
        return cls(resolution, int(resolution / crop_pct), tuple(mean), tuple(std), interpolation)

    @classmethod
    def of_torchvision(cls, transforms) -> "Preprocessing":
        """A torchvision ``Weights.transforms()`` (``ImageClassification``: resize, centre
        crop, normalise) as this recipe: what the weights were evaluated with."""
        return cls(transforms.crop_size[0], transforms.resize_size[0], tuple(transforms.mean),
                   tuple(transforms.std), transforms.interpolation.value)

    def at_resolution(self, resolution: int) -> "Preprocessing":
        """The same recipe (crop fraction, normalisation) at another input size."""
        if resolution == self.resolution:
            return self
        return Preprocessing.from_crop_pct(resolution, self.crop_pct, self.mean, self.std,
                                           self.interpolation)

    @property
    def crop_pct(self) -> float:
        return self.resolution / self.resize_size

    def as_dict(self) -> dict:
        return asdict(self) | {"crop_pct": round(self.crop_pct, 4)}

    def crop_box(self, width: int, height: int) -> CropBox:
        """The square of the original image that ends up in the model's input."""
        resized_w, resized_h, left, top = self._geometry(width, height)
        sx, sy = resized_w / width, resized_h / height
        return (left / sx, top / sy, (left + self.resolution) / sx, (top + self.resolution) / sy)

    def crop(self, image: Image.Image) -> Image.Image:
        """The RGB crop the model sees, ``resolution`` × ``resolution`` pixels."""
        resized_w, resized_h, left, top = self._geometry(image.width, image.height)
        resized = image.resize((resized_w, resized_h), _PIL_INTERPOLATION[self.interpolation])
        return resized.crop((left, top, left + self.resolution, top + self.resolution))

    def _geometry(self, width: int, height: int) -> tuple[int, int, int, int]:
        # torchvision's Resize(int) rule: the shorter side becomes resize_size, the other is
        # truncated; then CenterCrop's rounding of the offsets.
        if width <= height:
            resized_w, resized_h = self.resize_size, int(self.resize_size * height / width)
        else:
            resized_w, resized_h = int(self.resize_size * width / height), self.resize_size
        left = int(round((resized_w - self.resolution) / 2.0))
        top = int(round((resized_h - self.resolution) / 2.0))
        return resized_w, resized_h, left, top

    def normalize(self, crop: Image.Image) -> torch.Tensor:
        pixels = np.asarray(crop.convert("RGB"), dtype=np.float32) / 255.0
        return self.normalize_tensor(torch.from_numpy(np.ascontiguousarray(
            pixels.transpose(2, 0, 1))))

    def normalize_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (…×3×H×W, any device) → the model's input: minus the mean, over the std
        (the one place this family's normalisation is applied)."""
        mean = torch.tensor(self.mean, dtype=batch.dtype, device=batch.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=batch.dtype, device=batch.device).view(3, 1, 1)
        return (batch - mean) / std

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """3×R×R float tensor, normalised."""
        return self.normalize(self.crop(image))

