"""The training itself: epochs of steps for the recipes that train the network (resumable, judged
every ``--eval-every`` epochs, saved after each), and FixRes's adaptation, which runs whole."""
from __future__ import annotations

import sys
import time

import torch
from torch import nn

from cam.engine.heap import retained_heap

from . import fixres
from .data import normalise
from .epoch_log import log_epoch, set_aside
from .evaluation import Outcomes
from .judge import evaluate, judge_start, judged_words
from .recipes import NonFiniteLoss, frozen_units, loss_for, mix
from .run import Run, channels_last
from .save import kept_words, resume, save


def train(run: Run) -> int:
    """Every epoch up to ``--epochs`` (or ``--stop-after`` more), from the saved state with
    ``--resume``; each is logged and saved, and judged when due.

    The run keeps the C heap (``cam.engine.heap``): a step's activations at 448 px are blocks
    of tens of MB, which glibc otherwise maps afresh for every step and unmaps when they are
    freed, so the kernel zeroes each page again — a fifth of a 2-core CPU's time went to the
    kernel in the match recipe's steps (``vmstat``); its first 20-25 steps fitted 1.8-2.1 photos
    a second, 2.3-3.0 with the heap kept (two paired starts; where compared, the same loss to
    the fourth decimal: the heap changes no arithmetic). Its peak stays the process's until it
    ends."""
    with retained_heap():
        return _epochs(run)


def _epochs(run: Run) -> int:
    config, dist = run.config, run.dist
    if config.resume and config.state_path.is_file():
        resume(run)
    elif config.resume:
        run.log(f"--resume: no saved training state at {config.state_path}, so this run starts "
                "from the first epoch")
    if run.epoch == 0 and dist.is_main:
        keep_earlier_log(run)
        judge_start(run)
    stop_at = min(config.epochs,
                  run.epoch + config.stop_after if config.stop_after else config.epochs)
    while run.epoch < stop_at:
        run.sampler.set_epoch(run.epoch)
        try:
            loss, images_per_s = train_epoch(run)
        except NonFiniteLoss as exc:
            raise SystemExit(f"error: {exc}. {kept_words(run)}") from None
        run.epoch += 1
        dist.barrier()
        judge_now = run.epoch % config.eval_every == 0 or run.epoch == config.epochs
        trained = evaluate(run) if dist.is_main and judge_now else None
        if dist.is_main:
            run.log(f"epoch {run.epoch}/{config.epochs}: loss {loss:.4f}"
                    f"{judged_words(run, trained)}, {images_per_s:.1f} images/s")
            record_epoch(run, loss, images_per_s, trained)
        save(run, loss, trained)
    dist.barrier()
    dist.close()
    run.log(f"wrote {config.weights_path} ({run.step} steps, "
            f"{run.images_seen} images seen, {run.wall_time_s:.0f} s)"
            + (f"; not judged: {run.not_judged}" if run.not_judged else ""))
    return 0


def train_epoch(run: Run) -> tuple[float, float]:
    """One pass (or ``steps_per_epoch`` steps); returns (mean loss, images/s)."""
    from tqdm import tqdm

    run.model.train()
    if run.config.recipe.frozen_bn_statistics:
        for module in run.student.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
    for module in frozen_units(run.student, run.config.frozen_blocks):
        module.eval()  # their BatchNorm statistics stay the start's too
    total_loss, seen, start = 0.0, 0, time.perf_counter()
    bar = tqdm(total=run.steps_per_epoch, desc=f"epoch {run.epoch + 1}", unit="step",
               disable=not run.dist.is_main, dynamic_ncols=True, file=sys.stderr)
    for i, batch in enumerate(run.loader):
        if i >= run.steps_per_epoch:
            break
        if batch is None:
            continue
        loss, count = train_step(run, *batch)
        total_loss += loss * count
        seen += count
        bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{seen / (time.perf_counter() - start):.1f}")
        bar.update()
    bar.close()
    elapsed = time.perf_counter() - start
    run.wall_time_s += elapsed
    run.images_seen += seen * run.dist.world
    return total_loss / max(seen, 1), seen / max(elapsed, 1e-9)


def train_step(run: Run, crops: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
    config, device = run.config, run.dist.device
    crops, labels = crops.to(device, non_blocking=True), labels.to(device)
    if config.recipe.mixup:
        crops = mix(crops, config.recipe.mixup)
    inputs = normalise(crops, run.preprocessing)
    if channels_last(config, device):
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    teacher_logits = None
    if run.teacher is not None:
        with torch.no_grad():
            size = run.teacher.view_size(crops.shape[-1], run.preprocessing.resolution)
            teacher_logits = run.teacher.net(normalise(crops, run.teacher.preprocessing, size))
    with torch.autocast(device.type, dtype=config.autocast, enabled=config.autocast is not None):
        logits = run.model(inputs)
    loss = loss_for(config.recipe, logits, teacher_logits, labels, config.temperature)
    if not torch.isfinite(loss):  # before the step: it would make every weight NaN
        raise NonFiniteLoss(f"epoch {run.epoch + 1}, step {run.step + 1}: the loss is "
                            f"{float(loss.detach())}, so training stopped before that step")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update_parameters(run.student)
    run.step += 1
    return float(loss.detach()), len(labels)


def adapt_at_resolution(run: Run) -> int:
    """The FixRes recipe: minutes on a CPU, so it runs whole (no --resume)."""
    if run.dist.world > 1:
        raise SystemExit("fixres runs in one process; it takes minutes on a CPU")
    keep_earlier_log(run)
    judge_start(run)
    try:
        adapted = fixres.adapt(run.config, run.student, run.images, run.preprocessing,
                               run.teacher, run.optimizer, run.scheduler, run.steps_per_epoch,
                               run.dist.device)
    except NonFiniteLoss as exc:
        raise SystemExit(f"error: {exc}. {kept_words(run)}") from None
    run.epoch = run.config.epochs
    run.step += adapted.steps
    run.images_seen += adapted.images_seen
    run.wall_time_s += adapted.wall_time_s
    run.bn_images = adapted.bn_images
    trained = evaluate(run)
    run.log(f"adapted in {run.wall_time_s:.0f} s: loss {adapted.loss:.4f}"
            f"{judged_words(run, trained)}")
    record_epoch(run, adapted.loss, run.images_seen / max(run.wall_time_s, 1e-9), trained)
    save(run, adapted.loss, trained)
    run.log(f"wrote {run.config.weights_path} ({run.step} steps)"
            + (f"; not judged: {run.not_judged}" if run.not_judged else ""))
    return 0


def keep_earlier_log(run: Run) -> None:
    """A run starting from its first epoch keeps an earlier log (of a run that saved no
    checkpoint here) under another name instead of appending to it."""
    kept = set_aside(run.config.log_dir)
    if kept is not None:
        run.log(f"the log of an earlier run is kept as {kept}")


def record_epoch(run: Run, loss: float, images_per_s: float, trained: Outcomes | None) -> None:
    """The epoch's row in the run's log: its loss, speed, learning rate and judged top-1."""
    log_epoch(run.config.log_dir, run.epoch, run.step, loss, images_per_s,
              run.scheduler.get_last_lr()[0],
              trained.summary()["top1"] if trained else None)
