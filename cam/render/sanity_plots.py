"""The sanity checks drawn: the cascade curve of each model and method, as in Adebayo et al.'s
Figure 4 (similarity with the trained map after each randomisation step, with its 95 %
interval; matplotlib), for ``cam evaluate --sanity`` and the report; and one image's maps through
the cascade in their Figure 2 layout (PIL), for the app and the notebook."""
from __future__ import annotations

import io
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw

from cam.engine.geometry import region_photo
from cam.engine.inputs import CamImage
from cam.engine.maps import minmax
from cam.engine.methods import METHODS
from cam.eval.sanity import CascadeMaps
from cam.eval.sanity_summary import PASS_BELOW, SanitySummary
from cam.render.overlay import overlay
from cam.render.style import RenderStyle
from cam.render.typeset import fit, font


def cascade_plot(summary: SanitySummary, measure: str = "spearman_abs") -> bytes:
    """PNG: one panel per method, one line per model: step 0 is the trained network (1 by
    definition), then each recorded step, the last being the whole network re-initialised.
    Shaded: the 95 % interval; dotted: the pass threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(e.method for e in summary.entries))
    if not methods:
        raise ValueError("no sanity rows to draw")
    columns = min(len(methods), 4)
    rows = -(-len(methods) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(4.8, 3.6 * columns), 2.8 * rows + 0.3),
                             dpi=150, squeeze=False, sharey=True)
    models = list(dict.fromkeys(e.model for e in summary.entries))
    colours = dict(zip(models, plt.get_cmap("viridis")(np.linspace(0.1, 0.8, len(models)))))
    for ax, method in zip(axes.flat, methods):
        longest: tuple[str, ...] = ()
        for entry in (e for e in summary.entries if e.method == method):
            values = getattr(entry, measure)
            x = np.arange(len(values) + 1)
            mean = [1.0] + [v.mean if v else np.nan for v in values]
            low = [1.0] + [v.low if v else np.nan for v in values]
            high = [1.0] + [v.high if v else np.nan for v in values]
            ax.plot(x, mean, marker=".", ms=3, lw=1, color=colours[entry.model],
                    label=f"{entry.model} (n={entry.n})")
            ax.fill_between(x, low, high, color=colours[entry.model], alpha=0.2, lw=0)
            longest = max(longest, entry.steps, key=len)
        ax.axhline(PASS_BELOW, ls=":", lw=0.8, color="0.3")
        ax.axhline(0, lw=0.5, color="0.6")
        ticks = [0, 1, 2, len(longest)] if len(longest) > 2 else list(range(len(longest) + 1))
        names = ["trained", *longest]
        ax.set_xticks(ticks, [names[t] for t in ticks], fontsize=6, rotation=45, ha="right")
        ax.set_title(METHODS[method].label if method in METHODS else method, fontsize=8)
        ax.set_ylim(-1.02, 1.02)
        ax.tick_params(labelsize=6.5)
        ax.legend(fontsize=5.5, loc="lower left")
    for ax in list(axes.flat)[len(methods):]:
        ax.set_axis_off()
    label = {"spearman_abs": "Spearman ρ (|map|)", "spearman": "Spearman ρ",
             "ssim": "SSIM"}[measure]
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{label} with the trained map", fontsize=7)
    fig.suptitle("Cascading randomisation, top (fc) to bottom (stem; last point: the whole\n"
                 f"network random): mean with 95 % CI; dotted: pass threshold {PASS_BELOW}",
                 fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def cascade_grid(image: CamImage, maps: Sequence[CascadeMaps], style: RenderStyle,
                 panel: int = 96) -> Image.Image:
    """Adebayo et al.'s Figure 2 layout for one image: one row per model, the photo (the
    model's crop), its trained map, then its map after each recorded cascade step, left to
    right as the network is randomised from the top; each map min-max scaled on its own and
    drawn over the crop in ``style``'s colormap and opacity."""
    label_width, header = 110, 34
    columns = max(len(m.steps) for m in maps) + 2
    canvas = Image.new("RGB", (label_width + columns * panel, header + len(maps) * panel),
                       "white")
    draw = ImageDraw.Draw(canvas)
    small, bold = font(11), font(12, bold=True)
    longest = max(maps, key=lambda m: len(m.steps))
    for col, name in enumerate(["photo", "trained", *(s.label for s in longest.steps)]):
        draw.text((label_width + col * panel + panel / 2, header - 4),
                  fit(name, small, panel - 4, draw), fill="black", font=small, anchor="md")
    for row, model_maps in enumerate(maps):
        top = header + row * panel
        draw.text((6, top + panel / 2), fit(model_maps.model_key, bold, label_width - 8, draw),
                  fill="black", font=bold, anchor="lm")
        photo = region_photo(image, model_maps.crop_box, panel)
        canvas.paste(Image.fromarray(photo), (label_width, top))
        for col, raw in enumerate([model_maps.trained, *model_maps.randomised], start=1):
            shown = minmax(cv2.resize(raw, (panel, panel), interpolation=cv2.INTER_LINEAR))
            canvas.paste(Image.fromarray(overlay(photo, shown, style.colormap, style.alpha)),
                         (label_width + col * panel, top))
    return canvas
