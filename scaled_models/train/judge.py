"""A run judged on the images it is not fit to (``run.judged_on``, main process only): the
student before training and the baseline at its own resolution once at the start, the model
being trained after each judged epoch, and, after the last, its maps beside the baseline's and
the teacher's. What is measured is ``evaluation``'s; this module says when, and on which
models of the run."""
from __future__ import annotations

from ..family import WeightsUnavailable
from . import evaluation
from .evaluation import Outcomes
from .run import Run
from .teachers import baseline_teacher


def judge_start(run: Run) -> None:
    """Before any training: the student as it starts and the baseline at its own resolution, on
    the images the trained model will be judged on (main process). A baseline that cannot be
    loaded is recorded as not measured, never fatal."""
    if run.judged_on is None:
        return
    images, device = run.judged_on.images, run.dist.device
    run.start_outcomes = evaluation.outcomes((run.student, run.preprocessing), images, device)
    if run.teacher is not None and run.config.recipe.teacher == "baseline":
        baseline = run.teacher
    else:
        try:
            baseline = baseline_teacher(run.config.family)
        except WeightsUnavailable as exc:
            run.not_measured["baseline"] = exc.reason
            run.log(f"warning: the baseline is not measured: {exc.reason}")
            return
    run.baseline_outcomes = evaluation.outcomes(
        (baseline.net.to(device), baseline.preprocessing), images, device)


def evaluate(run: Run) -> Outcomes | None:
    """The model being trained on the images it is judged on (main process only); when the
    model is the student's moving average, the student itself too (``run.without_ema``), so
    the checkpoint says what the average bought."""
    if run.judged_on is None:
        return None
    if run.ema is not None:
        run.without_ema = evaluation.outcomes((run.student, run.preprocessing),
                                              run.judged_on.images, run.dist.device)
    return evaluation.outcomes((run.final_net, run.preprocessing), run.judged_on.images,
                               run.dist.device)


def held_out(run: Run, trained: Outcomes | None) -> dict | None:
    """The checkpoint's record of how the model does on images it was not fit to, beside its
    start and the baseline; ``{"not_judged": why}`` when the run has nothing to judge it on,
    ``None`` for an epoch that was not due to be judged (``--eval-every``)."""
    if run.judged_on is None:
        return {"not_judged": run.not_judged}
    if trained is None or run.start_outcomes is None:
        return None
    return evaluation.comparison(trained, run.start_outcomes, run.baseline_outcomes,
                                 run.judged_on.record | {"not_measured": dict(run.not_measured)},
                                 run.without_ema)


def map_agreement(run: Run) -> dict:
    """How close the model's maps are to the baseline's and (distillation) to the teacher's, on
    the images it is judged on."""
    baseline = baseline_teacher(run.config.family)
    references = {"baseline": (baseline.net.to(run.dist.device), baseline.preprocessing)}
    if run.teacher is not None and run.config.recipe.teacher == "outside":
        references["teacher"] = (run.teacher.net, run.teacher.preprocessing)
    return evaluation.agreement_with((run.final_net, run.preprocessing), references,
                                     run.judged_on.images, run.dist.device)


def judged_words(run: Run, trained: Outcomes | None) -> str:
    """The epoch line's words on the judged images: the model beside its start."""
    if trained is None:
        return ""
    top1, start = trained.summary()["top1"], run.start_outcomes.summary()["top1"]
    without = (f"; without EMA {run.without_ema.summary()['top1']:.2f} %"
               if run.without_ema is not None else "")
    return (f", top-1 {top1:.2f} % on {len(trained.top1)} unseen images (start {start:.2f} %"
            f"{without})")
