"""Figure 7 rendering: overlays, the models-by-images grid, PNG/PDF export and the manifest.

Each row shows one image's common region (``geometry``), the original first, then each model's
map resampled from that model's own crop, so a hot spot sits where that model actually looked.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from safe_io.imagenet import class_label
from scaled_models.preprocessing import CropBox
from scaled_models.zoo import LoadedModel

from .engine import CamResult
from .geometry import boxes_in_region, image_region, map_in_region
from .inputs import CamImage
from .methods import METHODS
from .metrics import minmax
from .targets import Target

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA, "hot": cv2.COLORMAP_HOT,
    "parula": cv2.COLORMAP_PARULA, "plasma": cv2.COLORMAP_PLASMA,
}
NORMALISATIONS = ("per-map", "shared")
PAPER_CAPTION = ("Figure 7. Class Activation Map (CAM) for models with different scaling methods. "
                 "Our compound scaling method allows the scaled model (last column) to focus on "
                 "more relevant regions with more object details.")
_GOOD, _BAD, _INK, _MUTED = (22, 128, 50), (200, 30, 30), (20, 20, 20), (110, 110, 110)


EXPORT_DPIS = (100, 150, 200, 300, 600)  # what the app offers; the CLI takes any in DPI_RANGE
DPI_RANGE = (50, 600)  # a 600 DPI grid is already 960 px a panel; more only costs memory


@dataclass(frozen=True)
class RenderStyle:
    """How maps are drawn; changing it never needs the models again. The defaults are the
    CLI's and the app's."""

    colormap: str = "jet"  # the paper's
    alpha: float = 0.5
    normalisation: str = "per-map"  # the paper normalises each map on its own
    show_boxes: bool = False
    dpi: int = 300  # print quality
    panel_inches: float = 1.6

    @property
    def panel_px(self) -> int:
        return max(64, round(self.panel_inches * self.dpi))


@dataclass
class FigureRow:
    image: CamImage
    results: dict[str, CamResult]  # by model key


@dataclass
class FigureSpec:
    """Everything one grid shows; also what the manifest records."""

    models: list[LoadedModel]
    rows: list[FigureRow]
    method: str
    target: Target
    family: str
    title: str = ""
    caption: str = ""


def normalise(maps: list[np.ndarray], mode: str = "per-map") -> list[np.ndarray]:
    """Min-max to [0, 1], each map on its own (paper) or on one scale across the row's maps."""
    if mode not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}")
    if mode == "shared" and maps:
        lo = min(float(m.min()) for m in maps)
        hi = max(float(m.max()) for m in maps)
        return [(m - lo) / (hi - lo) if hi > lo else np.zeros_like(m) for m in maps]
    return [minmax(m) for m in maps]


def colorscale(colormap: str, steps: int = 16) -> list[tuple[float, str]]:
    """The colormap as a plotly colorscale sampled from the same OpenCV lookup table, so an
    interactive chart shows exactly the colours of the grid."""
    ramp = np.linspace(0, 1, steps)
    colours = colorize(ramp[None, :], colormap)[0]
    return [(float(t), f"rgb({r},{g},{b})") for t, (r, g, b) in zip(ramp, colours)]


def colorize(map01: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """[0, 1] map → RGB uint8 with an OpenCV colormap (JET, as in the paper)."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {', '.join(COLORMAPS)}")
    heat = cv2.applyColorMap(np.uint8(np.clip(map01, 0, 1) * 255), COLORMAPS[colormap])
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)


def overlay(photo: np.ndarray, map01: np.ndarray, colormap: str = "jet",
            alpha: float = 0.5) -> np.ndarray:
    """Blend the colourised map over the photo: alpha is the map's weight."""
    blended = (1 - alpha) * photo.astype(np.float32) + alpha * colorize(map01, colormap)
    return np.uint8(np.clip(blended, 0, 255))


def region_photo(image: CamImage, region: CropBox, size: int) -> np.ndarray:
    """The photo's region as size×size RGB (the same region every panel of the row shows)."""
    crop = image.image.resize((size, size), Image.Resampling.BICUBIC, box=region)
    return np.asarray(crop.convert("RGB"))


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib, so every machine has it) for ✓/✗ and labels; its
    monospaced cut for commands. Found without importing matplotlib (the first grid waits)."""
    import importlib.util

    name = ("DejaVuSansMono.ttf" if mono else
            "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    package = Path(importlib.util.find_spec("matplotlib").origin).parent
    path = package / "mpl-data" / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), size)


@dataclass
class Panel:
    """One cell of the grid: an RGB square plus its caption."""

    row: int
    column: str  # 'original' or a model key
    pixels: np.ndarray
    caption: str
    caption_color: tuple[int, int, int] = _INK


def render_panels(spec: FigureSpec, style: RenderStyle) -> list[Panel]:
    """Every panel of the grid that shows a picture, row by row: the original first, then each
    available model's map in paper order (an unavailable model's column is drawn once, by
    ``compose_grid``)."""
    size = style.panel_px
    panels: list[Panel] = []
    for r, row in enumerate(spec.rows):
        region = image_region(row.image, spec.models)
        photo = region_photo(row.image, region, size)
        original = photo.copy()
        boxes = boxes_in_region(row.image.boxes, region, size) if style.show_boxes else []
        if boxes:
            original = _draw_boxes(original, boxes, size)
        gt = row.image.gt_class
        panels.append(Panel(r, "original", original,
                            f"GT: {class_label(gt)}" if gt is not None else "", _MUTED))
        shown = [m for m in spec.models if m.key in row.results]
        maps = normalise([map_in_region(row.results[m.key].raw_map, row.results[m.key].crop_box,
                                        region, size) for m in shown], style.normalisation)
        for model, map01 in zip(shown, maps):
            pixels = overlay(photo, map01, style.colormap, style.alpha)
            if boxes:
                pixels = _draw_boxes(pixels, boxes, size)
            panels.append(Panel(r, model.key, pixels, *_caption(row.results[model.key], gt)))
    return panels


LOW_CONFIDENCE_MARK = "(low)"


def _caption(result: CamResult, gt: int | None) -> tuple[str, tuple[int, int, int]]:
    """Prediction and probability, ✓/✗ against the label, and a mark on a prediction nobody
    should trust (top-1 probability below ``LOW_CONFIDENCE``)."""
    text = f"{class_label(result.pred_class)} {result.pred_prob:.0%}"
    if result.low_confidence:
        text += f" {LOW_CONFIDENCE_MARK}"
    if gt is None:
        return text, _MUTED if result.low_confidence else _INK
    return (f"✓ {text}", _GOOD) if result.pred_class == gt else (f"✗ {text}", _BAD)


def _draw_boxes(pixels: np.ndarray, boxes: list[tuple[float, ...]], size: int) -> np.ndarray:
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    width = max(2, size // 90)
    for box in boxes:  # inclusive pixel boxes, as ImageDraw expects
        draw.rectangle(box, outline=(255, 255, 255), width=width + 2)
        draw.rectangle(box, outline=(0, 200, 0), width=width)
    return np.asarray(canvas)


def _unavailable_column(width: int, height: int, model: LoadedModel) -> Image.Image:
    """One grey panel for a whole unavailable column: why, and the command that fills it. The
    text shrinks until all of it fits (a one-row panel is short), so the command is never cut."""
    prov = model.provenance
    canvas = Image.new("RGB", (width, height), (236, 236, 236))
    draw = ImageDraw.Draw(canvas)
    scale = 1.0
    while True:
        lines = _unavailable_lines(prov, width, scale)
        line_h = [round(f.size * 1.3) for _, f, _ in lines]
        if sum(line_h) + width // 12 <= height or scale < 0.3:
            break
        scale *= 0.85
    y = max(width // 12 if scale == 1.0 else width // 24, (height - sum(line_h)) // 3)
    for (text, fnt, colour), h in zip(lines, line_h):
        draw.text((width / 2, y), text, fill=colour, anchor="mt", font=fnt)
        y += h
    return canvas


def _unavailable_lines(prov, width: int, scale: float) -> list[tuple]:
    """(text, font, colour) of an unavailable panel: wrapped at the usual font sizes, drawn
    ``scale`` times smaller (so shrinking never rewraps the text)."""
    sizes = {"title": max(10, width // 10), "body": max(9, width // 15),
             "mono": max(8, width // 17)}

    def fonts(factor: float) -> dict:
        return {"title": font(max(6, round(sizes["title"] * factor)), bold=True),
                "body": font(max(6, round(sizes["body"] * factor))),
                "mono": font(max(6, round(sizes["mono"] * factor)), mono=True)}

    wrap, draw = fonts(1.0), fonts(scale)
    lines = [("unavailable", "title", _BAD)]
    lines += [(t, "body", _MUTED) for t in _wrap_words(prov.unavailable_reason or "",
                                                       wrap["body"], width * 0.9)]
    if prov.make_available:
        lines += [("", "body", _MUTED), ("To make it:", "body", _INK)]
        lines += [(t, "mono", _INK) for t in _wrap_words(prov.make_available, wrap["mono"],
                                                         width * 0.9)]
    return [(text, draw[kind], colour) for text, kind, colour in lines]


def header_lines(model: LoadedModel) -> list[str]:
    """Column header: label; Table 7's cost, measured beside the paper's, at Table 7's
    resolution; what the weights are; and what actually runs (its resolution and MACs)."""
    prov, spec = model.provenance, model.spec
    lines = [spec.short_label, f"Table 7 at {spec.paper_resolution} px:",
             f"{model.macs / 1e9:.2f}G MACs (paper {spec.paper_flops})"]
    if not prov.available:
        return lines + ["UNAVAILABLE"]
    lines += [prov.headline, f"runs: {prov.resolution} px, {model.run_macs / 1e9:.2f}G MACs"]
    return lines + ([prov.judged.short()] if prov.judged else [])


@dataclass(frozen=True)
class _Layout:
    """Pixel geometry of one grid image."""

    size: int
    pad: int
    label_w: int
    title_h: int
    head_h: int
    cap_h: int
    caption_lines: tuple[str, ...]
    caption_line_h: int

    def column_x(self, column: int) -> int:
        return self.label_w + column * (self.size + self.pad)

    def row_y(self, row: int) -> int:
        return self.title_h + self.head_h + row * (self.size + self.cap_h + self.pad)

    def height(self, rows: int) -> int:
        caption = len(self.caption_lines) * self.caption_line_h
        return self.row_y(rows) + self.pad + caption + (self.pad if caption else 0)


def _row_labels(row: FigureRow, size: int) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """A row's label lines: its class (bold, wrapped word by word) and its image id."""
    gt = row.image.gt_class
    head_font, id_font = font(max(9, size // 13), bold=True), font(max(8, size // 14))
    lines = [(word, head_font) for word in (class_label(gt).split() if gt is not None else [])]
    return lines + [(row.image.image_id.removeprefix("ILSVRC2012_"), id_font)]


def _layout(spec: FigureSpec, style: RenderStyle, columns: int) -> _Layout:
    size = style.panel_px
    pad = max(4, size // 40)
    # The label column is as wide as its longest line (so no label is cut), within bounds; a
    # class name wraps at spaces, and a line still too long is shortened with an ellipsis.
    longest = max((fnt.getlength(text) for row in spec.rows
                   for text, fnt in _row_labels(row, size)), default=0)
    label_w = int(min(max(size * 0.5, longest + 3 * pad), size * 1.2))
    cap_font = font(max(8, size // 14))
    width = label_w + columns * (size + pad) + pad
    caption = tuple(_wrap_words(spec.caption, cap_font, width - 2 * pad))
    return _Layout(size, pad, label_w, round(size * 0.22) if spec.title else 0,
                   round(size * 0.62), round(size * 0.14), caption, round(size * 0.1))


def grid_pixels(spec: FigureSpec, style: RenderStyle) -> tuple[int, int]:
    """(width, height) of ``compose_grid(spec, style)``, without drawing it: what an export will
    cost, to refuse one past a server's limit before any memory is spent."""
    columns = 1 + len(spec.models)
    lay = _layout(spec, style, columns)
    return lay.column_x(columns) + lay.pad, lay.height(len(spec.rows))


def compose_grid(spec: FigureSpec, style: RenderStyle, panels: list[Panel] | None = None,
                 layout: _Layout | None = None) -> Image.Image:
    """The Figure 7 grid: a header row, then one row per image with its label. ``layout``
    fixes the geometry (pages of one grid share it)."""
    panels = render_panels(spec, style) if panels is None else panels
    columns = ["original"] + [m.key for m in spec.models]
    lay = _layout(spec, style, len(columns)) if layout is None else layout
    size, pad = lay.size, lay.pad
    head_font, cap_font = font(max(9, size // 13), bold=True), font(max(8, size // 14))
    width = lay.column_x(len(columns)) + pad
    canvas = Image.new("RGB", (width, lay.height(len(spec.rows))), "white")
    draw = ImageDraw.Draw(canvas)
    if spec.title:
        draw.text((width / 2, lay.title_h / 2), _fit(spec.title, head_font, width - 2 * pad, draw),
                  fill=_INK, anchor="mm", font=head_font)
    headers = [["Original", "input region"]] + [header_lines(m) for m in spec.models]
    # the models' header lines share one spacing, so that the same line aligns across columns
    slots = max(len(lines) for lines in headers[1:]) if spec.models else 0
    for c, lines in enumerate(headers):
        x = lay.column_x(c) + size / 2
        spacing = lay.head_h / ((len(lines) if c == 0 else slots) + 0.4)
        for i, text in enumerate(lines):
            colour = _BAD if text == "UNAVAILABLE" else (_INK if i == 0 else _MUTED)
            fnt = head_font if i == 0 else cap_font
            draw.text((x, lay.title_h + (i + 0.6) * spacing),
                      _fit(text, fnt, size + pad, draw), fill=colour, anchor="mm", font=fnt)
    for c, model in enumerate(spec.models, start=1):
        if not model.available and spec.rows:
            top = lay.row_y(0)
            column_h = lay.row_y(len(spec.rows)) - pad - top
            canvas.paste(_unavailable_column(size, column_h, model), (lay.column_x(c), top))
    for panel in panels:
        x, y = lay.column_x(columns.index(panel.column)), lay.row_y(panel.row)
        canvas.paste(Image.fromarray(panel.pixels), (x, y))
        draw.text((x + size / 2, y + size + lay.cap_h / 2), _fit(panel.caption, cap_font, size,
                                                                draw),
                  fill=panel.caption_color, anchor="mm", font=cap_font)
    for r, row in enumerate(spec.rows):
        lines = _joined_label_lines(_row_labels(row, size), lay.label_w - 2 * pad)
        y = lay.row_y(r) + size / 2 - (len(lines) - 1) * size / 16
        for text, fnt in lines:
            colour = _INK if fnt is head_font else _MUTED
            draw.text((lay.label_w - pad, y), _fit(text, fnt, lay.label_w - 2 * pad, draw),
                      fill=colour, anchor="rm", font=fnt)
            y += size / 8
    y = lay.height(len(spec.rows)) - pad - len(lay.caption_lines) * lay.caption_line_h
    for text in lay.caption_lines:
        draw.text((pad, y), text, fill=_MUTED, font=cap_font)
        y += lay.caption_line_h
    return canvas


def _joined_label_lines(words: list[tuple[str, ImageFont.FreeTypeFont]], width: float
                        ) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """Words of the same font joined into lines of at most ``width`` pixels."""
    lines: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for word, fnt in words:
        if lines and lines[-1][1] is fnt and fnt.getlength(f"{lines[-1][0]} {word}") <= width:
            lines[-1] = (f"{lines[-1][0]} {word}", fnt)
        else:
            lines.append((word, fnt))
    return lines


# Pages that print on both A4 and Letter, landscape.
SHEET_INCHES = (11.0, 8.27)  # the narrower side of A4 and of Letter, landscape: prints on both
MARGIN_INCHES = 0.4
PAGE_INCHES = tuple(side - 2 * MARGIN_INCHES for side in SHEET_INCHES)  # what a page may fill


def grid_pages(spec: FigureSpec, style: RenderStyle) -> list[Image.Image]:
    """The grid split into pages that print on A4 or Letter (landscape) at ``style.dpi``, the
    header repeated on each page; panels shrink to fit the page width when needed."""
    columns = 1 + len(spec.models)
    page_w, page_h = (round(side * style.dpi) for side in PAGE_INCHES)
    fitted = style
    for _ in range(8):  # fonts and margins round to whole pixels: shrink until it fits
        lay = _layout(spec, fitted, columns)
        width = lay.column_x(columns) + lay.pad
        if width <= page_w:
            break
        fitted = dataclasses.replace(fitted, panel_inches=fitted.panel_inches * min(
            page_w / width, 1 - 1 / fitted.panel_px))
    rows_per_page = max(1, (page_h - lay.height(0)) // (lay.size + lay.cap_h + lay.pad))
    chunks = [spec.rows[i:i + rows_per_page] for i in range(0, len(spec.rows), rows_per_page)]
    pages = []
    for number, rows in enumerate(chunks or [[]], start=1):
        last = number == len(chunks)
        title = spec.title + (f" — page {number} of {len(chunks)}" if len(chunks) > 1 else "")
        page_spec = dataclasses.replace(spec, rows=rows, title=title,
                                        caption=spec.caption if last else "")
        page_layout = lay if last else dataclasses.replace(lay, caption_lines=())
        pages.append(compose_grid(page_spec, fitted, layout=page_layout))
    return pages


def _break_long(words: list[str], fnt: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Split words wider than a line (file paths) at '/' or, failing that, anywhere."""
    out = []
    for word in words:
        while fnt.getlength(word) > width:
            cut = max(i for i in range(1, len(word)) if fnt.getlength(word[:i]) <= width)
            slash = word.rfind("/", 0, cut)
            cut = slash + 1 if slash > 0 else cut
            out.append(word[:cut])
            word = word[cut:]
        out.append(word)
    return out


def _fit(text: str, fnt: ImageFont.FreeTypeFont, width: float, draw: ImageDraw.ImageDraw) -> str:
    while text and draw.textlength(text, font=fnt) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def _wrap_words(text: str, fnt: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Lines of at most ``width`` pixels; words longer than a line (paths, commands) are split."""
    lines, line = [], ""
    for word in _break_long(text.split(), fnt, width * 0.96):
        trial = f"{line} {word}".strip()
        if fnt.getlength(trial) > width * 0.96 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


# A PNG over this many pixels is split into several files: Pillow refuses to open images past
# about 179 megapixels by default, and nobody can look at one anyway.
MAX_PNG_MEGAPIXELS = 60


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
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
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


def manifest(spec: FigureSpec, style: RenderStyle) -> dict:
    """Everything needed to reproduce the figure: models and weights, method, targets, images."""
    return {
        "scalecam_figure": 1,
        "family": spec.family,
        "method": spec.method,
        "method_label": METHODS[spec.method].label,
        "method_reference": METHODS[spec.method].reference,
        "target": {"mode": spec.target.mode.value, "class_index": spec.target.class_index,
                   "label": spec.target.label},
        "style": {"colormap": style.colormap, "alpha": style.alpha,
                  "normalisation": style.normalisation, "show_boxes": style.show_boxes,
                  "dpi": style.dpi, "panel_px": style.panel_px},
        "models": [m.summary() | {"preprocessing": m.provenance.preprocessing}
                   for m in spec.models],
        "images": [_image_record(row, spec) for row in spec.rows],
    }


def _image_record(row: FigureRow, spec: FigureSpec) -> dict:
    image = row.image
    record = {"image_id": image.image_id, "sha256": image.key, "source": image.source,
              "size": list(image.size), "gt_class": image.gt_class,
              "gt_label": class_label(image.gt_class) if image.gt_class is not None else None,
              "boxes": [[b.x1, b.y1, b.x2, b.y2] for b in image.boxes],
              "region": list(image_region(row.image, spec.models)), "panels": {}}
    for model in spec.models:
        result = row.results.get(model.key)
        if result is None:
            record["panels"][model.key] = {
                "available": False,
                "reason": model.provenance.unavailable_reason}
            continue
        record["panels"][model.key] = {
            "available": True, "target_class": result.target_class,
            "target_label": class_label(result.target_class),
            "target_prob": round(result.target_prob, 6),
            "top5": [[c, class_label(c), round(p, 6)] for c, p in result.top5],
            "crop_box": [round(v, 3) for v in result.crop_box],
            "map_shape": list(result.raw_map.shape), "notes": list(result.notes)}
    return record


def save_figure(spec: FigureSpec, style: RenderStyle, out: str | os.PathLike
                ) -> tuple[list[Path], Path]:
    """Write the grid (PNG or paginated PDF, by suffix) and ``<out>.json`` beside it. A PNG too
    large for one file becomes ``<out>``, ``<stem>-2.png``, … (the caller says so)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".pdf":
        out.write_bytes(pdf_bytes(spec, style))
        written = [out]
    elif suffix == ".png":
        written = []
        for number, part in enumerate(png_parts(spec, style), start=1):
            path = out if number == 1 else out.with_name(f"{out.stem}-{number}{out.suffix}")
            path.write_bytes(png_bytes(part, style.dpi))
            written.append(path)
    else:
        raise ValueError(f"{out.name}: unsupported format {out.suffix!r}; use .png or .pdf")
    manifest_path = out.with_suffix(".json")
    manifest_path.write_text(json.dumps(manifest(spec, style), indent=2), encoding="utf-8")
    return written, manifest_path
