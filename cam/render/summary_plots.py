"""A ``Summary`` drawn (PNG bytes, matplotlib): the metrics as bars with their intervals, and the
map-agreement matrix as a heat map — ``cam evaluate`` writes both, the report and the app
embed them."""
from __future__ import annotations

import io

import numpy as np

from cam.eval.agreement import AGREEMENT_MEASURES
from cam.eval.summary import Summary
from cam.render.summary_text import counted_text, no_metrics_text


def summary_plot(summary: Summary) -> bytes:
    """PNG: the metrics of each model as bars with their 95 % intervals (fractions, so every
    metric shares one axis). Needs at least one measured metric (a labelled image)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = summary.measured_metrics()
    if not shown:
        raise ValueError(no_metrics_text(summary))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(shown) + 2), 3.8), dpi=150)
    width = 0.8 / max(len(summary.models), 1)
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, max(len(summary.models), 1)))
    for i, (model, colour) in enumerate(zip(summary.models, colours)):
        values = [summary.metrics[model].get(m.column) for m in shown]
        means = np.array([v.mean if v else np.nan for v in values])
        errors = np.array([[v.mean - v.low, v.high - v.mean] if v else [0, 0]
                           for v in values]).T
        ax.bar(np.arange(len(shown)) + (i - (len(summary.models) - 1) / 2) * width, means,
               width, yerr=errors, capsize=1.5, error_kw={"lw": 0.6}, label=model, color=colour)
    ax.set_xticks(np.arange(len(shown)), [m.heading for m in shown], fontsize=6.5, rotation=20,
                  ha="right")
    ax.set_ylim(0, max(1.05, float(np.nanmax([v.high for x in summary.models
                                               for v in summary.metrics[x].values() if v]))))
    ax.set_ylabel("score (fraction) with 95 % CI", fontsize=7)
    ax.set_title(f"CAM metrics per model — {summary.method}, {counted_text(summary)}",
                 fontsize=9)
    ax.legend(fontsize=6, ncol=min(len(summary.models), 5), loc="upper center",
              bbox_to_anchor=(0.5, -0.35), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def agreement_plot(summary: Summary, measure: str = "spearman") -> bytes:
    """PNG: the models × models agreement matrix as a heat map, means annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = summary.agreement_matrix(measure)
    size = len(summary.models)
    fig, ax = plt.subplots(figsize=(1.1 * size + 2.2, 1.0 * size + 1.2), dpi=150)
    image = ax.imshow(matrix, vmin=-1 if measure == "spearman" else 0, vmax=1, cmap="viridis")
    ax.set_xticks(range(size), summary.models, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(size), summary.models, fontsize=7)
    for i in range(size):
        for j in range(size):
            if not np.isnan(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.6 else "black")
    label = AGREEMENT_MEASURES[measure]
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).set_label(label, fontsize=7)
    ax.set_title(f"Map agreement ({label}), mean over {summary.n_images} images", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
