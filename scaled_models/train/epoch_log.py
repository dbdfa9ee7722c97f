"""The run's log, one row per epoch: ``epochs.csv`` (epoch, steps, loss, held-out top-1,
images/s, learning rate) and the same scalars for TensorBoard when it is installed. A resumed
run trims the rows it will train again, so each epoch is listed once."""
from __future__ import annotations

import csv
from pathlib import Path

from safe_io.storage import atomic_write

LOG_FILE = "epochs.csv"


def log_epoch(folder: Path, epoch: int, steps: int, loss: float, images_per_s: float, lr: float,
              top1: float | None) -> None:
    """Append one epoch's row to ``folder``'s log (``top1`` is ``None`` when nothing was judged
    this epoch)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        out = csv.writer(fh)
        if new:
            out.writerow(["epoch", "steps", "loss", "eval_top1", "images_per_s", "lr"])
        out.writerow([epoch, steps, f"{loss:.6f}", "" if top1 is None else top1,
                      f"{images_per_s:.2f}", f"{lr:.6g}"])
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return
    with SummaryWriter(str(folder)) as writer:
        for name, value in (("loss", loss), ("images_per_s", images_per_s), ("lr", lr)):
            writer.add_scalar(name, value, epoch)
        if top1 is not None:
            writer.add_scalar("eval/top1", top1, epoch)


def trim_epoch_log(folder: Path, epoch: int) -> None:
    """Drop the log's rows after ``epoch``: epochs logged but not saved (a run killed between
    its log line and its checkpoint) are trained again, and must not be listed twice."""
    path = folder / LOG_FILE
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) <= epoch]
    if kept != lines:
        atomic_write(path, lambda p: p.write_text("".join(kept)))


def set_aside(folder: Path) -> Path | None:
    """Keep an earlier run's log out of a fresh run's way: ``epochs.csv`` renamed to
    ``epochs.1.csv`` (or the next free number), so the new log starts at its own epoch 1 and
    the earlier rows stay. Returns the new name, or ``None`` when there was no log."""
    path = folder / LOG_FILE
    if not path.is_file():
        return None
    number = 1
    while (kept := path.with_name(f"{path.stem}.{number}{path.suffix}")).exists():
        number += 1
    path.rename(kept)
    return kept
