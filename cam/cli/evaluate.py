"""``python -m cam evaluate``: every model's metrics on a validation folder, resumable, the
summary after the rows and the maps after the summary (``--save-maps``), the sanity checks
beside them (``--sanity``)."""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from cam.engine.methods import CamMethod
from safe_io.storage import atomic_write, free_bytes, free_space

from .args import log
from .figure import engine_of, val_dataset


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cam.eval.chunked import ResumeMismatch
    from cam.eval.run import run_evaluation
    from scaled_models.distributed import init_distributed

    dataset = val_dataset(args)
    if dataset is None:
        return 2
    if not len(dataset):
        log(f"error: {args.val_dir} holds no labelled image to evaluate")
        return 1
    if args.save_maps and not _room_for_maps(args, len(dataset.samples[:args.limit])):
        return 2
    dist = init_distributed(args.device)
    if dist.is_main:
        log(f"{len(dataset)} images ({dataset.layout} layout) in {args.val_dir}"
             + (f"; {len(dataset.skipped)} not usable" if dataset.skipped else ""))
        for path, reason in dataset.skipped[:20]:
            log(f"  skipped {path}: {reason}")
    if dist.world > 1:  # one GPU (or the CPU) per process
        args.zoo = dataclasses.replace(args.zoo, device=dist.device)
    engine = engine_of(args, verbose=dist.is_main)
    outputs, sanity_reports = [], []
    for i, method in enumerate(args.method):
        out = args.out if i == 0 else args.out.with_name(f"{args.out.stem}.{method.key}.csv")
        start = time.perf_counter()
        try:
            report = run_evaluation(engine, dataset, out, method, limit=args.limit,
                                    batch_size=args.batch_size, resume=args.resume,
                                    faithfulness_steps=args.faithfulness_steps, rank=dist.rank,
                                    world_size=dist.world, save_maps=args.save_maps,
                                    progress=dist.is_main and not args.quiet)
        except ResumeMismatch as exc:
            log(f"error: {exc}")
            return 2
        except OSError as exc:  # a full disk mid-run: the rows written so far stand
            log(f"error: {exc}. {_rows_kept(out, dist.rank, dist.world)}")
            return 1
        sanity = _run_sanity(args, engine, dataset, out, method, dist) if args.sanity else None
        for path, reason in report.skipped:
            log(f"skipped {path}: {reason}")
        if dist.is_main and report.computed_images:
            seconds = time.perf_counter() - start
            models = len(engine.zoo.available())
            log(f"{method.key}: {report.computed_images} images × {models} models in "
                 f"{seconds:.1f} s ({report.computed_images / seconds:.2f} images/s)")
        if sanity is False:
            return 2
        outputs.append((out, report))
        if sanity is not None:
            sanity_reports.append((out, sanity))
    dist.close()
    if not dist.is_main:
        return 0
    for out, report in outputs:
        if not report.rows:
            log(f"error: no image of {args.val_dir} could be evaluated, so {out} is empty")
            return 1
        try:
            _write_summaries(out, report, engine.zoo)
        except OSError as exc:
            log(f"error: {exc}. The rows are complete in {out}; run again with --resume to "
                 "write the summary and plots without computing anything")
            return 1
    for out, sanity in sanity_reports:
        _write_sanity(out, sanity, [m.key for m in engine.zoo.models])
    for out, report in outputs + sanity_reports:  # the maps last: the results above stand
        if report.write_maps is not None:
            try:
                print(f"wrote the maps: {', '.join(map(str, report.write_maps()))}")
            except OSError as exc:
                log(f"error: the maps of {out} could not be written ({exc}); the results "
                     f"above are complete, and --resume --save-maps writes the maps again")
                return 1
    return 0


def _run_sanity(args: argparse.Namespace, engine, dataset, out: Path, method: CamMethod, dist):
    """``--sanity``: the sanity checks of the same images beside ``out`` (``sanity_run``); the
    report, or ``False`` after saying why a resume was refused."""
    from cam.eval.chunked import ResumeMismatch
    from cam.eval.sanity_run import run_sanity

    start = time.perf_counter()
    try:
        report = run_sanity(engine, dataset, out, method, limit=args.limit,
                            batch_size=args.batch_size, resume=args.resume,
                            seed=args.sanity_seed, granularity=args.sanity_steps,
                            rank=dist.rank, world_size=dist.world, save_maps=args.save_maps,
                            progress=dist.is_main and not args.quiet)
    except ResumeMismatch as exc:
        log(f"error: {exc}")
        return False
    if dist.is_main and report.computed_images:
        per_model = ", ".join(f"{k} {s / report.computed_images:.2f} s/image"
                              for k, s in report.seconds.items())
        log(f"{method.key} sanity checks: {report.computed_images} images in "
             f"{time.perf_counter() - start:.1f} s ({per_model})")
    return report


def _write_sanity(out: Path, report, model_order: list[str]) -> None:
    """The sanity summary: printed, as JSON and as the cascade-curve PNG."""
    import json

    from cam.eval.layout import RunFiles
    from cam.eval.sanity_summary import summarize_sanity
    from cam.render.sanity_plots import cascade_plot
    from cam.render.sanity_text import sanity_markdown

    if not report.rows:
        return
    summary = summarize_sanity(report.rows, model_order)
    print(sanity_markdown(summary) + "\n")
    files = RunFiles(out).sanity
    atomic_write(files.summary, lambda p: p.write_text(
        json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8"))
    atomic_write(files.plot, lambda p: p.write_bytes(cascade_plot(summary)))
    print(f"wrote {files.rows} ({len(report.rows)} rows), {files.summary} and {files.plot}")


def _room_for_maps(args: argparse.Namespace, images: int) -> bool:
    """Whether --out's folder has room for the --save-maps shards of ``images`` images and the
    selected models (the least they need), said before any model loads."""
    from cam.eval.map_export import shard_bytes

    models = len(args.zoo.keys) + len(args.zoo.brought)
    needed = shard_bytes(images, models) * len(args.method)
    free = free_bytes(args.out.parent)
    if free is None or free >= needed:
        return True
    log(f"error: --save-maps: the maps of {images} images × {models} models need at "
         f"least {needed / 1e6:,.0f} MB in {args.out.parent} while the run goes, and there is "
         f"{free_space(args.out.parent)}: free some space, pass --limit, or leave out "
         "--save-maps")
    return False


def _rows_kept(out: Path, rank: int, world: int) -> str:
    """What a run that stopped on a write error keeps, in words."""
    from cam.eval.layout import rank_part
    from cam.eval.rows import MetricRow, read_rows

    written = rank_part(out, rank, world)
    try:
        rows = len(read_rows(written, MetricRow))
    except (OSError, ValueError):
        rows = 0
    if not rows:
        return "No row was written."
    return (f"The {rows} rows written so far are kept in {written}: free some space and run "
            "again with --resume to compute only the rest")


def _write_summaries(out: Path, report, zoo) -> None:
    """The summary printed (the zoo's models in its ladder's order, compared as the ladder
    says), and written beside the CSV as JSON and two plots."""
    import json

    from cam.eval.layout import RunFiles
    from cam.eval.summary import Lineup, summarize
    from cam.render.summary_plots import agreement_plot, summary_plot
    from cam.render.summary_text import summary_markdown

    def write(path: Path, data: bytes) -> None:
        atomic_write(path, lambda p: p.write_bytes(data))

    files = RunFiles(out)
    lineup = Lineup.of([m.column for m in zoo.models])
    for summary in summarize(report.rows, report.agreement_rows, lineup):
        print(summary_markdown(summary) + "\n")
        write(files.summary, (json.dumps(summary.as_json(), indent=2) + "\n").encode("utf-8"))
        write(files.plot, summary_plot(summary))
        write(files.agreement_plot, agreement_plot(summary))
    print(f"wrote {out} ({len(report.rows)} rows), {files.agreement}, {files.summary}, "
          f"{files.plot} and {files.agreement_plot}")
