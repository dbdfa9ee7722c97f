"""A ``Summary`` in words: the metrics table with intervals, one sentence per paired
difference, the agreement matrix (Markdown, as ``cam evaluate`` prints and the app shows), and
the shared bits the report's pages and the plots' titles use."""
from __future__ import annotations

from cam.engine.engine import LOW_CONFIDENCE
from cam.eval.agreement import EVAL_SIZE
from cam.eval.metrics import CAM_THRESHOLD_STEP
from cam.eval.stats import Interval
from cam.eval.summary import METRICS, Summary


def interval_text(value: Interval | None, percent: bool, separator: str = " ") -> str:
    """``mean [low, high]``: in percent with one decimal, else as a fraction with three; "—"
    when not measured. ``separator`` goes between the mean and its interval."""
    if value is None:
        return "—"
    scale, digits = (100.0, 1) if percent else (1.0, 3)
    return (f"{value.mean * scale:.{digits}f}{separator}[{value.low * scale:.{digits}f}, "
            f"{value.high * scale:.{digits}f}]")


def counted_text(summary: Summary) -> str:
    """How many images the metrics average, and how many more only the agreement uses."""
    text = f"{summary.n_labelled} labelled image{'s' if summary.n_labelled != 1 else ''}"
    if summary.n_images != summary.n_labelled:
        text += f" (map agreement: {summary.n_images})"
    return text


def no_metrics_text(summary: Summary) -> str:
    """Why a summary has no metrics (its images have no ImageNet label), in a sentence."""
    images = ("the image has" if summary.n_images == 1
              else f"none of the {summary.n_images} images has")
    return (f"No metrics: {images} an ImageNet label, and accuracy, localization and "
            "faithfulness are all scored against it. Map agreement needs no label.")


def comparison_sentences(summary: Summary) -> list[str]:
    """One plain sentence per comparison and metric."""
    lines = []
    for (a, b), per_metric in summary.differences.items():
        for metric in METRICS:
            if metric.column in per_metric:
                lines.append(per_metric[metric.column].sentence(
                    a, b, metric.label, points=metric.percent))
    return lines


def summary_markdown(summary: Summary) -> str:
    """The metrics table with 95 % intervals, the comparison sentences and the agreement
    matrix, as markdown (printed by ``cam evaluate``)."""
    return "\n\n".join(part for part in (metrics_markdown(summary), sentences_markdown(summary),
                                          agreement_markdown(summary)) if part)


def metrics_markdown(summary: Summary) -> str:
    """The metrics table with 95 % intervals and the notes that explain it."""
    shown = summary.measured_metrics()
    if not shown:
        return no_metrics_text(summary)
    lines = [f"**{summary.method}**, {counted_text(summary)} — mean [95 % CI]", "",
             "| Model | " + " | ".join(m.heading for m in shown) + " |",
             "|" + "---|" * (1 + len(shown))]
    for model in summary.models:
        flagged = summary.low_confidence[model]
        name = model + (f" ({flagged} low-confidence)" if flagged else "")
        lines.append(f"| {name} | " + " | ".join(
            interval_text(summary.metrics[model].get(m.column), m.percent) for m in shown) + " |")
    lines += ["", "0/1 metrics and MaxBoxAccV2 in percent; energy and AUCs are fractions. "
              "Localization uses the ground-truth class's map in each image's common region "
              f"at {EVAL_SIZE} px; MaxBoxAccV2 tries CAM thresholds every "
              f"{CAM_THRESHOLD_STEP:g}, as its reference code does. Deletion replaces pixels by "
              "the mean colour of the model's normalisation and insertion restores them into "
              "RISE's blurred image. Rows whose unperturbed probability of the explained class is "
              f"below {LOW_CONFIDENCE:.0%} are counted as low-confidence: their raw deletion AUC "
              "is low for lack of confidence, so faithfulness is ranked on AUC / p0."]
    ranking = summary.faithfulness_ranking()
    if ranking:
        lines.append("Faithfulness ranking (deletion AUC / p0, lower is better): "
                     + " < ".join(ranking) + ".")
    return "\n".join(lines)


def sentences_markdown(summary: Summary) -> str:
    """The paired-difference sentences as a Markdown list; empty when nothing was compared."""
    sentences = comparison_sentences(summary)
    if not sentences:
        return ""
    return "\n".join(["**Paired differences** (same images; paired bootstrap over images, exact "
                      "McNemar for 0/1 metrics):", ""] + [f"- {s}" for s in sentences])


def agreement_markdown(summary: Summary) -> str:
    """The models × models Spearman matrix as a Markdown table; empty without agreement."""
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
