"""The grid as files: pages that print on A4 or Letter, one PNG or several when one would be
too large, a paginated PDF, a zip of every panel, and ``save_figure``, which writes a grid and
its manifest the way ``python -m cam figure`` does."""
from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from pathlib import Path

from PIL import Image

from cam.engine.figure import FigureSpec
from cam.render.grid import GridLayout, Panel, compose_grid, grid_layout, grid_pixels
from cam.render.manifest import manifest
from cam.render.style import RenderStyle
from safe_io.storage import atomic_write, write_json

# Pages that print on both A4 and Letter, landscape.
SHEET_INCHES = (11.0, 8.27)  # the narrower side of A4 and of Letter, landscape: prints on both
MARGIN_INCHES = 0.4
PAGE_INCHES = tuple(side - 2 * MARGIN_INCHES for side in SHEET_INCHES)  # what a page may fill

# A PNG over this many pixels is split into several files: Pillow refuses to open images past
# about 179 megapixels by default, and nobody can look at one anyway.
MAX_PNG_MEGAPIXELS = 60


def grid_pages(spec: FigureSpec, style: RenderStyle) -> list[Image.Image]:
    """The grid split into pages that print on A4 or Letter (landscape) at ``style.dpi``, the
    header repeated on each page; panels shrink to fit the page width when needed."""
    columns = 1 + len(spec.models)
    page_w, page_h = (round(side * style.dpi) for side in PAGE_INCHES)
    fitted = style
    for _ in range(8):  # fonts and margins round to whole pixels: shrink until it fits
        lay = grid_layout(spec, fitted, columns)
        width = lay.column_x(columns) + lay.pad
        if width <= page_w:
            break
        fitted = dataclasses.replace(fitted, panel_inches=fitted.panel_inches * min(
            page_w / width, 1 - 1 / fitted.panel_px))

    def split(lay: GridLayout) -> list:
        rows_per_page = max(1, (page_h - lay.height(0)) // (lay.size + lay.cap_h + lay.pad))
        return [spec.rows[i:i + rows_per_page] for i in range(0, len(spec.rows), rows_per_page)]

    def page_title(number: int, count: int) -> str:
        return spec.title + (f" — page {number} of {count}" if count > 1 else "")

    chunks = split(lay)
    if len(chunks) > 1:  # room for the longer titles that say the page (they may wrap)
        lay = grid_layout(dataclasses.replace(spec, title=page_title(len(chunks), len(chunks))),
                          fitted, columns)
        chunks = split(lay)
    pages = []
    for number, rows in enumerate(chunks or [[]], start=1):
        last = number == len(chunks)
        title = page_title(number, len(chunks))
        page_spec = dataclasses.replace(spec, rows=rows, title=title,
                                        caption=spec.caption if last else "")
        page_layout = lay if last else dataclasses.replace(lay, caption_lines=())
        pages.append(compose_grid(page_spec, fitted, layout=page_layout))
    return pages


def png_is_split(spec: FigureSpec, style: RenderStyle,
                 max_megapixels: float = MAX_PNG_MEGAPIXELS) -> bool:
    """Whether ``png_parts`` gives several images (a zip) rather than one PNG."""
    width, height = grid_pixels(spec, style)
    return width * height > max_megapixels * 1e6 and len(spec.rows) >= 2


def png_parts(spec: FigureSpec, style: RenderStyle,
              max_megapixels: float = MAX_PNG_MEGAPIXELS) -> list[Image.Image]:
    """The grid as one PNG image, or several (rows split, header repeated) when one would
    exceed ``max_megapixels`` (decided before anything is drawn)."""
    if not png_is_split(spec, style, max_megapixels):
        return [compose_grid(spec, style)]
    width, height = grid_pixels(spec, style)
    per_part = max(1, int(max_megapixels * 1e6 * 0.9 // (width * height / len(spec.rows))))
    return [compose_grid(dataclasses.replace(spec, rows=spec.rows[i:i + per_part]), style)
            for i in range(0, len(spec.rows), per_part)]


def png_bytes(image: Image.Image, dpi: int) -> bytes:
    """``image`` as PNG bytes that record ``dpi``, so it prints at the size it was drawn for."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


def png_download(spec: FigureSpec, style: RenderStyle, stem: str) -> bytes:
    """One PNG, or, when ``png_is_split``, a zip of the parts named ``<stem>_1.png``, … : a
    single file to hand over either way (a download)."""
    parts = png_parts(spec, style)
    if len(parts) == 1:
        return png_bytes(parts[0], style.dpi)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number, part in enumerate(parts, start=1):
            archive.writestr(f"{stem}_{number}.png", png_bytes(part, style.dpi))
    return buffer.getvalue()


def pdf_bytes(spec: FigureSpec, style: RenderStyle) -> bytes:
    """The grid as a PDF whose pages each print on A4 or Letter (landscape), header repeated."""
    page_size = tuple(round(side * style.dpi) for side in SHEET_INCHES)
    margin = round(MARGIN_INCHES * style.dpi)
    sheets = []
    for page in grid_pages(spec, style):
        sheet = Image.new("RGB", page_size, "white")
        sheet.paste(page, (margin, margin))
        sheets.append(sheet)
    buffer = io.BytesIO()
    sheets[0].save(buffer, format="PDF", resolution=float(style.dpi), save_all=True,
                   append_images=sheets[1:])
    return buffer.getvalue()


def panels_zip(panels: list[Panel], spec: FigureSpec) -> bytes:
    """One PNG per panel, named row_image_column, for people who lay out their own figure."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for panel in panels:
            image_id = spec.rows[panel.row].image.image_id
            out = io.BytesIO()
            Image.fromarray(panel.pixels).save(out, format="PNG")
            archive.writestr(f"{panel.row:02d}_{_safe(image_id)}_{panel.column}.png",
                             out.getvalue())
    return buffer.getvalue()


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


def save_figure(spec: FigureSpec, style: RenderStyle, out: str | os.PathLike
                ) -> tuple[list[Path], Path]:
    """Write the grid (PNG or paginated PDF, by suffix) and ``<out>.json`` beside it. A PNG too
    large for one file becomes ``<out>``, ``<stem>-2.png``, … (the caller says so). Each file
    is written whole or not at all; a failed write raises ``StorageError`` naming it."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".pdf":
        _write(out, pdf_bytes(spec, style))
        written = [out]
    elif suffix == ".png":
        written = []
        for number, part in enumerate(png_parts(spec, style), start=1):
            path = out if number == 1 else out.with_name(f"{out.stem}-{number}{out.suffix}")
            _write(path, png_bytes(part, style.dpi))
            written.append(path)
    else:
        raise ValueError(f"{out.name}: unsupported format {out.suffix!r}; use .png or .pdf")
    manifest_path = out.with_suffix(".json")
    write_json(manifest_path, manifest(spec, style))
    return written, manifest_path


def _write(path: Path, data: bytes) -> None:
    """``data`` as ``path``, whole or not at all (``StorageError`` names the file if not)."""
    atomic_write(path, lambda p: p.write_bytes(data))
