"""From per-image rows to the answers a reviewer asks for first: how each model scores (with a
95 % interval), whether one model's lead over another is larger than the noise of a few dozen
images (paired differences, exact McNemar for 0/1 metrics), and whether the models look at the
same places at all (map agreement).

Comparisons follow Figure 7's question: every model against the baseline, and the compound model
against each single-dimension model. Intervals are percentile bootstraps over images (seeded,
10,000 resamples; ``stats``). Faithfulness is ranked on deletion/insertion normalised by each
model's unperturbed probability, and rows whose probability is below ``LOW_CONFIDENCE`` are
counted and flagged.

This module computes; ``summary_text`` puts a ``Summary`` in words and tables, ``summary_plots``
draws it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cam.engine.engine import LOW_CONFIDENCE
from cam.eval import metrics
from cam.eval.agreement import AGREEMENT_MEASURES, pair_name, summarize_agreement
from cam.eval.rows import AgreementRow, MetricRow
from cam.eval.stats import (
    CONFIDENCE,
    RESAMPLES,
    Interval,
    PairedDifference,
    bootstrap_ci,
    bootstrap_mean_ci,
    paired_difference,
)
from scaled_models.ladders import TABLE7_COLUMNS, Column
from scaled_models.paper import Scaling

SEED = 0


@dataclass(frozen=True)
class Lineup:
    """The models a summary reports, in their ladder's order, and what each scales: which one
    every other is compared with (the baseline) and which compound models are compared with
    which single-dimension ones."""

    keys: tuple[str, ...]
    scales: tuple[Scaling, ...]

    @classmethod
    def of(cls, columns: Sequence[Column]) -> Lineup:
        return cls(tuple(c.key for c in columns), tuple(c.scales for c in columns))

    def order(self, present: set[str]) -> list[str]:
        """``present`` in the ladder's order; keys it does not list (rows of another run)
        after them, sorted."""
        return [k for k in self.keys if k in present] + sorted(present - set(self.keys))

    def scaling(self, key: str) -> Scaling | None:
        return dict(zip(self.keys, self.scales)).get(key)


TABLE7_LINEUP = Lineup.of(TABLE7_COLUMNS)


@dataclass(frozen=True)
class Metric:
    column: str  # the MetricRow field (its CSV column), and the name in summary.json
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


def comparisons(models: list[str], lineup: Lineup = TABLE7_LINEUP) -> list[tuple[str, str]]:
    """(A, B) pairs reported as A − B, among the models present: each model against the
    ladder's baseline, then each compound model against each single-dimension one (Figure 7's
    question: does scaling all three beat scaling one?)."""
    baselines = [m for m in models if lineup.scaling(m) == Scaling.BASELINE]
    pairs = [(m, baselines[0]) for m in models if baselines and m != baselines[0]]
    singles = [m for m in models if (lineup.scaling(m) or Scaling.BROUGHT).single_dimension]
    for compound in (m for m in models if lineup.scaling(m) == Scaling.COMPOUND):
        pairs += [(compound, m) for m in singles]
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
                pair_name(a, b): {col: interval(d, scales[col]) | {"p": d.p}
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


def _values(rows: list[MetricRow], column: str) -> dict[str, float]:
    """image_id → value for the rows where ``column`` is measured (not ``None``, not nan)."""
    values = {r.image_id: getattr(r, column) for r in rows}
    return {i: float(v) for i, v in values.items() if v is not None and not np.isnan(v)}


def _box_hits(rows: list[MetricRow]) -> dict[str, np.ndarray]:
    """image_id → its MaxBoxAccV2 hits (δ × τ), for the rows with boxes."""
    return {r.image_id: r.box_hits.array for r in rows if r.box_hits is not None}


def _maxboxacc(hits: dict[str, np.ndarray]) -> Interval | None:
    if not hits:
        return None
    stacked = metrics.stack_hits(list(hits.values()))
    n = stacked.shape[1]
    point = float(metrics.maxboxacc_v2_of_resamples(stacked, np.arange(n)[None])[0])
    return bootstrap_ci(lambda idx: metrics.maxboxacc_v2_of_resamples(stacked, idx),
                        n, point=point, seed=SEED)


def _maxboxacc_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]
                          ) -> PairedDifference | None:
    shared = [i for i in a if i in b]
    if not shared:
        return None
    ma = metrics.stack_hits([a[i] for i in shared])
    mb = metrics.stack_hits([b[i] for i in shared])

    def difference(idx: np.ndarray) -> np.ndarray:
        return (metrics.maxboxacc_v2_of_resamples(ma, idx)
                - metrics.maxboxacc_v2_of_resamples(mb, idx))

    identity = np.arange(len(shared))[None]
    interval = bootstrap_ci(difference, len(shared), point=float(difference(identity)[0]),
                            seed=SEED)
    return PairedDifference(interval.mean, interval.low, interval.high, interval.n,
                            interval.confidence)


def summarize(rows: Sequence[MetricRow], agreement_rows: Sequence[AgreementRow] = (),
              lineup: Lineup = TABLE7_LINEUP) -> list[Summary]:
    """One ``Summary`` per CAM method found in the rows (agreement alone is enough: unlabelled
    images have no metric rows), its models in ``lineup``'s order and compared as it says."""
    methods = list(dict.fromkeys(r.method for r in [*rows, *agreement_rows]))
    return [_summarize_method(method, [r for r in rows if r.method == method],
                              [r for r in agreement_rows if r.method == method], lineup)
            for method in methods]


def _summarize_method(method: str, rows: list[MetricRow], agreement_rows: list[AgreementRow],
                      lineup: Lineup) -> Summary:
    present = {r.model for r in rows} | {m for r in agreement_rows for m in (r.model_a, r.model_b)}
    models = lineup.order(present)
    by_model = {m: [r for r in rows if r.model == m] for m in models}
    per_metric = {m: {metric.column: _values(by_model[m], metric.column) for metric in METRICS
                      if not metric.dataset_level} for m in models}
    hits = {m: _box_hits(by_model[m]) for m in models}
    summary_metrics: dict[str, dict[str, Interval | None]] = {}
    for model in models:
        summary_metrics[model] = {}
        for metric in METRICS:
            if metric.dataset_level:
                summary_metrics[model][metric.column] = _maxboxacc(hits[model])
                continue
            values = list(per_metric[model][metric.column].values())
            summary_metrics[model][metric.column] = (
                bootstrap_mean_ci(values, seed=SEED) if values else None)
    differences: dict[tuple[str, str], dict[str, PairedDifference]] = {}
    for a, b in comparisons(models, lineup):
        differences[(a, b)] = {}
        for metric in METRICS:
            if metric.dataset_level:
                difference = _maxboxacc_difference(hits[a], hits[b])
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
        pair_rows = [r for r in agreement_rows if (r.model_a, r.model_b) == (a, b)]
        agreement[(a, b)] = {measure: summarize_agreement([getattr(r, measure) for r in pair_rows],
                                                          seed=SEED)
                             for measure in AGREEMENT_MEASURES}
    low = {m: sum(r.target_prob < LOW_CONFIDENCE for r in by_model[m]) for m in models}
    maxbox_per_delta = {m: metrics.maxboxacc_from_hits(list(hits[m].values()))
                        for m in models if hits[m]}
    n_images = len({r.image_id for r in [*rows, *agreement_rows]})
    n_labelled = len({r.image_id for r in rows})
    return Summary(method, n_images, n_labelled, models, summary_metrics, maxbox_per_delta,
                   differences, agreement, low)
