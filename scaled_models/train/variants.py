"""python -m scaled_models.train.variants: the variants table of a role, from checkpoints' JSON.

Every checkpoint the trainer writes keeps each judged image's top-1 outcome for the model, its
start and the baseline (``evaluation.comparison``), so variants judged on the *same* images can
be compared pairwise afterwards without running a model: top-1 with its 95 % bootstrap
interval, top-5, mean top-1 probability, and each variant minus its start, the baseline and a
reference checkpoint (the one shipped, say) as a paired difference with its interval and the
exact McNemar test. Variants judged on other images are refused: their outcomes do not pair.

    python -m scaled_models.train.variants shipped=scaled_models/checkpoints/lite/resolution.json \\
        A=/tmp/a/lite/resolution.json B=/tmp/b/lite/resolution.json --reference shipped
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from cam.eval.stats import PairedDifference, bootstrap_mean_ci, paired_difference

from ..checkpoint_meta import CheckpointMeta
from ..family import WeightsUnavailable


@dataclass(frozen=True)
class Outcome:
    """One model's judged outcomes as a checkpoint records them (``Outcomes.summary``)."""

    name: str
    top1: tuple[bool, ...]
    top5: float  # percent
    mean_top1_prob: float
    spearman: tuple[float, float, float] | None = None  # maps vs the baseline's: mean, 95 % CI
    images_seen: int | None = None
    wall_time_s: float | None = None

    @classmethod
    def from_summary(cls, name: str, summary: dict, **more) -> Outcome:
        return cls(name, tuple(c == "1" for c in summary["top1_per_image"]),
                   float(summary["top5"]), float(summary["mean_top1_prob"]), **more)


@dataclass(frozen=True)
class Variant:
    """A checkpoint's model, with what it is compared with on the same images: its start and
    the baseline; ``without_ema`` when the model is a moving average of a student."""

    model: Outcome
    start: Outcome
    baseline: Outcome | None
    without_ema: Outcome | None
    judged_on: str  # the judged files' fingerprint


def read_variant(name: str, path: Path) -> Variant:
    """A checkpoint's JSON as a ``Variant``; a checkpoint judged on nothing is refused."""
    path = Path(path)
    try:
        meta = CheckpointMeta.from_record(json.loads(path.read_text(encoding="utf-8")),
                                          str(path))
    except WeightsUnavailable as exc:
        raise SystemExit(f"error: {exc.reason}") from None
    evaluation = meta.evaluation
    if "trained" not in evaluation or "start" not in evaluation:
        raise SystemExit(f"{path}: not judged on held-out images, so it has no outcomes to "
                         "compare")
    judged_on = ((meta.data.held_out_fingerprint if meta.data is not None else None)
                 or evaluation["on"].get("fingerprint"))
    model = Outcome.from_summary(name, evaluation["trained"], spearman=meta.spearman,
                                 images_seen=meta.images_seen, wall_time_s=meta.wall_time_s)
    start = Outcome.from_summary("start", evaluation["start"])
    baseline = (Outcome.from_summary("baseline", evaluation["baseline"])
                if "baseline" in evaluation else None)
    without = (Outcome.from_summary(f"{name}, without EMA", evaluation["without_ema"])
               if "without_ema" in evaluation else None)
    return Variant(model, start, baseline, without, str(judged_on))


def _signed(value: float) -> str:
    text = f"{value:+.1f}"
    return "0.0" if float(text) == 0.0 else text.replace("-", "−")


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def difference_cell(a: Outcome, b: Outcome | None) -> str:
    """a − b in top-1 points with its 95 % interval, the images only each gets right, and the
    exact McNemar p: "+4.8 [+1.2, +8.4]; 19 / 7, p = 0.03"."""
    if b is None or a is b:
        return "—"
    diff: PairedDifference = paired_difference(a.top1, b.top1, binary=True)
    return (f"{_signed(100 * diff.mean)} [{_signed(100 * diff.low)}, {_signed(100 * diff.high)}];"
            f" {diff.a_only} / {diff.b_only}, {_p(diff.p)}")


def table(variants: dict[str, Variant], reference: str | None = None) -> str:
    """The markdown table: the start, each variant (and its student without EMA), the
    baseline; each model's top-1 [95 % CI], top-5, mean top-1 probability, its paired top-1
    difference with the start, the baseline and ``reference``, its maps' Spearman with the
    baseline's, images seen and wall time."""
    first = next(iter(variants.values()))
    differ = [name for name, v in variants.items() if v.judged_on != first.judged_on]
    if differ:
        raise SystemExit(f"{', '.join(differ)}: judged on other images than "
                         f"{next(iter(variants))} (fingerprint), so their outcomes do not pair")
    if reference is not None and reference not in variants:
        raise SystemExit(f"--reference {reference}: not one of {', '.join(variants)}")
    ref = variants[reference].model if reference else None
    columns = ["model", "top-1 [95 % CI]", "top-5", "mean top-1 prob.",
               "− start: points [95 % CI]; right only (model / start), McNemar",
               "− baseline: likewise"]
    if ref is not None:
        columns.append(f"− {reference}: likewise")
    columns += ["maps' Spearman with the baseline's", "images seen, wall time"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]

    def row(model: Outcome, start: Outcome | None, baseline: Outcome | None) -> None:
        top1 = bootstrap_mean_ci([float(x) for x in model.top1])
        cells = [model.name, f"{100 * top1.mean:.1f} [{100 * top1.low:.1f}, "
                             f"{100 * top1.high:.1f}]",
                 f"{model.top5:.1f}", f"{model.mean_top1_prob:.2f}",
                 difference_cell(model, start), difference_cell(model, baseline)]
        if ref is not None:
            cells.append(difference_cell(model, ref))
        cells.append("—" if model.spearman is None else
                     f"{model.spearman[0]:.2f} [{model.spearman[1]:.2f}, {model.spearman[2]:.2f}]")
        cells.append("—" if model.images_seen is None else
                     f"{model.images_seen:,}, {model.wall_time_s:,.0f} s")
        lines.append("| " + " | ".join(cells) + " |")

    row(first.start, None, first.baseline)
    for variant in variants.values():
        row(variant.model, variant.start, variant.baseline)
        if variant.without_ema is not None:
            row(variant.without_ema, variant.start, variant.baseline)
    if first.baseline is not None:
        row(first.baseline, first.start, None)
    starts = {v.start.top1 for v in variants.values()}
    if len(starts) > 1:
        lines.append("")
        lines.append("The start's outcomes differ between checkpoints (measured on different "
                     "machines); each variant is compared with its own start, the first row is "
                     f"{next(iter(variants))}'s.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaled_models.train.variants",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", metavar="NAME=JSON",
                   help="a row's name and the checkpoint's .json, in the table's order")
    p.add_argument("--reference", default=None,
                   help="the NAME every variant is also compared with (e.g. the shipped one)")
    args = p.parse_args(argv)
    variants = {}
    for item in args.checkpoints:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            p.error(f"{item!r}: give NAME=PATH")
        variants[name] = read_variant(name, Path(path))
    print(table(variants, args.reference))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
