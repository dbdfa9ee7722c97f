"""A ``SanitySummary`` in words: the table ``cam evaluate --sanity`` prints and the README keeps,
and the sentence the app shows under its cascade, saying which maps pass and what passing
means."""
from __future__ import annotations

from cam.engine.methods import METHODS
from cam.eval.sanity_summary import PASS_BELOW, SanityEntry, SanitySummary
from cam.eval.stats import Interval

CHECKS_MEANING = (
    "Passing means the map depends on what the model learned and on the class it explains: "
    "after the whole network is re-initialised its map keeps less than half of the trained "
    "map's ranking (Adebayo et al. 2018), and the map of another class keeps less than half of "
    f"its structure (Sixt et al. 2020); both judged on the upper end of the 95 % interval "
    f"(threshold {PASS_BELOW}).")


def _interval(value: Interval | None) -> str:
    return "—" if value is None else f"{value.mean:.2f} [{value.low:.2f}, {value.high:.2f}]"


def verdict(passes: bool | None) -> str:
    return "—" if passes is None else ("pass" if passes else "fail")


def sanity_markdown(summary: SanitySummary) -> str:
    """One row per method and model: ρ after the first step (fc), the head, and full
    randomisation; eMPRT; random-logit SSIM; the verdicts."""
    lines = ["| method | model | n | ρ after fc | ρ after head | ρ fully randomised | "
             "eMPRT | random-logit SSIM | cascade | random logit |",
             "|---" * 10 + "|"]
    for e in summary.entries:
        label = METHODS[e.method].label if e.method in METHODS else e.method
        lines.append(
            f"| {label} | {e.model} | {e.n} | {_interval(e.spearman_abs[0])} | "
            f"{_interval(e.spearman_abs[1]) if len(e.steps) > 1 else '—'} | "
            f"{_interval(e.spearman_abs[-1])} | {_interval(e.emprt)} | "
            f"{_interval(e.random_logit_ssim)} | {verdict(e.cascade_passes)} | "
            f"{verdict(e.random_logit_passes)} |")
    return ("Sanity checks, mean [95 % CI] over images; ρ: Spearman of the absolute maps with "
            "the trained model's map.\n\n" + "\n".join(lines) + "\n\n" + CHECKS_MEANING)


def entry_sentence(entry: SanityEntry) -> str:
    """One model's maps through the checks, in a sentence."""
    final = entry.spearman_abs[-1]
    parts = [f"{entry.model}: after full randomisation ρ = {_interval(final)} "
             f"({verdict(entry.cascade_passes)})"]
    if entry.random_logit_ssim is not None:
        parts.append(f"random-logit SSIM {_interval(entry.random_logit_ssim)} "
                     f"({verdict(entry.random_logit_passes)})")
    if entry.emprt is not None:
        rises = {True: "rises", False: "does not rise measurably", None: "—"}
        parts.append(f"complexity {rises[entry.complexity_rises]} (eMPRT "
                     f"{_interval(entry.emprt)})")
    return "; ".join(parts) + f"; n = {entry.n}."
