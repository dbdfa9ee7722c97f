"""Safe image decoding: the one place untrusted picture bytes become a PIL image.

The CLI, app uploads and the ImageNet val reader all come through ``load_image`` so every caller
gets the same guarantees: a fully loaded, upright RGB image, or an ``ImageLoadError`` whose message
tells a person which file is bad and why (never a Pillow traceback). Pillow's global switches
(``LOAD_TRUNCATED_IMAGES``, ``MAX_IMAGE_PIXELS``) are left alone; the checks here are local.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS: int = 100_000_000
MAX_SIDE: int = 4096
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff",
                                         ".gif")
# Only these decoders are tried: Pillow's rarer plugins would accept odd bytes as "images" and
# widen the attack surface for uploads. (Phones' multi-picture MPO files open via "JPEG".)
_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"RIFF", "WebP"), (b"BM", "BMP"))
_SUPPORTED_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF"


class ImageLoadError(ValueError):
    """A picture that cannot be used; the message is meant for the user and names the file."""


def image_id_for(data: bytes) -> str:
    """Content hash of the file bytes, so the same picture is cached once whatever its name."""
    return hashlib.sha256(data).hexdigest()


def load_image(source: str | os.PathLike | bytes, *, name: str | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (a path or the file's bytes) into an RGB image, upright per EXIF, first
    frame only, transparency composited over white, longest side at most ``MAX_SIDE``.

    Images declaring more than ``max_pixels`` are refused from their header, before any pixel
    data is decoded, so a few-KB decompression bomb cannot exhaust memory.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, data = name or "uploaded image", bytes(source)
    else:
        label = name or os.fspath(source)
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ImageLoadError(f"{label}: cannot be read ({exc.strerror or exc}).") from None
    if not data:
        raise ImageLoadError(f"{label}: the file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=_FORMATS) as img:
                _check_size(img.size, label, max_pixels)
                return _decode(img)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own hard limit, hit inside open()
        pixels = re.search(r"\d+", str(exc))  # "Image size (N pixels) exceeds limit ..."
        amount = f"{int(pixels[0]) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        raise ImageLoadError(f"{label}: the image declares {amount}, over the safety limit; "
                             f"refusing to decode it (possible decompression bomb).") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{label}: {_describe_unreadable(data)}") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is a bad file, not a crash
        raise ImageLoadError(f"{label}: {_describe_damaged(data, exc)}") from None


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageLoadError(f"{label}: the image has no pixels ({width}×{height}).")
    if width * height > max_pixels:
        raise ImageLoadError(
            f"{label}: the image is {width}×{height} pixels "
            f"({width * height / 1e6:.0f} megapixels), "
            f"over the {max_pixels / 1e6:g}-megapixel limit; refusing to decode it "
            f"(possible decompression bomb).")


def _decode(img: Image.Image) -> Image.Image:
    """Full decode of an already size-checked image (first frame) into upright RGB."""
    width, height = img.size
    if img.format in ("JPEG", "MPO") and max(width, height) > MAX_SIDE:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers MAX_SIDE: far less
        # memory and time for huge photos.
        scale = MAX_SIDE / max(width, height)
        img.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))
    img.load()  # raises on truncated data, since LOAD_TRUNCATED_IMAGES stays False
    img = ImageOps.exif_transpose(img)  # a new image, detached from the file
    img = _to_rgb(img)
    if max(img.size) > MAX_SIDE:
        scale = MAX_SIDE / max(img.size)
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode.startswith("I") or img.mode == "F":
        # High bit depth: rescale to 8 bits instead of letting convert() clip at 255.
        if img.mode.startswith("I;16"):
            top = 65535.0
        else:
            hi = img.getextrema()[1]
            top = 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else float(hi)
        gray = img.convert("F").point(lambda v: v * (255.0 / top) + 0.5).convert("L")
        return gray.convert("RGB")
    has_alpha = "A" in img.mode or "a" in img.mode or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _sniff(data: bytes) -> str | None:
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def _describe_unreadable(data: bytes) -> str:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        return ("the file contains HTML/XML text, not image data (perhaps a web page saved with "
                "an image extension).")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return f"HEIC/AVIF photos are not supported; convert it to {_SUPPORTED_TEXT} first."
    fmt = _sniff(data)
    if fmt:
        return f"it starts like a {fmt} file but is damaged or truncated and cannot be decoded."
    if all(32 <= b < 127 or b in b"\t\r\n" for b in data[:512]):
        return "the file contains plain text, not image data."
    return f"the file is not a recognised image ({_SUPPORTED_TEXT})."


def _describe_damaged(data: bytes, exc: Exception) -> str:
    fmt = _sniff(data) or "image"
    if isinstance(exc, MemoryError):
        return "the image is too large to decode with the memory available."
    detail = str(exc).strip() or type(exc).__name__
    if "truncated" in detail.lower():
        return (f"the {fmt} data is truncated (the file is incomplete, e.g. an interrupted "
                f"download): {detail}.")
    return f"the {fmt} data is damaged and cannot be decoded ({detail})."
