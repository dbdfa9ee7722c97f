"""Safe image decoding: the one place untrusted picture bytes become a PIL image.

The CLI, app uploads and the ImageNet val reader all come through ``load_image``, and previews
are made with ``load_thumbnail`` (the same checks, decoded small), so every caller gets the same
guarantees: a fully loaded, upright RGB image, or an ``ImageLoadError`` whose message tells a
person which file is bad and why (never a Pillow traceback). Files on disk are read only through
``read_image_file``, which refuses huge files, pipes, devices and folders, non-images and
decompression bombs from ``stat`` and the first bytes, before the rest is read. Pillow's global
switches (``LOAD_TRUNCATED_IMAGES``, ``MAX_IMAGE_PIXELS``) are left alone; the checks here are
local.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from .heavy import HEAVY_STEP

DEFAULT_MAX_PIXELS: int = 100_000_000
# Largest file read from disk. A legitimate image at the 100-megapixel limit is at most ~400 MB
# (8-bit RGBA stored uncompressed, as in TIFF or BMP; 8-bit RGB is 300 MB, a JPEG of it tens of
# MB), so 512 MiB refuses none of those, while a 2 GB "photo" or an endless device is never read
# into memory. Only 16-bit uncompressed images near the pixel limit are refused by it.
MAX_FILE_BYTES: int = 512 * 2**20
MAX_SIDE: int = 4096
# An image declaring more pixels than this is decoded under ``HEAVY_STEP`` (one such decode at
# a time, never beside a gradient CAM): 16 MP of RGBA is 64 MB decoded, and a 100 MP PNG costs
# ~0.7 GB while it is shrunk. Ordinary photos (12 MP JPEGs decode at reduced scale) do not wait.
HEAVY_DECODE_PIXELS: int = 16_000_000
THUMBNAIL_SIDE: int = 256
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff",
                                         ".gif")
# Only these decoders are tried: Pillow's rarer plugins would accept odd bytes as "images" and
# widen the attack surface for uploads. (Phones' multi-picture MPO files open via "JPEG".)
_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
# Covers every start of file that Pillow accepts for _FORMATS (TIFF: classic, byte-swapped and
# BigTIFF); a file that starts otherwise is refused from its first bytes without asking Pillow.
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"),
          (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II\x00*", "TIFF"), (b"MM*\x00", "TIFF"),
          (b"II+\x00", "TIFF"), (b"MM\x00+", "TIFF"), (b"RIFF", "WebP"), (b"BM", "BMP"))
_HEAD_BYTES = 512  # what the sniffing and the messages look at
_RESAMPLED_MODES = ("L", "LA", "RGB", "RGBA", "I", "F", "CMYK")
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
    data is decoded, so a few-KB decompression bomb cannot exhaust memory. A path is read with
    ``read_image_file``, so a huge or odd file is refused before it is read.
    """
    return _load(source, name, max_pixels, MAX_SIDE)


def load_thumbnail(source: str | os.PathLike | bytes, *, max_side: int = THUMBNAIL_SIDE,
                   name: str | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """``load_image`` for a preview: the same refusals and messages, but the longest side is at
    most ``max_side``, and a JPEG is decoded at 1/2 to 1/8 scale, so that a page of thumbnails of
    large photos costs little memory and time. (Other formats have no reduced decode in Pillow:
    they are decoded whole, then shrunk.)"""
    return _load(source, name, max_pixels, max_side)


def read_image_file(path: str | os.PathLike, *, name: str | None = None,
                    max_bytes: int = MAX_FILE_BYTES,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """The bytes of the image file at ``path``, read only once it looks safe to read.

    Before reading more than the header it refuses, with ``ImageLoadError`` naming the file
    (``name``, else ``path``): anything but a regular file (a pipe would block, a device could be
    endless), files over ``max_bytes``, files that do not start like a supported image (e.g. a web
    page saved as .jpg) and images whose header declares more than ``max_pixels``. The caller
    still decodes the bytes (``load_image``); this only guarantees that reading them is cheap to
    refuse and bounded.
    """
    label = name or os.fspath(path)
    with _open_regular_file(path, label, max_bytes) as fh:
        with _opened(fh, label, max_pixels):  # reads the header only; no pixel data
            pass
        fh.seek(0)
        data = fh.read(max_bytes + 1)  # bounded even if the file grew since fstat
    if len(data) > max_bytes:
        raise ImageLoadError(_too_big(label, len(data), max_bytes))
    return data


def check_image_file(path: str | os.PathLike, *, name: str | None = None,
                     max_bytes: int = MAX_FILE_BYTES,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse, with ``ImageLoadError``, what ``read_image_file`` would refuse, reading only the
    file's header: a cheap look at every file of a training folder before the folder is counted
    and fingerprinted (a dangling link, a web page saved as .jpg)."""
    label = name or os.fspath(path)
    with _open_regular_file(path, label, max_bytes) as fh:
        with _opened(fh, label, max_pixels):
            pass


def _load(source: str | os.PathLike | bytes, name: str | None, max_pixels: int,
          max_side: int) -> Image.Image:
    if isinstance(source, (bytes, bytearray, memoryview)):
        label, data = name or "uploaded image", bytes(source)
    else:
        label = name or os.fspath(source)
        data = read_image_file(source, name=label, max_pixels=max_pixels)
    with _opened(io.BytesIO(data), label, max_pixels) as img:
        if img.width * img.height <= HEAVY_DECODE_PIXELS:
            return _decode(img, max_side)
        with HEAVY_STEP:
            return _decode(img, max_side)


def _open_regular_file(path: str | os.PathLike, label: str, max_bytes: int) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file of at most ``max_bytes``.

    Checked with ``stat`` before opening (opening a device can have effects) and again on the
    open file, in case the path was swapped in between. O_NONBLOCK keeps the open from waiting
    for a pipe's writer; it changes nothing for a regular file."""
    try:
        _check_file(os.stat(path), label, max_bytes)
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows only
        flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        fh = os.fdopen(os.open(path, flags), "rb")
    except OSError as exc:
        raise ImageLoadError(f"{label}: cannot be read ({exc.strerror or exc}).") from None
    try:
        _check_file(os.fstat(fh.fileno()), label, max_bytes)
    except BaseException:
        fh.close()
        raise
    return fh


def _check_file(info: os.stat_result, label: str, max_bytes: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ImageLoadError(f"{label}: it is a folder, not an image file.")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else
                "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a special file")
        raise ImageLoadError(f"{label}: it is {kind}, not a regular file; refusing to read it.")
    if info.st_size > max_bytes:
        raise ImageLoadError(_too_big(label, info.st_size, max_bytes))


def _too_big(label: str, size: int, max_bytes: int) -> str:
    return (f"{label}: the file is {_size_text(size)}, over the {_size_text(max_bytes)} limit "
            f"for an image; refusing to read it.")


def _size_text(size: int) -> str:
    """Binary units, as file managers show sizes: 2 << 30 -> '2.0 GB', 512 << 20 -> '512 MB'."""
    if size >= 2**30:
        return f"{size / 2**30:.1f} GB"
    if size >= 2**20:
        return f"{size / 2**20:.0f} MB"
    return f"{size / 2**10:.0f} KB" if size >= 2**10 else f"{size} bytes"


@contextmanager
def _opened(fp: BinaryIO, label: str, max_pixels: int) -> Iterator[Image.Image]:
    """The image in ``fp``, size-checked but not decoded: only its first bytes and header have
    been read. Any failure, in here or in the caller's ``with`` body (the decode), becomes an
    ``ImageLoadError`` naming ``label``."""
    head = fp.read(_HEAD_BYTES)
    if not head:
        raise ImageLoadError(f"{label}: the file is empty (0 bytes).")
    if _sniff(head) is None:  # Pillow would refuse it too; no need to read further
        raise ImageLoadError(f"{label}: {_describe_unreadable(head)}")
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp, formats=_FORMATS) as img:
                _check_size(img.size, label, max_pixels)
                yield img
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own hard limit, hit inside open()
        pixels = re.search(r"\d+", str(exc))  # "Image size (N pixels) exceeds limit ..."
        amount = f"{int(pixels[0]) / 1e6:.0f} megapixels" if pixels else "too many pixels"
        raise ImageLoadError(f"{label}: the image declares {amount}, over the safety limit; "
                             f"refusing to decode it (possible decompression bomb).") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{label}: {_describe_unreadable(head)}") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is a bad file, not a crash
        raise ImageLoadError(f"{label}: {_describe_damaged(head, exc)}") from None


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


def _decode(img: Image.Image, max_side: int) -> Image.Image:
    """Decode of an already size-checked image (first frame) into upright RGB, longest side at
    most ``max_side``."""
    width, height = img.size
    if img.format in ("JPEG", "MPO") and max(width, height) > max_side:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers max_side: far less
        # memory and time for huge photos.
        scale = max_side / max(width, height)
        img.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))
    img.load()  # raises on truncated data, since LOAD_TRUNCATED_IMAGES stays False
    if max(img.size) > max_side:
        # Shrink right after decoding, before any full-size copy (transposing, converting,
        # compositing on white): a 10000×9999 RGBA PNG took 2.8 GB, now about the decoded
        # 400 MB and the shrunk copy. Pillow's resampling weighs colour by alpha.
        if img.mode.startswith("I;16"):
            img = img.convert("I")  # keeps the 16-bit values that _to_rgb rescales
        elif img.mode not in _RESAMPLED_MODES:  # palette and 1-bit images
            img = img.convert("RGBA" if _has_alpha(img) else "RGB")
        factor = max(img.size) // max_side
        if factor > 1:
            img = reduce_in_strips(img, factor)
        scale = max_side / max(img.size)
        new_size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    img = ImageOps.exif_transpose(img)  # a new image, detached from the file
    return _to_rgb(img)


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
    if not _has_alpha(img):
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def reduce_in_strips(img: Image.Image, factor: int, rows: int = 256) -> Image.Image:
    """``img.reduce(factor)``, computed band by band: Pillow premultiplies a whole RGBA image
    by alpha into a second full-size copy before reducing it (+400 MB at 10000×10000); bands
    of ``rows × factor`` rows need that copy for one band only. Box averages never cross a band
    boundary, so the result is identical."""
    out = Image.new(img.mode, (-(-img.width // factor), -(-img.height // factor)))
    step = rows * factor
    for top in range(0, img.height, step):
        band = img.crop((0, top, img.width, min(img.height, top + step)))
        out.paste(band.reduce(factor), (0, top // factor))
    return out


def _has_alpha(img: Image.Image) -> bool:
    return "A" in img.mode or "a" in img.mode or "transparency" in img.info


def _sniff(data: bytes) -> str | None:
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def _describe_unreadable(data: bytes) -> str:
    head = data[:_HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        return ("the file contains HTML/XML text, not image data (perhaps a web page saved with "
                "an image extension).")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return f"HEIC/AVIF photos are not supported; convert it to {_SUPPORTED_TEXT} first."
    fmt = _sniff(data)
    if fmt:
        return f"it starts like a {fmt} file but is damaged or truncated and cannot be decoded."
    if all(32 <= b < 127 or b in b"\t\r\n" for b in data[:_HEAD_BYTES]):
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
