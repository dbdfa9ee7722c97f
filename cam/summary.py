"""From per-image rows to the answers a reviewer asks for first: how each model scores (with a
95 % interval), whether one model's lead over another is larger than the noise of a few dozen
images (paired differences, exact McNemar for 0/1 metrics), and whether the models look at the
same places at all (map agreement).

Comparisons follow Figure 7's question: every model against the baseline, and the compound model
against each single-dimension model. Intervals are percentile bootstraps over images (seeded,
10,000 resamples; ``stats``). Faithfulness is ranked on deletion/insertion normalised by each
model's unperturbed probability, and rows whose probability is below ``LOW_CONFIDENCE`` are
counted and flagged.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from scaled_models.table7 import MODEL_KEYS

from . import metrics
from .agreement import AGREEMENT_MEASURES, EVAL_SIZE, pair_name, summarize_agreement
from .engine import LOW_CONFIDENCE
from .stats import (
    CONFIDENCE,
    RESAMPLES,
    Interval,
    PairedDifference,
    bootstrap_ci,
    bootstrap_mean_ci,
    paired_difference,
)

BASELINE, COMPOUND = MODEL_KEYS[0], MODEL_KEYS[-1]
SINGLE_DIMENSION = MODEL_KEYS[1:-1]  # depth, width, resolution
SEED = 0


@dataclass(frozen=True)
class Metric:
    column: str  # the CSV column, and the name in summary.json
    label: str
    binary: bool = False  # a 0/1 outcome per image: shown in percent, tested with McNemar
    lower_is_better: bool = False
    dataset_level: bool = False  # computed over the whole set (MaxBoxAccV2), not averaged

    @property
    def percent(self) -> bool:
        return self.binary or self.dataset_level

    @property
    def heading(self) -> str:
        return self.label + (" ↓" if self.lower_is_better else "")


METRICS: tuple[Metric, ...] = (
    Metric("top1_correct", "Top-1", binary=True),
    Metric("top5_correct", "Top-5", binary=True),
    Metric("gt_known_loc", "GT-known Loc", binary=True),
    Metric("top1_loc", "Top-1 Loc", binary=True),
    Metric("maxboxacc_v2", "MaxBoxAccV2", dataset_level=True),
    Metric("pointing_hit", "Pointing game", binary=True),
    Metric("energy_in_box", "Energy in box"),
    Metric("deletion_auc", "Deletion AUC", lower_is_better=True),
    Metric("insertion_auc", "Insertion AUC"),
    Metric("deletion_auc_norm", "Deletion AUC / p0", lower_is_better=True),
    Metric("insertion_auc_norm", "Insertion AUC / p0"),
)
FAITHFULNESS_RANKED_ON = ("deletion_auc_norm", "insertion_auc_norm")


def comparisons(models: list[str]) -> list[tuple[str, str]]:
    """(A, B) pairs reported as A − B: each model against the baseline, then the compound model
    against each single-dimension model, among the models present."""
    pairs = [(m, BASELINE) for m in models if m != BASELINE and BASELINE in models]
    if COMPOUND in models:
        pairs += [(COMPOUND, m) for m in SINGLE_DIMENSION if m in models]
    return pairs


@dataclass
class Summary:
    method: str
    n_images: int  # every image with a row, agreement included
    n_labelled: int  # images with metric rows (an ImageNet label): what the metrics average
    models: list[str]
    metrics: dict[str, dict[str, Interval | None]]  # model → column → mean with interval
    maxboxacc_per_delta: dict[str, dict[int, float]]
    differences: dict[tuple[str, str], dict[str, PairedDifference]]
    agreement: dict[tuple[str, str], dict[str, Interval | None]]
    low_confidence: dict[str, int]  # rows below LOW_CONFIDENCE, per model

    def measured_metrics(self) -> list[Metric]:
        """The metrics some model has a value for: none when no image has an ImageNet label
        (every metric is scored against the label; only map agreement needs none)."""
        return [m for m in METRICS
                if any(self.metrics[x].get(m.column) is not None for x in self.models)]

    def sentences(self) -> list[str]:
        """One plain sentence per comparison and metric."""
        lines = []
        for (a, b), per_metric in self.differences.items():
            for metric in METRICS:
                if metric.column in per_metric:
                    lines.append(per_metric[metric.column].sentence(
                        a, b, metric.label, points=metric.percent))
        return lines

    def faithfulness_ranking(self) -> list[str]:
        """Models ordered by normalised deletion (lower first), ties by normalised insertion."""
        deletion_column, insertion_column = FAITHFULNESS_RANKED_ON

        def key(model: str) -> tuple[float, float]:
            deletion = self.metrics[model].get(deletion_column)
            insertion = self.metrics[model].get(insertion_column)
            return (deletion.mean if deletion else np.inf, -(insertion.mean if insertion else 0))
        return sorted((m for m in self.models if self.metrics[m].get(deletion_column)), key=key)

    def as_json(self) -> dict:
        """The machine-readable summary (``OUT.summary.json``): metric names as in the CSV,
        0/1 metrics and MaxBoxAccV2 in percent."""
        def interval(value: Interval | PairedDifference | None, scale: float) -> dict | None:
            if value is None:
                return None
            return {"mean": round(value.mean * scale, 6),
                    "ci95": [round(value.low * scale, 6), round(value.high * scale, 6)],
                    "n": value.n}

        scales = {m.column: 100.0 if m.percent else 1.0 for m in METRICS}
        return {
            "n_images": self.n_images, "n_labelled": self.n_labelled, "method": self.method,
            "models": self.models,
            "confidence": CONFIDENCE, "resamples": RESAMPLES, "seed": SEED,
            "metrics": {model: {col: interval(v, scales[col]) for col, v in per.items()}
                        for model, per in self.metrics.items()},
            "maxboxacc_by_delta": {model: {str(d): round(100 * v, 4) for d, v in per.items()}
                                   for model, per in self.maxboxacc_per_delta.items()},
            "differences": {
                f"{a}-{b}": {col: interval(d, scales[col]) | {"p": d.p}
                             for col, d in per.items()}
                for (a, b), per in self.differences.items()},
            "agreement": {pair_name(a, b): {k: interval(v, 1.0) for k, v in per.items()}
                          for (a, b), per in self.agreement.items()},
            "low_confidence_rows": self.low_confidence,
            "faithfulness_ranking": self.faithfulness_ranking(),
        }

    def pair_agreement(self, a: str, b: str, measure: str) -> Interval | None:
        """The agreement of models a and b (either order); ``None`` if not measured."""
        per = self.agreement.get((a, b)) or self.agreement.get((b, a)) or {}
        return per.get(measure)

    def agreement_matrix(self, measure: str = "spearman") -> np.ndarray:
        """models × models means of ``measure``; 1 on the diagonal (a map with itself), nan
        where undefined."""
        matrix = np.eye(len(self.models))
        for i, a in enumerate(self.models):
            for j, b in enumerate(self.models):
                if i != j:
                    value = self.pair_agreement(a, b, measure)
                    matrix[i, j] = value.mean if value is not None else np.nan
        return matrix


def _values(rows: list[dict], column: str) -> dict[str, float]:
    """image_id → value for the rows where ``column`` is defined."""
    return {r["image_id"]: float(r[column]) for r in rows
            if r.get(column) not in (None, "") and not (
                isinstance(r[column], float) and np.isnan(r[column]))}


def _best_ious(rows: list[dict]) -> dict[str, np.ndarray]:
    out = {}
    for r in rows:
        value = r.get("best_iou_by_threshold")
        if isinstance(value, str) and value:
            out[r["image_id"]] = np.array(value.split(), dtype=np.float64)
        elif isinstance(value, np.ndarray):
            out[r["image_id"]] = value
    return out


def _maxboxacc(best: dict[str, np.ndarray]) -> Interval | None:
    if not best:
        return None
    matrix = np.stack(list(best.values()))
    point = float(metrics.maxboxacc_v2_of_resamples(matrix, np.arange(len(matrix))[None])[0])
    return bootstrap_ci(lambda idx: metrics.maxboxacc_v2_of_resamples(matrix, idx),
                        len(matrix), point=point, seed=SEED)


def _maxboxacc_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]
                          ) -> PairedDifference | None:
    shared = [i for i in a if i in b]
    if not shared:
        return None
    ma, mb = np.stack([a[i] for i in shared]), np.stack([b[i] for i in shared])

    def difference(idx: np.ndarray) -> np.ndarray:
        return (metrics.maxboxacc_v2_of_resamples(ma, idx)
                - metrics.maxboxacc_v2_of_resamples(mb, idx))

    identity = np.arange(len(shared))[None]
    interval = bootstrap_ci(difference, len(shared), point=float(difference(identity)[0]),
                            seed=SEED)
    return PairedDifference(interval.mean, interval.low, interval.high, interval.n,
                            interval.confidence)


def summarize(rows: list[dict], agreement_rows: list[dict] = ()) -> list[Summary]:
    """One ``Summary`` per CAM method found in the rows (agreement alone is enough: unlabelled
    images have no metric rows)."""
    methods = list(dict.fromkeys(r["method"] for r in [*rows, *agreement_rows]))
    return [_summarize_method(method, [r for r in rows if r["method"] == method],
                              [r for r in agreement_rows if r["method"] == method])
            for method in methods]


def _summarize_method(method: str, rows: list[dict], agreement_rows: list[dict]) -> Summary:
    present = {r["model"] for r in rows} | {r[k] for r in agreement_rows
                                            for k in ("model_a", "model_b")}
    models = [m for m in MODEL_KEYS if m in present]
    by_model = {m: [r for r in rows if r["model"] == m] for m in models}
    per_metric = {m: {metric.column: _values(by_model[m], metric.column) for metric in METRICS
                      if not metric.dataset_level} for m in models}
    best = {m: _best_ious(by_model[m]) for m in models}
    summary_metrics: dict[str, dict[str, Interval | None]] = {}
    for model in models:
        summary_metrics[model] = {}
        for metric in METRICS:
            if metric.dataset_level:
                summary_metrics[model][metric.column] = _maxboxacc(best[model])
                continue
            values = list(per_metric[model][metric.column].values())
            summary_metrics[model][metric.column] = (
                bootstrap_mean_ci(values, seed=SEED) if values else None)
    differences: dict[tuple[str, str], dict[str, PairedDifference]] = {}
    for a, b in comparisons(models):
        differences[(a, b)] = {}
        for metric in METRICS:
            if metric.dataset_level:
                difference = _maxboxacc_difference(best[a], best[b])
            else:
                va, vb = per_metric[a][metric.column], per_metric[b][metric.column]
                shared = [i for i in va if i in vb]
                difference = paired_difference(
                    [va[i] for i in shared], [vb[i] for i in shared], binary=metric.binary,
                    seed=SEED) if shared else None
            if difference is not None:
                differences[(a, b)][metric.column] = difference
    agreement = {}
    for a, b in ((a, b) for i, a in enumerate(models) for b in models[i + 1:]):
        pair_rows = [r for r in agreement_rows if (r["model_a"], r["model_b"]) == (a, b)]
        agreement[(a, b)] = {measure: summarize_agreement([float(r[measure]) for r in pair_rows],
                                                          seed=SEED)
                             for measure in AGREEMENT_MEASURES}
    low = {m: sum(float(r["target_prob"]) < LOW_CONFIDENCE for r in by_model[m]) for m in models}
    maxbox_per_delta = {m: metrics.maxboxacc_from_best_ious(list(best[m].values()))
                        for m in models if best[m]}
    n_images = len({r["image_id"] for r in [*rows, *agreement_rows]})
    n_labelled = len({r["image_id"] for r in rows})
    return Summary(method, n_images, n_labelled, models, summary_metrics, maxbox_per_delta,
                   differences, agreement, low)


def _cell(value: Interval | None, metric: Metric) -> str:
    if value is None:
        return "—"
    if metric.percent:
        return f"{100 * value.mean:.1f} [{100 * value.low:.1f}, {100 * value.high:.1f}]"
    return f"{value.mean:.3f} [{value.low:.3f}, {value.high:.3f}]"


def _counted(summary: Summary) -> str:
    """How many images the metrics average, and how many more only the agreement uses."""
    text = f"{summary.n_labelled} labelled image{'s' if summary.n_labelled != 1 else ''}"
    if summary.n_images != summary.n_labelled:
        text += f" (map agreement: {summary.n_images})"
    return text


def summary_markdown(summary: Summary) -> str:
    """The metrics table with 95 % intervals, the comparison sentences and the agreement
    matrix, as markdown (printed by ``cam evaluate``)."""
    return "\n\n".join(part for part in (metrics_markdown(summary), sentences_markdown(summary),
                                          agreement_markdown(summary)) if part)


def no_metrics_text(summary: Summary) -> str:
    """Why a summary has no metrics (its images have no ImageNet label), in a sentence."""
    images = ("the image has" if summary.n_images == 1
              else f"none of the {summary.n_images} images has")
    return (f"No metrics: {images} an ImageNet label, and accuracy, localization and "
            "faithfulness are all scored against it. Map agreement needs no label.")


def metrics_markdown(summary: Summary) -> str:
    """The metrics table with 95 % intervals and the notes that explain it."""
    shown = summary.measured_metrics()
    if not shown:
        return no_metrics_text(summary)
    lines = [f"**{summary.method}**, {_counted(summary)} — mean [95 % CI]", "",
             "| Model | " + " | ".join(m.heading for m in shown) + " |",
             "|" + "---|" * (1 + len(shown))]
    for model in summary.models:
        flagged = summary.low_confidence[model]
        name = model + (f" ({flagged} low-confidence)" if flagged else "")
        lines.append(f"| {name} | " + " | ".join(_cell(summary.metrics[model].get(m.column), m)
                                                 for m in shown) + " |")
    lines += ["", "0/1 metrics and MaxBoxAccV2 in percent; energy and AUCs are fractions. "
              "Localization uses the ground-truth class's map in each image's common region "
              f"at {EVAL_SIZE} px. Rows whose unperturbed probability of the explained class is "
              f"below {LOW_CONFIDENCE:.0%} are counted as low-confidence: their raw deletion AUC "
              "is low for lack of confidence, so faithfulness is ranked on AUC / p0."]
    ranking = summary.faithfulness_ranking()
    if ranking:
        lines.append("Faithfulness ranking (deletion AUC / p0, lower is better): "
                     + " < ".join(ranking) + ".")
    return "\n".join(lines)


def sentences_markdown(summary: Summary) -> str:
    sentences = summary.sentences()
    if not sentences:
        return ""
    return "\n".join(["**Paired differences** (same images; paired bootstrap over images, exact "
                      "McNemar for 0/1 metrics):", ""] + [f"- {s}" for s in sentences])


def agreement_markdown(summary: Summary) -> str:
    if not summary.agreement:
        return ""
    lines = ["**Map agreement** (Spearman ρ of the two maps on the common region; mean [95 % CI] "
             "over images; 1 = same ranking of pixels):", "",
             "| | " + " | ".join(summary.models) + " |",
             "|" + "---|" * (1 + len(summary.models))]
    for a in summary.models:
        cells = []
        for b in summary.models:
            rho = summary.pair_agreement(a, b, "spearman")
            cells.append("1" if a == b else "—" if rho is None else
                         f"{rho.mean:.2f} [{rho.low:.2f}, {rho.high:.2f}]")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    ax.set_title(f"CAM metrics per model — {summary.method}, {_counted(summary)}",
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
