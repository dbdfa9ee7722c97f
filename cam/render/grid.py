"""The Figure 7 grid drawn: its panels, their captions, the column headers, the row labels, an
unavailable model's column, and the pixel layout that places them.

Each row shows one image's common region (``geometry``), the original first, then each model's
map resampled from that model's own crop, so a hot spot sits where that model actually looked.

A display change (colormap, opacity, normalisation) redraws only the maps' colours: everything
else — the text, the grey columns, each row's photo and its maps resampled into the region —
is kept, keyed by what it is drawn from (``_Still``), so a slider's redraw costs the colouring
and a copy, not the typesetting and resampling again (``python -m cam bench``'s redraw). Only a
grid that fits the small cache (a screen's) is kept; an export is drawn row by row, as before.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cam.engine.cache import BoundedCache
from cam.engine.engine import CamResult
from cam.engine.figure import FigureRow, FigureSpec
from cam.engine.geometry import boxes_in_region, image_region, map_in_region, region_photo
from cam.render.overlay import draw_boxes, normalise, overlays
from cam.render.style import RenderStyle
from cam.render.typeset import fit, font, join_words, wrap_words
from safe_io.imagenet import class_label
from scaled_models.paper import Scaling
from scaled_models.zoo import LoadedModel

_GOOD, _BAD, _INK, _MUTED = (22, 128, 50), (200, 30, 30), (20, 20, 20), (110, 110, 110)
LOW_CONFIDENCE_MARK = "(low)"


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
    return [panel for r, row in enumerate(spec.rows) for panel in
            _row_panels(r, row, _row_pictures(row, spec.models, size, style.show_boxes), style)]


@dataclass(frozen=True)
class _RowPictures:
    """What a row's panels show whatever the colours: the region's photo, the original panel
    (the photo with its boxes), the boxes, and each shown model's map resampled into the
    region (not yet scaled). Read-only: a kept grid shares them between redraws."""

    photo: np.ndarray
    original: np.ndarray
    boxes: tuple[tuple[float, float, float, float], ...]
    shown: tuple[str, ...]
    maps: tuple[np.ndarray, ...]

    @property
    def nbytes(self) -> int:
        return self.photo.nbytes + self.original.nbytes + sum(m.nbytes for m in self.maps)


def _shown(row: FigureRow, models: list[LoadedModel]) -> tuple[str, ...]:
    """The models of ``models`` with a map of this row, in their order."""
    return tuple(m.key for m in models if m.key in row.results)


def _row_pictures(row: FigureRow, models: list[LoadedModel], size: int,
                  show_boxes: bool) -> _RowPictures:
    region = image_region(row.image, models)
    photo = region_photo(row.image, region, size)
    boxes = tuple(boxes_in_region(row.image.boxes, region, size)) if show_boxes else ()
    original = draw_boxes(photo.copy(), list(boxes), size) if boxes else photo.copy()
    shown = _shown(row, models)
    maps = tuple(map_in_region(row.results[k].raw_map, row.results[k].crop_box, region, size)
                 for k in shown)
    for array in (photo, original, *maps):
        array.setflags(write=False)
    return _RowPictures(photo, original, boxes, shown, maps)


def _row_panels(r: int, row: FigureRow, pictures: _RowPictures, style: RenderStyle
                ) -> list[Panel]:
    """Row ``r``'s panels, its maps coloured in ``style``."""
    gt = row.image.gt_class
    panels = [Panel(r, "original", pictures.original,
                    f"GT: {class_label(gt)}" if gt is not None else "", _MUTED)]
    maps = normalise(list(pictures.maps), style.normalisation)
    coloured = overlays(pictures.photo, maps, style.colormap, style.alpha)
    for key, pixels in zip(pictures.shown, coloured):
        if pictures.boxes:
            pixels = draw_boxes(pixels, list(pictures.boxes), style.panel_px)
        panels.append(Panel(r, key, pixels, *_caption(row.results[key], gt)))
    return panels


def _caption(result: CamResult, gt: int | None) -> tuple[str, tuple[int, int, int]]:
    """Prediction and probability, ✓/✗ against the label, and a mark on a prediction nobody
    should trust (top-1 probability below ``LOW_CONFIDENCE``)."""
    text = f"{class_label(result.pred_class)} {result.pred_prob:.0%}"
    if result.low_confidence:
        text += f" {LOW_CONFIDENCE_MARK}"
    if gt is None:
        return text, _MUTED if result.low_confidence else _INK
    return (f"✓ {text}", _GOOD) if result.pred_class == gt else (f"✗ {text}", _BAD)


@dataclass(frozen=True)
class GreyColumn:
    """What a column without maps says: its title, why, and what fills it."""

    title: str
    reason: str
    fix: str | None

    @classmethod
    def of(cls, model: LoadedModel, not_run: str | None = None) -> GreyColumn | None:
        """For a model without weights, or one the method is not defined for; else ``None``."""
        if not model.available:
            prov = model.provenance
            return cls("unavailable", prov.unavailable_reason or "", prov.make_available)
        if not_run:
            return cls("not for this method", not_run, None)
        return None


def unavailable_column(width: int, height: int, grey: GreyColumn) -> Image.Image:
    """One grey panel for a whole column without maps: why, and the command that fills it. The
    text shrinks until all of it fits (a one-row panel is short), so the command is never cut."""
    canvas = Image.new("RGB", (width, height), (236, 236, 236))
    draw = ImageDraw.Draw(canvas)
    scale = 1.0
    while True:
        lines = _unavailable_lines(grey, width, scale)
        line_h = [round(f.size * 1.3) for _, f, _ in lines]
        if sum(line_h) + width // 12 <= height or scale < 0.3:
            break
        scale *= 0.85
    y = max(width // 12 if scale == 1.0 else width // 24, (height - sum(line_h)) // 3)
    for (text, fnt, colour), h in zip(lines, line_h):
        draw.text((width / 2, y), text, fill=colour, anchor="mt", font=fnt)
        y += h
    return canvas


def _unavailable_lines(grey: GreyColumn, width: int, scale: float) -> list[tuple]:
    """(text, font, colour) of an unavailable panel: wrapped at the usual font sizes, drawn
    ``scale`` times smaller (so shrinking never rewraps the text)."""
    sizes = {"title": max(10, width // 10), "body": max(9, width // 15),
             "mono": max(8, width // 17)}

    def fonts(factor: float) -> dict:
        return {"title": font(max(6, round(sizes["title"] * factor)), bold=True),
                "body": font(max(6, round(sizes["body"] * factor))),
                "mono": font(max(6, round(sizes["mono"] * factor)), mono=True)}

    wrap, draw = fonts(1.0), fonts(scale)
    lines = [(grey.title, "title", _BAD)]
    lines += [(t, "body", _MUTED) for t in wrap_words(grey.reason, wrap["body"], width * 0.9)]
    if grey.fix:
        lines += [("", "body", _MUTED), ("To make it:", "body", _INK)]
        lines += [(t, "mono", _INK) for t in wrap_words(grey.fix, wrap["mono"], width * 0.9)]
    return [(text, draw[kind], colour) for text, kind, colour in lines]


NO_PAPER_ROW = {Scaling.BROUGHT: "your model", Scaling.BASELINE: "baseline (not in the paper)",
                Scaling.COMPOUND: "compound (not in the paper)"}


def header_lines(model: LoadedModel) -> list[str]:
    """Column header: label; the paper's row beside our count (a Table 7 role: Table 7's cost,
    measured, at Table 7's resolution; another ladder's column: the paper row it is set beside
    and its depth, width and resolution counted against the ladder's baseline); what the
    weights are; and what actually runs (its resolution and MACs), with their top-1."""
    prov, column = model.provenance, model.column
    if column.spec is not None:
        spec = column.spec
        lines = [spec.short_label, f"Table 7 at {spec.paper_resolution} px:",
                 f"{model.macs / 1e9:.2f}G MACs (paper {spec.paper_flops})"]
    else:
        lines = [column.short_label, column.paper.short if column.paper is not None
                 else NO_PAPER_ROW.get(column.scales, "not in the paper")]
        if model.scaled is not None:
            lines.append(f"counted: {model.scaled.text(digits=2)}")
    if not prov.available:
        return lines + ["UNAVAILABLE"]
    lines += [prov.headline, f"runs: {prov.resolution} px, {model.run_macs / 1e9:.2f}G MACs"]
    if prov.judged:
        return lines + [prov.judged.short()]
    if column.spec is None and prov.top1 is not None:
        return lines + [f"top-1 {prov.top1:.1f} ({prov.top1_source})"]
    return lines


@dataclass(frozen=True)
class GridLayout:
    """Pixel geometry of one grid image (the pages of one grid share it)."""

    size: int
    pad: int
    label_w: int
    title_h: int
    head_h: int
    cap_h: int
    caption_lines: tuple[str, ...]
    caption_line_h: int
    title_line_h: int = 0  # the title wraps onto lines of this height, never cut short

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


def grid_layout(spec: FigureSpec, style: RenderStyle, columns: int) -> GridLayout:
    """The geometry of ``spec`` drawn in ``style`` with ``columns`` picture columns."""
    size = style.panel_px
    pad = max(4, size // 40)
    # The label column is as wide as its longest line (so no label is cut), within bounds; a
    # class name wraps at spaces, and a line still too long is shortened with an ellipsis.
    longest = max((fnt.getlength(text) for row in spec.rows
                   for text, fnt in _row_labels(row, size)), default=0)
    label_w = int(min(max(size * 0.5, longest + 3 * pad), size * 1.2))
    cap_font = font(max(8, size // 14))
    width = label_w + columns * (size + pad) + pad
    caption = tuple(wrap_words(spec.caption, cap_font, width - 2 * pad))
    # a narrow grid (one model) wraps its title rather than cutting the family's name short
    title = wrap_words(spec.title, _title_font(size), width - 2 * pad)
    title_line_h = round(_title_font(size).size * 1.3)
    title_h = round(size * 0.22) + (len(title) - 1) * title_line_h if title else 0
    return GridLayout(size, pad, label_w, title_h, round(size * 0.62), round(size * 0.14),
                      caption, round(size * 0.1), title_line_h)


def _title_font(size: int) -> ImageFont.FreeTypeFont:
    return font(max(9, size // 13), bold=True)


def grid_pixels(spec: FigureSpec, style: RenderStyle) -> tuple[int, int]:
    """(width, height) of ``compose_grid(spec, style)``, without drawing it: what an export will
    cost, to refuse one past a server's limit before any memory is spent."""
    columns = 1 + len(spec.models)
    lay = grid_layout(spec, style, columns)
    return lay.column_x(columns) + lay.pad, lay.height(len(spec.rows))


STILL_CACHE_MB = 48  # a few screen grids (about 8 MB each); a print-size grid is not kept
_STILLS = BoundedCache(STILL_CACHE_MB << 20, lambda still: still.nbytes)


@dataclass(frozen=True)
class _Still:
    """A grid without its pictures: the layout and the canvas with every text and grey column
    drawn; and each row's pictures, so that a redraw only colours the maps."""

    layout: GridLayout
    canvas: Image.Image
    rows: tuple[_RowPictures, ...]

    @property
    def nbytes(self) -> int:
        return (self.canvas.width * self.canvas.height * 3
                + sum(row.nbytes for row in self.rows))


def _still_bytes(spec: FigureSpec, style: RenderStyle) -> int:
    """What keeping ``spec``'s still part would cost, known before anything is drawn."""
    width, height = grid_pixels(spec, style)
    size = style.panel_px
    pictures = sum(2 * size * size * 3 + len(_shown(row, spec.models)) * size * size * 4
                   for row in spec.rows)
    return width * height * 3 + pictures


def _still_key(spec: FigureSpec, style: RenderStyle) -> tuple:
    """Everything the still part of a grid is drawn from, as values: the panel size, boxes on
    or off, the title and caption, each column's header and grey panel, and per row the photo
    (its content hash), label, boxes, common region and each map (its bytes' hash, crop and
    caption). Anything else changing — a colormap, the opacity, the normalisation — keeps it."""
    size = style.panel_px
    columns = tuple((m.key, tuple(header_lines(m)), GreyColumn.of(m, spec.not_run.get(m.key)))
                    for m in spec.models)
    rows = []
    for row in spec.rows:
        image, gt = row.image, row.image.gt_class
        maps = tuple((k, hashlib.sha256(np.ascontiguousarray(r.raw_map)).hexdigest(),
                      r.raw_map.shape, str(r.raw_map.dtype), tuple(r.crop_box),
                      _caption(r, gt)) for k, r in row.results.items())
        rows.append((image.key, image.image_id, gt, tuple(image.boxes),
                     tuple(image_region(image, spec.models)), maps))
    return (size, style.show_boxes, spec.title, spec.caption, columns, tuple(rows))


def _kept_still(spec: FigureSpec, style: RenderStyle) -> _Still | None:
    """The grid's still part, drawn once and kept while the same grid is redrawn; ``None``
    for a grid too large to keep (an export's). A kept one is found by its key before any
    layout is computed (wrapping the title and caption to measure the grid took 4 ms of a
    redraw's 26)."""
    key = _still_key(spec, style)
    still = _STILLS.get(key)
    if still is None and _still_bytes(spec, style) <= _STILLS.max_bytes:
        lay = grid_layout(spec, style, 1 + len(spec.models))
        rows = tuple(_row_pictures(row, spec.models, style.panel_px, style.show_boxes)
                     for row in spec.rows)
        still = _Still(lay, _draw_still(spec, lay), rows)
        _STILLS.put(key, still)
    return still


def compose_grid(spec: FigureSpec, style: RenderStyle, layout: GridLayout | None = None
                 ) -> Image.Image:
    """The Figure 7 grid: a header row, then one row per image with its label. ``layout``
    fixes the geometry (pages of one grid share it). A grid small enough to keep (a screen's)
    is redrawn from its kept still part; a larger one (an export) is drawn row by row, holding
    one row's pictures at a time."""
    columns = ["original"] + [m.key for m in spec.models]
    still = _kept_still(spec, style) if layout is None else None
    if still is not None:
        lay, canvas, kept = still.layout, still.canvas.copy(), still.rows
    else:
        lay = grid_layout(spec, style, len(columns)) if layout is None else layout
        canvas, kept = _draw_still(spec, lay), None
    for r, row in enumerate(spec.rows):
        pictures = kept[r] if kept is not None else _row_pictures(
            row, spec.models, style.panel_px, style.show_boxes)
        for panel in _row_panels(r, row, pictures, style):
            canvas.paste(Image.fromarray(panel.pixels),
                         (lay.column_x(columns.index(panel.column)), lay.row_y(r)))
    return canvas


def _draw_still(spec: FigureSpec, lay: GridLayout) -> Image.Image:
    """Everything of the grid but its pictures: the title, the column headers, the grey
    columns, every panel's caption, the row labels and the figure's caption."""
    columns = ["original"] + [m.key for m in spec.models]
    size, pad = lay.size, lay.pad
    head_font, cap_font = _title_font(size), font(max(8, size // 14))
    width = lay.column_x(len(columns)) + pad
    canvas = Image.new("RGB", (width, lay.height(len(spec.rows))), "white")
    draw = ImageDraw.Draw(canvas)
    title = wrap_words(spec.title, head_font, width - 2 * pad)
    first = lay.title_h / 2 - (len(title) - 1) * lay.title_line_h / 2
    for i, text in enumerate(title):
        draw.text((width / 2, first + i * lay.title_line_h), text, fill=_INK, anchor="mm",
                  font=head_font)
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
                      fit(text, fnt, size + pad, draw), fill=colour, anchor="mm", font=fnt)
    for c, model in enumerate(spec.models, start=1):
        grey = GreyColumn.of(model, spec.not_run.get(model.key))
        if grey is not None and spec.rows:
            top = lay.row_y(0)
            column_h = lay.row_y(len(spec.rows)) - pad - top
            canvas.paste(unavailable_column(size, column_h, grey), (lay.column_x(c), top))
    for r, row in enumerate(spec.rows):
        y, gt = lay.row_y(r), row.image.gt_class
        captions = [("original", f"GT: {class_label(gt)}" if gt is not None else "", _MUTED)]
        captions += [(key, *_caption(row.results[key], gt)) for key in _shown(row, spec.models)]
        for column, text, colour in captions:
            draw.text((lay.column_x(columns.index(column)) + size / 2, y + size + lay.cap_h / 2),
                      fit(text, cap_font, size, draw), fill=colour, anchor="mm", font=cap_font)
    for r, row in enumerate(spec.rows):
        lines = join_words(_row_labels(row, size), lay.label_w - 2 * pad)
        y = lay.row_y(r) + size / 2 - (len(lines) - 1) * size / 16
        for text, fnt in lines:
            colour = _INK if fnt is head_font else _MUTED
            draw.text((lay.label_w - pad, y), fit(text, fnt, lay.label_w - 2 * pad, draw),
                      fill=colour, anchor="rm", font=fnt)
            y += size / 8
    y = lay.height(len(spec.rows)) - pad - len(lay.caption_lines) * lay.caption_line_h
    for text in lay.caption_lines:
        draw.text((pad, y), text, fill=_MUTED, font=cap_font)
        y += lay.caption_line_h
    return canvas
