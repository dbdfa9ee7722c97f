"""Figure 7 rendering: overlays, the models-by-images grid, PNG/PDF export and the manifest.

Each row shows one image's common region (``geometry``), the original first, then each model's
map resampled from that model's own crop, so a hot spot sits where that model actually looked.
"""
from __future__ import annotations

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

from scaled_models.imagenet import class_label
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


@dataclass(frozen=True)
class RenderStyle:
    """How maps are drawn; changing it never needs the models again."""

    colormap: str = "jet"
    alpha: float = 0.5
    normalisation: str = "per-map"  # the paper normalises each map on its own
    show_boxes: bool = False
    dpi: int = 150
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


@lru_cache(maxsize=16)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib, so every machine has it) for ✓/✗ and labels."""
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
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
    """Every panel of the grid, row by row; the original first, then models in paper order."""
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
                            f"GT: {class_label(gt)}" if gt is not None else "no label", _MUTED))
        shown = [m for m in spec.models if m.key in row.results]
        maps = normalise([map_in_region(row.results[m.key].raw_map, row.results[m.key].crop_box,
                                        region, size) for m in shown], style.normalisation)
        by_key = dict(zip((m.key for m in shown), maps))
        for model in spec.models:
            result = row.results.get(model.key)
            if result is None:
                reason = model.provenance.unavailable_reason or ""
                panels.append(Panel(r, model.key, _placeholder(size, "unavailable"
                                    if not model.available else "error", reason), "—", _MUTED))
                continue
            pixels = overlay(photo, by_key[model.key], style.colormap, style.alpha)
            if boxes:
                pixels = _draw_boxes(pixels, boxes, size)
            panels.append(Panel(r, model.key, pixels, *_caption(result, gt)))
    return panels


def _caption(result: CamResult, gt: int | None) -> tuple[str, tuple[int, int, int]]:
    text = f"{class_label(result.pred_class)} {result.pred_prob:.0%}"
    if gt is None:
        return text, _INK
    return (f"✓ {text}", _GOOD) if result.pred_class == gt else (f"✗ {text}", _BAD)


def _draw_boxes(pixels: np.ndarray, boxes: list[tuple[float, ...]], size: int) -> np.ndarray:
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    width = max(2, size // 90)
    for box in boxes:  # inclusive pixel boxes, as ImageDraw expects
        draw.rectangle(box, outline=(255, 255, 255), width=width + 2)
        draw.rectangle(box, outline=(0, 200, 0), width=width)
    return np.asarray(canvas)


def _placeholder(size: int, title: str, reason: str) -> np.ndarray:
    canvas = Image.new("RGB", (size, size), (235, 235, 235))
    draw = ImageDraw.Draw(canvas)
    draw.text((size / 2, size / 2 - size / 10), title, fill=_MUTED, anchor="mm",
              font=font(max(10, size // 12), bold=True))
    small = font(max(8, size // 18))
    words, lines, line = _break_long(reason.split(), small, size * 0.9), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=small) > size * 0.9 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    for i, text in enumerate(lines[:5]):
        draw.text((size / 2, size / 2 + i * size / 14), text, fill=_MUTED, anchor="mt", font=small)
    return np.asarray(canvas)


def header_lines(model: LoadedModel) -> list[str]:
    """Column header: label, Table 7's measured MACs beside the paper's, what the weights are,
    and what actually runs (resolution, MACs)."""
    prov = model.provenance
    lines = [model.spec.short_label,
             f"{model.macs / 1e9:.2f}G MACs (paper {model.spec.paper_flops})"]
    if not prov.available:
        return lines + ["UNAVAILABLE"]
    if not prov.trained_for_config:
        status = "stand-in: test-time res"
    elif prov.stand_in:
        status = f"stand-in ({prov.family})"
    else:
        status = "trained for this config"
    return lines + [status, f"runs {prov.resolution} px, {model.run_macs / 1e9:.2f}G"]


def compose_grid(spec: FigureSpec, style: RenderStyle,
                 panels: list[Panel] | None = None) -> Image.Image:
    """The Figure 7 grid: a header row, then one row per image with its ground-truth label."""
    panels = render_panels(spec, style) if panels is None else panels
    size = style.panel_px
    pad = max(4, size // 40)
    label_w = round(size * 0.55)
    head_font, cap_font = font(max(9, size // 13), bold=True), font(max(8, size // 14))
    head_h = round(size * 0.45)
    cap_h = round(size * 0.14)
    title_h = round(size * 0.22) if spec.title else 0
    columns = ["original"] + [m.key for m in spec.models]
    caption_lines = _wrap(spec.caption, cap_font, label_w + len(columns) * (size + pad))
    width = label_w + len(columns) * (size + pad) + pad
    height = (title_h + head_h + len(spec.rows) * (size + cap_h + pad) + pad
              + len(caption_lines) * round(size * 0.1) + (pad if caption_lines else 0))
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if spec.title:
        draw.text((width / 2, title_h / 2), spec.title, fill=_INK, anchor="mm", font=head_font)
    headers = [["Original", "input region"]] + [header_lines(m) for m in spec.models]
    for c, lines in enumerate(headers):
        x = label_w + c * (size + pad) + size / 2
        for i, text in enumerate(lines):
            colour = _BAD if text == "UNAVAILABLE" else (_INK if i == 0 else _MUTED)
            draw.text((x, title_h + (i + 0.6) * head_h / (len(lines) + 0.4)), text, fill=colour,
                      anchor="mm", font=head_font if i == 0 else cap_font)
    for panel in panels:
        c = columns.index(panel.column)
        x = label_w + c * (size + pad)
        y = title_h + head_h + panel.row * (size + cap_h + pad)
        canvas.paste(Image.fromarray(panel.pixels), (x, y))
        draw.text((x + size / 2, y + size + cap_h / 2), _fit(panel.caption, cap_font, size, draw),
                  fill=panel.caption_color, anchor="mm", font=cap_font)
    for r, row in enumerate(spec.rows):
        y = title_h + head_h + r * (size + cap_h + pad) + size / 2
        gt = row.image.gt_class
        name = class_label(gt) if gt is not None else ""
        shown_id = row.image.image_id.removeprefix("ILSVRC2012_")
        for i, text in enumerate(t for t in (name, shown_id) if t):
            draw.text((label_w - pad, y + i * size / 8), _fit(text, cap_font, label_w - pad, draw),
                      fill=_INK if i == 0 and name else _MUTED, anchor="rm",
                      font=head_font if i == 0 and name else cap_font)
    y = height - pad - len(caption_lines) * round(size * 0.1)
    for text in caption_lines:
        draw.text((pad, y), text, fill=_MUTED, font=cap_font)
        y += round(size * 0.1)
    return canvas


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


def _wrap(text: str, fnt: ImageFont.FreeTypeFont, width: float) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if fnt.getlength(trial) > width * 0.96 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def figure_bytes(grid: Image.Image, fmt: str, dpi: int) -> bytes:
    """PNG or PDF bytes of a composed grid, stamped with its DPI."""
    buffer = io.BytesIO()
    fmt = fmt.lower().lstrip(".")
    if fmt == "png":
        grid.save(buffer, format="PNG", dpi=(dpi, dpi))
    elif fmt == "pdf":
        grid.save(buffer, format="PDF", resolution=float(dpi))
    else:
        raise ValueError(f"unsupported format {fmt!r}: use png or pdf")
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


def save_figure(grid: Image.Image, spec: FigureSpec, style: RenderStyle,
                out: str | os.PathLike) -> tuple[Path, Path]:
    """Write the grid (PNG or PDF by suffix) and ``<out>.json`` beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(figure_bytes(grid, out.suffix, style.dpi))
    manifest_path = out.with_suffix(".json")
    manifest_path.write_text(json.dumps(manifest(spec, style), indent=2), encoding="utf-8")
    return out, manifest_path
