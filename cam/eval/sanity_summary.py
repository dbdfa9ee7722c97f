"""From per-image sanity rows to what a reviewer asks: does each method's map, on each model,
depend on the learned weights and on the class? Means with 95 % bootstrap intervals over images
(``stats``), per cascade step, and a verdict per check.

**When a check passes.** No paper fixes a threshold, so scalecam states one (chosen after a
12-image probe of the exact CAM and Eigen-CAM on Lite0, before the 32-image measurements in the
README) and applies it to the interval, not to the mean:

- *cascading randomisation* (Adebayo et al. 2018) passes when, after the last step (the whole
  network re-initialised), the upper bound of the 95 % interval of the mean Spearman ρ of the
  absolute maps is below ``PASS_BELOW`` = 0.5: at most half of the trained map's ranking
  survives, with the sampling noise of the images counted against the method. 1 is the same
  map; the trained exact CAMs of two *different* images of the val sample already share 0.38 on
  average (Lite0: objects sit near the centre, maps are smooth), so 0 is not expected even of
  a perfect method.
- *random logit* (Sixt et al. 2020) passes when the upper bound of the mean SSIM between the
  predicted class's map and the random class's map is below ``PASS_BELOW``: the two classes'
  maps keep at most half of the structure in common. A class-blind method scores exactly 1.
- *eMPRT* (Hedström et al. 2023) is reported as whether the map's complexity rises under full
  randomisation (the interval's lower bound above 0); Hedström et al. rank methods by it rather
  than set a threshold, and so does this summary (no pass/fail).

An image whose map is constant at a step (no ranking: Spearman undefined) is left out of that
step's mean and counted in ``constant_final``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cam.engine.methods import METHODS
from cam.eval.rows import SanityRow
from cam.eval.stats import Interval, bootstrap_mean_ci
from scaled_models.table7 import MODEL_KEYS

PASS_BELOW = 0.5
SEED = 0  # the bootstrap's


def _mean_ci(values: Sequence[float]) -> Interval | None:
    defined = [v for v in values if not np.isnan(v)]
    return bootstrap_mean_ci(defined, seed=SEED) if defined else None


@dataclass(frozen=True)
class SanityEntry:
    """One model and method over ``n`` images: the cascade curve (one interval per recorded
    step), eMPRT, the random-logit SSIM, and the verdicts."""

    model: str
    method: str
    n: int
    steps: tuple[str, ...]
    spearman_abs: tuple[Interval | None, ...]
    spearman: tuple[Interval | None, ...]
    ssim: tuple[Interval | None, ...]
    constant_final: int  # images whose fully randomised map is constant
    emprt: Interval | None
    random_logit_ssim: Interval | None

    @property
    def cascade_passes(self) -> bool | None:
        final = self.spearman_abs[-1] if self.spearman_abs else None
        return None if final is None else final.high < PASS_BELOW

    @property
    def random_logit_passes(self) -> bool | None:
        value = self.random_logit_ssim
        return None if value is None else value.high < PASS_BELOW

    @property
    def complexity_rises(self) -> bool | None:
        return None if self.emprt is None else self.emprt.low > 0

    def as_json(self) -> dict:
        def interval(value: Interval | None) -> dict | None:
            return None if value is None else {
                "mean": round(value.mean, 6), "ci95": [round(value.low, 6),
                                                        round(value.high, 6)], "n": value.n}
        return {"model": self.model, "method": self.method, "n_images": self.n,
                "steps": list(self.steps),
                "spearman_abs": [interval(v) for v in self.spearman_abs],
                "spearman": [interval(v) for v in self.spearman],
                "ssim": [interval(v) for v in self.ssim],
                "constant_final_maps": self.constant_final, "emprt": interval(self.emprt),
                "random_logit_ssim": interval(self.random_logit_ssim),
                "cascade_passes": self.cascade_passes,
                "random_logit_passes": self.random_logit_passes,
                "complexity_rises": self.complexity_rises}


@dataclass(frozen=True)
class SanitySummary:
    entries: tuple[SanityEntry, ...]  # methods in registry order, models in paper order

    def entry(self, model: str, method: str) -> SanityEntry | None:
        return next((e for e in self.entries if (e.model, e.method) == (model, method)), None)

    def as_json(self) -> dict:
        """``OUT.sanity.summary.json``: the criterion and every entry."""
        return {"pass_below": PASS_BELOW, "confidence": 0.95,
                "criterion": ("cascade: upper 95 % bound of the mean Spearman rho of the "
                              "absolute maps after full randomisation below pass_below; random "
                              "logit: upper 95 % bound of the mean SSIM below pass_below"),
                "entries": [e.as_json() for e in self.entries]}


def summarize_sanity(rows: Sequence[SanityRow], model_order: Sequence[str] = MODEL_KEYS
                     ) -> SanitySummary:
    """One entry per (model, method) present, models in ``model_order`` (a ladder's). Rows of
    one model and method must share their cascade steps (one granularity); otherwise
    ``ValueError``."""
    groups: dict[tuple[str, str], list[SanityRow]] = {}
    for row in rows:
        groups.setdefault((row.model, row.method), []).append(row)
    models = {k: i for i, k in enumerate(model_order)}
    methods = {k: i for i, k in enumerate(METHODS)}
    entries = []
    for (model, method), group in sorted(groups.items(), key=lambda item: (
            methods.get(item[0][1], 99), models.get(item[0][0], 99))):
        steps = {r.steps for r in group}
        if len(steps) != 1:
            raise ValueError(f"{model}, {method}: rows with different cascade steps (made with "
                             "another granularity); summarise them separately")
        labels = steps.pop()

        def per_step(field: str) -> tuple[Interval | None, ...]:
            return tuple(_mean_ci([getattr(r, field)[i] for r in group])
                         for i in range(len(labels)))

        entries.append(SanityEntry(
            model=model, method=method, n=len(group), steps=labels,
            spearman_abs=per_step("spearman_abs"), spearman=per_step("spearman"),
            ssim=per_step("ssim"),
            constant_final=sum(bool(np.isnan(r.spearman_abs[-1])) for r in group if labels),
            emprt=_mean_ci([r.emprt for r in group]),
            random_logit_ssim=_mean_ci([r.random_logit_ssim for r in group])))
    return SanitySummary(tuple(entries))
