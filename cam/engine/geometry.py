"""Where each model looked, in the photo's pixels: the one place crop and region geometry lives.

Models of one grid see different squares of a photo (224 px at crop 0.875, 300 px at 0.9375,
448 …). A row of the grid, and every metric, uses one *common region* — the intersection of the
models' crops — and each map is resampled from the model's own crop into it, so a hot spot sits
where that model actually looked and every model is judged on the same pixels and boxes.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from cam.engine.inputs import CamImage
from safe_io.imagenet_val import Box
from scaled_models.preprocessing import CropBox
from scaled_models.zoo import LoadedModel


def common_region(boxes: Sequence[CropBox], width: int, height: int) -> CropBox:
    """Intersection of the models' crops (all centred, so the smallest one), inside the image;
    the centred square of the shorter side when no model is given."""
    if not boxes:
        side = min(width, height)
        return ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
    x0 = max(max(b[0] for b in boxes), 0.0)
    y0 = max(max(b[1] for b in boxes), 0.0)
    x1 = min(min(b[2] for b in boxes), float(width))
    y1 = min(min(b[3] for b in boxes), float(height))
    return (x0, y0, x1, y1)


def image_region(image: CamImage, models: Sequence[LoadedModel]) -> CropBox:
    """The common region of ``image`` for the available ``models``."""
    boxes = [m.preprocessing.crop_box(*image.size) for m in models if m.available]
    return common_region(boxes, *image.size)


def map_in_region(raw_map: np.ndarray, crop_box: CropBox, region: CropBox,
                  size: int) -> np.ndarray:
    """A map computed on a model's input crop (``crop_box``, in photo pixels) resampled
    (bilinear) onto a size×size view of ``region`` of the photo.

    Map cell centres sit at (j + 0.5) / w of the model's crop, as in a bilinear upsampling of the
    map to the crop; display pixel centres at (u + 0.5) / size of the region.
    """
    h, w = raw_map.shape
    cx0, cy0, cx1, cy1 = crop_box
    rx0, ry0, rx1, ry1 = region
    sx = (rx1 - rx0) / size * w / (cx1 - cx0)
    sy = (ry1 - ry0) / size * h / (cy1 - cy0)
    tx = (rx0 - cx0) * w / (cx1 - cx0) + 0.5 * sx - 0.5
    ty = (ry0 - cy0) * h / (cy1 - cy0) + 0.5 * sy - 0.5
    matrix = np.float32([[sx, 0, tx], [0, sy, ty]])
    return cv2.warpAffine(raw_map.astype(np.float32), matrix, (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def region_photo(image: CamImage, region: CropBox, size: int) -> np.ndarray:
    """The photo's region as size×size RGB uint8 (bicubic): what every panel of a grid row
    shows, and the ``x_batch`` of ``cam evaluate --save-maps``."""
    crop = image.image.resize((size, size), Image.Resampling.BICUBIC, box=region)
    return np.asarray(crop.convert("RGB"))


def pixel_centres(region: CropBox, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo coordinates (x, y) of the centres of a size×size view of ``region``: the
    (u + 0.5) / size convention ``map_in_region`` samples at, for hover read-outs."""
    x0, y0, x1, y1 = region
    steps = np.arange(size) + 0.5
    return x0 + (x1 - x0) / size * steps, y0 + (y1 - y0) / size * steps


def boxes_in_region(boxes: Sequence[Box], region: CropBox,
                    size: int) -> list[tuple[float, float, float, float]]:
    """Inclusive original-pixel boxes → inclusive boxes on the size×size view of ``region``,
    clipped to it; boxes entirely outside are dropped."""
    rx0, ry0, rx1, ry1 = region
    sx, sy = size / (rx1 - rx0), size / (ry1 - ry0)
    out = []
    for b in boxes:
        x1, y1 = (b.x1 - rx0) * sx, (b.y1 - ry0) * sy
        x2, y2 = (b.x2 + 1 - rx0) * sx - 1, (b.y2 + 1 - ry0) * sy - 1
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, size - 1.0), min(y2, size - 1.0)
        if x2 >= x1 and y2 >= y1:
            out.append((x1, y1, x2, y2))
    return out
