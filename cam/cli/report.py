"""``python -m cam report``: one PDF with the grid, what each column is, the metrics of a
validation folder with their intervals, and (``--sanity``) the sanity checks."""
from __future__ import annotations

import argparse

from safe_io.storage import atomic_write

from .args import log
from .figure import grid_of, style_of, val_dataset


def cmd_report(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cam.eval.run import evaluate_samples
    from cam.eval.summary import Lineup, summarize
    from cam.render.report import build_report

    dataset = val_dataset(args)
    if dataset is None:
        return 2
    grid = grid_of(args)
    if grid is None:
        return 1
    engine, spec, notes = grid
    samples = dataset.samples[:args.limit]
    with tqdm(total=len(samples), unit="img", desc="measuring", disable=args.quiet) as bar:
        rows, agreement, skipped = evaluate_samples(engine, samples, args.method,
                                                    args.batch_size, args.faithfulness_steps,
                                                    bar.update)
    for path, reason in skipped:
        log(f"skipped {path}: {reason}")
    measured = len(samples) - len(skipped)
    summaries = summarize(rows, agreement, Lineup.of([m.column for m in engine.zoo.models]))
    sanity = _report_sanity(args, engine, samples) if args.sanity else None
    labelled = summaries[0].n_labelled if summaries else 0
    notes = notes + [f"Metrics: {labelled} labelled of the {measured} images read from "
                     f"{args.val_dir}; the grid "
                     f"shows {len(spec.rows)} image(s), target: {args.target.label}."]
    pdf = build_report(spec, style_of(args), engine.zoo, summaries[0] if summaries else None,
                       notes, sanity)
    try:
        atomic_write(args.out, lambda p: p.write_bytes(pdf))
    except OSError as exc:
        log(f"error: {exc}")
        return 1
    print(f"wrote {args.out} ({len(pdf) / 1e6:.1f} MB)")
    return 0


def _report_sanity(args: argparse.Namespace, engine, samples):
    """``report --sanity``: the checks of the report's images, summarised for its page."""
    from cam.engine.inputs import image_from_sample
    from cam.eval.run import runnable
    from cam.eval.sanity import cascade_maps, sanity_row
    from cam.eval.sanity_summary import summarize_sanity
    from scaled_models.architectures import CamNet

    rows = []
    for start in range(0, len(samples), args.batch_size):
        images = []
        for sample in samples[start:start + args.batch_size]:
            try:
                images.append(image_from_sample(sample))
            except ValueError as exc:
                log(f"skipped {exc}")
        for model in runnable(engine, args.method):
            if isinstance(model.net, CamNet):  # the cascade walks a CamNet's layers
                rows += [sanity_row(m, engine.zoo.family.name) for m in cascade_maps(
                    engine, images, model, args.method, args.sanity_seed, args.sanity_steps)]
    return summarize_sanity(rows, [m.key for m in engine.zoo.models])
