"""safe_io.images: every bad input becomes a clear ImageLoadError, every good one a loaded upright
RGB image."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, JpegImagePlugin

from cam.engine.inputs import image_from_path
from safe_io.images import (
    DEFAULT_MAX_PIXELS,
    MAX_FILE_BYTES,
    MAX_SIDE,
    SUPPORTED_EXTENSIONS,
    ImageLoadError,
    image_id_for,
    load_image,
    load_thumbnail,
    read_image_file,
)
from safe_io.paths import SAMPLE_IMAGES

from .conftest import REPO, heavy_step_held_elsewhere

SHARED = Path(os.environ.get("SCALECAM_SHARED") or Path(__file__).resolve().parents[2] / "shared")
REAL_JPEG = SHARED / "imagenet_val_sample" / "ILSVRC2012_val_00000001.JPEG"
IO_COUNTERS = Path("/proc/self/io")
BOMB_MESSAGE = ("the image is 14000×12000 pixels (168 megapixels), over the 100-megapixel limit; "
                "refusing to decode it (possible decompression bomb).")
HTML_MESSAGE = ("the file contains HTML/XML text, not image data (perhaps a web page saved with "
                "an image extension).")


def _save(path: Path, image: Image.Image, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def _png_claiming(width: int, height: int) -> bytes:
    """A valid few-byte 1×1 PNG whose IHDR is patched to claim ``width``×``height``."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    return bytes(data)


def _error(source, load=load_image, **kwargs) -> str:
    with pytest.raises(ImageLoadError) as info:
        load(source, **kwargs)
    return str(info.value)


def _rchar() -> int:
    counters = dict(line.split(b": ") for line in IO_COUNTERS.read_bytes().splitlines())
    return int(counters[b"rchar"])


def _error_and_bytes_read(load, path: Path) -> tuple[str, int]:
    """``load(path)``'s ImageLoadError message and the bytes this process read meanwhile. Linux
    counts every read() in /proc/self/io ("rchar"), whichever code path made it: this measures
    the work done, not the time taken."""
    if not IO_COUNTERS.is_file():
        pytest.skip("counting bytes read needs Linux's /proc/self/io")
    before = _rchar()
    message = _error(path, load)
    return message, _rchar() - before


def _sparse(path: Path, head: bytes, size: int) -> Path:
    """``head`` followed by zeros up to ``size`` bytes, as a sparse file: no disk used."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def _jpeg(size=(64, 48), color=(200, 30, 30), **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def _rgb(image: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    assert type(image) is Image.Image and image.mode == "RGB"  # loaded in memory, not a file
    return image.getpixel(xy)


# -- bad inputs --------------------------------------------------------------------------------

def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty photo.jpg"
    path.write_bytes(b"")
    assert _error(path) == f"{path}: the file is empty (0 bytes)."


def test_truncated_jpeg_is_refused(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    message = _error(path)
    assert message.startswith(f"{path}: the JPEG data is truncated") and "incomplete" in message
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_random_bytes_named_jpg(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert _error(path) == (f"{path}: the file is not a recognised image "
                            f"(JPEG, PNG, WebP, BMP, TIFF or GIF).")


def test_html_renamed_png(tmp_path):
    path = tmp_path / "download.png"
    path.write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    assert _error(path) == (f"{path}: the file contains HTML/XML text, not image data (perhaps a "
                            f"web page saved with an image extension).")


def test_plain_text_and_heic_are_named():
    assert "plain text" in _error(b"just some notes\n", name="notes.jpg")
    assert "HEIC/AVIF" in _error(b"\0\0\0\x18ftypheic" + bytes(64), name="IMG_0001.jpg")


def test_decompression_bomb_refused_from_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(30000, 30000))
    assert path.stat().st_size < 100
    message = _error(path)
    assert message.startswith(f"{path}: the image declares 900 megapixels")
    assert "decompression bomb" in message
    assert Image.MAX_IMAGE_PIXELS == 89478485  # Pillow's global left alone


def test_own_pixel_limit_is_checked_before_decoding():
    # 12000×10000 is under Pillow's hard limit, so only our header check stops it.
    message = _error(_png_claiming(12000, 10000), name="big.png")
    assert message == ("big.png: the image is 12000×10000 pixels (120 megapixels), over the "
                       "100-megapixel limit; refusing to decode it (possible decompression bomb).")
    assert DEFAULT_MAX_PIXELS == 100_000_000
    assert "over the 0.001-megapixel limit" in _error(_png_claiming(40, 40), name="x.png",
                                                      max_pixels=1000)


def test_unreadable_paths(tmp_path):
    missing = tmp_path / "missing.jpg"
    assert _error(missing) == f"{missing}: cannot be read (No such file or directory)."
    assert _error(tmp_path) == f"{tmp_path}: it is a folder, not an image file."


@pytest.mark.parametrize("load", [load_image, image_from_path, read_image_file])
def test_huge_file_refused_before_it_is_read(tmp_path, load):
    path = _sparse(tmp_path / "huge.jpg", _jpeg(), 2 << 30)
    message, read = _error_and_bytes_read(load, path)
    assert message == (f"{path}: the file is 2.0 GB, over the 512 MB limit for an image; "
                       f"refusing to read it.")
    assert read < 2**20


@pytest.mark.parametrize("load", [load_image, image_from_path, read_image_file])
@pytest.mark.parametrize("name, head, reason", [
    ("bomb.png", _png_claiming(14000, 12000)[:33] + struct.pack(">I", 64 << 20) + b"IDAT",
     BOMB_MESSAGE),
    ("page.jpg", b"<!DOCTYPE html>\n<html><body>" + b"x" * 4096, HTML_MESSAGE)])
def test_refused_from_the_first_bytes_before_the_rest_is_read(tmp_path, load, name, head, reason):
    # 64 MB after the header: the bomb's declared pixel data, the page's long body.
    path = _sparse(tmp_path / name, head, 64 << 20)
    message, read = _error_and_bytes_read(load, path)
    assert message == f"{path}: {reason}"
    assert read < 2**20


def test_file_size_limit_is_inclusive_and_above_any_8_bit_image_at_the_pixel_limit(tmp_path):
    data = _jpeg()
    path = _save(tmp_path / "ok.jpg", Image.open(io.BytesIO(data)))
    size = path.stat().st_size
    assert read_image_file(path, max_bytes=size) == path.read_bytes()
    assert "limit for an image; refusing to read it." in _error(path, read_image_file,
                                                                max_bytes=size - 1)
    assert MAX_FILE_BYTES >= DEFAULT_MAX_PIXELS * 4  # 8-bit RGBA, stored uncompressed


def test_device_behind_an_image_name_is_refused(tmp_path):
    path = tmp_path / "null.jpg"
    path.symlink_to(os.devnull)
    assert _error(path) == f"{path}: it is a device, not a regular file; refusing to read it."


def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    stop = threading.Event()

    def write_an_image_once_someone_reads():  # so a reader that waits for a writer returns
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader yet
                stop.wait(0.001)
                continue
            try:
                os.write(fd, _png_claiming(1, 1))
            except BrokenPipeError:
                pass
            os.close(fd)
            return

    writer = threading.Thread(target=write_an_image_once_someone_reads, daemon=True)
    writer.start()
    try:
        assert _error(path) == (f"{path}: it is a named pipe (FIFO), not a regular file; "
                                f"refusing to read it.")
    finally:
        stop.set()
        writer.join()


def test_read_image_file_returns_the_bytes(tmp_path):
    path = _save(tmp_path / "ok.png", Image.new("RGB", (3, 2), (1, 2, 3)))
    assert read_image_file(path) == path.read_bytes()
    assert _error(path, read_image_file, name="shown.png",
                  max_pixels=5).startswith("shown.png: the image is 3×2 pixels")


def test_bytes_without_a_name_are_called_uploaded_image():
    assert _error(b"") == "uploaded image: the file is empty (0 bytes)."


# -- good inputs -------------------------------------------------------------------------------

def test_tiny_image_kept_as_is(tmp_path):
    image = load_image(_save(tmp_path / "tiny.png", Image.new("RGB", (8, 8), (10, 20, 30))))
    assert image.size == (8, 8) and _rgb(image, (7, 7)) == (10, 20, 30)


def test_very_large_jpeg_is_downscaled(tmp_path):
    path = _save(tmp_path / "huge.jpg", Image.new("RGB", (6000, 4000), (0, 90, 200)), quality=50)
    image = load_image(path)
    assert image.size == (MAX_SIDE, 2731)
    assert np.abs(np.subtract(_rgb(image, (100, 100)), (0, 90, 200))).max() <= 3


def test_grayscale_becomes_rgb(tmp_path):
    image = load_image(_save(tmp_path / "gray.png", Image.new("L", (5, 5), 77)))
    assert _rgb(image) == (77, 77, 77)


def test_palette_transparency_composited_over_white(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    image = load_image(_save(tmp_path / "pal.png", img, transparency=0))
    assert _rgb(image, (0, 0)) == (255, 255, 255) and _rgb(image, (1, 1)) == (255, 0, 0)


def test_rgb_transparent_colour_composited_over_white(tmp_path):
    img = Image.new("RGB", (2, 1), (10, 20, 30))
    img.putpixel((1, 0), (1, 2, 3))
    image = load_image(_save(tmp_path / "trns.png", img, transparency=(1, 2, 3)))
    assert _rgb(image, (0, 0)) == (10, 20, 30) and _rgb(image, (1, 0)) == (255, 255, 255)


@pytest.mark.parametrize("mode, opaque, clear", [("LA", (90, 255), (0, 0)),
                                                 ("RGBA", (255, 0, 0, 128), (0, 0, 255, 0))])
def test_alpha_composited_over_white(tmp_path, mode, opaque, clear):
    img = Image.new(mode, (2, 1), clear)
    img.putpixel((0, 0), opaque)
    image = load_image(_save(tmp_path / f"{mode}.png", img))
    assert _rgb(image, (1, 0)) == (255, 255, 255)
    assert _rgb(image, (0, 0)) == ((90, 90, 90) if mode == "LA" else (255, 127, 127))


def test_cmyk_jpeg(tmp_path):
    image = load_image(_save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), (255, 0, 0, 0))))
    assert np.abs(np.subtract(_rgb(image, (8, 8)), (0, 255, 255))).max() <= 3  # cyan


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)[None].repeat(4, 0)
    path = _save(tmp_path / "deep.png", Image.fromarray(ramp))
    assert Image.open(path).mode.startswith("I")
    row = np.asarray(load_image(path))[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) == 256  # ordering kept: every level distinct, nothing clipped


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = _save(tmp_path / "anim.gif", frames[0], save_all=True, append_images=frames[1:])
    assert Image.open(path).n_frames == 2
    assert _rgb(load_image(path)) == (255, 0, 0)


def test_multipage_tiff_first_page(tmp_path):
    pages = [Image.new("RGB", (6, 6), c) for c in ((0, 200, 0), (0, 0, 200))]
    path = _save(tmp_path / "pages.tiff", pages[0], save_all=True, append_images=pages[1:])
    assert Image.open(path).n_frames == 2
    assert _rgb(load_image(path)) == (0, 200, 0)


@pytest.mark.parametrize("load, stored, shown", [(load_image, (40, 20), (20, 40)),
                                                 (load_thumbnail, (600, 300), (128, 256))])
def test_exif_orientation_applied(tmp_path, load, stored, shown):
    width, height = stored
    img = Image.new("RGB", stored, (255, 0, 0))
    img.paste((0, 0, 255), (width // 2, 0, width, height))  # stored: left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image = load(_save(tmp_path / "phone.jpg", img, exif=exif, quality=95))
    assert image.size == shown
    x = shown[0] // 2
    top, bottom = _rgb(image, (x, shown[1] // 8)), _rgb(image, (x, shown[1] * 7 // 8))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # left side is now on top


def test_unicode_and_space_filenames(tmp_path):
    path = _save(tmp_path / "café photo ü 画像.png", Image.new("RGB", (3, 3), (1, 2, 3)))
    assert _rgb(load_image(path)) == (1, 2, 3)
    bad = tmp_path / "défaut 壊れた.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    assert _error(bad).startswith(f"{bad}: ")


def test_bytes_source_and_name():
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (9, 9, 9)).save(buf, "WEBP", lossless=True)
    assert load_image(buf.getvalue(), name="up.webp").size == (4, 3)
    assert _error(b"\xff\xd8\xff\xe0garbage", name="up.jpg").startswith("up.jpg: ")


def test_image_id_is_sha256_and_extensions():
    assert image_id_for(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert image_id_for(b"abc") != image_id_for(b"abd")
    assert set(SUPPORTED_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff",
                                         ".gif"}


def test_real_val_jpeg():
    if not REAL_JPEG.is_file():
        pytest.skip(f"shared ImageNet sample not found at {REAL_JPEG.parent}")
    assert load_image(REAL_JPEG).size == (500, 375)


# -- thumbnails --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_photo(tmp_path_factory) -> Path:
    """A real 6000×4000 (24-megapixel) JPEG: a bundled photo blown up."""
    photo = Image.open(SAMPLE_IMAGES / "rocket.jpg").convert("RGB")
    return _save(tmp_path_factory.mktemp("big") / "big photo.jpg",
                 photo.resize((6000, 4000), Image.Resampling.BILINEAR), quality=85)


def test_thumbnail_of_a_big_jpeg_is_decoded_at_reduced_scale(big_photo, monkeypatch):
    decoded = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(self, mode, size):
        result = real_draft(self, mode, size)
        decoded.append(self.size)  # what libjpeg will decode, before any resize
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)
    thumb = load_thumbnail(big_photo)
    assert decoded == [(750, 500)]  # 1/8 scale: 0.4 instead of 24 megapixels decoded
    assert thumb.size == (256, 171) and thumb.mode == "RGB"
    source = Image.open(SAMPLE_IMAGES / "rocket.jpg").convert("RGB").resize(thumb.size)
    assert np.abs(np.asarray(thumb, float) - np.asarray(source, float)).mean() < 8  # same picture
    assert max(load_thumbnail(big_photo, max_side=64).size) == 64


def test_thumbnail_of_a_small_image_is_not_enlarged():
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buf, "PNG")
    thumb = load_thumbnail(buf.getvalue(), name="up.png")
    assert thumb.size == (8, 6) and _rgb(thumb) == (10, 20, 30)


@pytest.mark.parametrize("name, content, reason", [
    ("big.png", _png_claiming(14000, 12000), BOMB_MESSAGE),  # under Pillow's hard limit
    ("bomb.png", _png_claiming(30000, 30000), "the image declares 900 megapixels"),  # over it
    ("download.jpg", b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n", HTML_MESSAGE),
    ("empty.jpg", b"", "the file is empty (0 bytes)."),
    ("cut.jpg", _jpeg()[:300], "the JPEG data is truncated")])
def test_thumbnail_refuses_exactly_what_load_image_refuses(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    for source in (path, content):
        message = _error(source, load_image, name=name)
        assert message.startswith(f"{name}: {reason}")
        assert _error(source, load_thumbnail, name=name) == message
    assert _error(path, load_thumbnail) == _error(path) and str(path) in _error(path)


# -- fuzzing: nothing but ImageLoadError may escape ----------------------------------------------
# A small pixel limit keeps mutated headers that claim e.g. 9000×9000 from making examples slow;
# the limit check itself is covered above. Pillow warns about the corrupt EXIF it meets.
FUZZ_LIMIT = 4_000_000
MAGICS = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"II*\x00", b"RIFF"]


def _load_or_refuse(data: bytes) -> None:
    try:
        image = load_image(data, name="fuzz.jpg", max_pixels=FUZZ_LIMIT)
    except ImageLoadError as exc:
        assert str(exc).startswith("fuzz.jpg: ")
    else:
        assert image.mode == "RGB"


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_fuzz_random_bytes(magic, tail):
    _load_or_refuse(magic + tail)


@pytest.fixture(scope="module")
def real_jpeg() -> bytes:
    if not REAL_JPEG.is_file():
        pytest.skip(f"shared ImageNet sample not found at {REAL_JPEG.parent}")
    return REAL_JPEG.read_bytes()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=16),
       st.one_of(st.just(1.0), st.floats(0.0, 1.0)))
def test_fuzz_mutated_real_jpeg(real_jpeg, edits, keep):
    data = bytearray(real_jpeg)
    for where, value in edits:  # positions biased to the header, where parsers branch most
        data[int(where ** 3 * len(data))] = value
    _load_or_refuse(bytes(data[: max(1, int(keep * len(data)))]))


def test_a_huge_transparent_png_is_decoded_in_bounded_memory(tmp_path):
    """A 6000×6000 RGBA PNG (144 MB decoded, a few KB on disk): shrunk right after decoding,
    so the peak is near the decoded size rather than several full-size copies (transposed,
    converted, composited on white: about 7×). Measured in a fresh process by its peak RSS."""
    path = tmp_path / "huge.png"
    picture = Image.new("RGBA", (6000, 6000), (0, 255, 0, 0))  # transparent green
    picture.paste((255, 0, 0, 255), (0, 0, 3000, 6000))  # opaque red left half
    picture.save(path, compress_level=1)
    del picture
    script = (
        "import resource, sys\n"
        "from safe_io.images import load_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"image = load_image({str(path)!r})\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(image.size, image.getpixel((10, 10)), image.getpixel((image.width - 10, 10)),"
        " (after - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    fields = out.stdout.strip()
    assert fields.startswith("(4096, 4096) (255, 0, 0) (255, 255, 255) ")  # red; white, not green
    assert int(fields.rsplit(" ", 1)[1]) < 2.5 * 144, fields  # MB above the interpreter's own


@pytest.mark.parametrize("mode, bands", [("RGBA", 4), ("RGB", 3), ("L", 1), ("LA", 2)])
def test_reducing_in_strips_equals_pillows_reduce(mode, bands):
    from safe_io.images import reduce_in_strips

    pixels = np.random.default_rng(0).integers(0, 256, (1001, 777, bands), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if bands == 1 else pixels, mode)
    for factor in (2, 3, 5):
        assert np.array_equal(np.asarray(reduce_in_strips(image, factor, rows=7)),
                              np.asarray(image.reduce(factor)))


def test_a_huge_decode_holds_the_heavy_step_and_an_ordinary_one_does_not(tmp_path, monkeypatch):
    """One memory-heavy step at a time per process: an image over 16 megapixels is decoded while
    holding ``HEAVY_STEP`` (so a gradient CAM or another huge decode waits for it), an ordinary
    photo without it. Checked from another thread, as a waiting step would see the lock."""
    import safe_io.images as images_module
    seen: list[tuple[tuple[int, int], bool]] = []
    real = images_module._decode

    def watched(img, max_side):
        seen.append((img.size, heavy_step_held_elsewhere()))
        return real(img, max_side)

    monkeypatch.setattr(images_module, "_decode", watched)
    big = tmp_path / "big.png"
    Image.new("L", (4100, 4000)).save(big)  # 16.4 megapixels, a few KB on disk
    assert load_image(big).size == (4096, round(4000 * 4096 / 4100))
    assert load_image(REAL_JPEG).size == Image.open(REAL_JPEG).size
    assert seen == [((4100, 4000), True), (Image.open(REAL_JPEG).size, False)]
    assert not heavy_step_held_elsewhere()  # and it is let go afterwards
