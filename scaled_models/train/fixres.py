"""FixRes for the resolution role: the baseline adapted to Table 7's resolution, on a CPU.

Touvron et al. ("Fixing the train-test resolution discrepancy", NeurIPS 2019, §4) show that a
network run at a higher test resolution than it was trained at is mostly off in its activation
statistics, and recover (and beat) its accuracy by (1) re-estimating BatchNorm statistics at the
new resolution and (2) fine-tuning only the last layers: the classifier and the BatchNorm that
precedes the global pooling. Here the target of (2) is the baseline's own prediction at its
training resolution on the same photo (self-distillation: no label, no outside teacher), so the
448 px model learns to say what the 224 px model says without borrowing anyone's localization.
With a few hundred photos only the BatchNorm is fine-tuned by default: the classifier's 1.28 M
weights overfit them (``recipes.trainable_parameters``).

Because only the head is trained, the network below it is run once per photo (and its mirror)
and its output cached: the fine-tuning epochs then cost almost nothing, and the whole adaptation
takes minutes on two CPU cores.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .data import CropDataset, normalise, skip_unreadable, test_time_crop
from .recipes import reestimate_batchnorm

if TYPE_CHECKING:  # cli imports this module
    from .cli import Run


@torch.no_grad()
def cache_head_inputs(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs of the head BatchNorm, teacher logits) for every photo and its mirror image."""
    from tqdm import tqdm

    trunk, _ = run.family.split_at_head_norm(run.student)
    loader = torch.utils.data.DataLoader(
        CropDataset(run.images, test_time_crop(run.preprocessing)),
        batch_size=run.args.batch_size, num_workers=run.args.workers,
        collate_fn=skip_unreadable)
    run.student.eval()
    features, targets = [], []
    teacher_res = run.teacher.preprocessing.resolution
    for batch in tqdm(loader, desc="caching head inputs", unit="batch", file=sys.stderr,
                      dynamic_ncols=True):
        if batch is None:
            continue
        crops = batch[0].to(run.dist.device)
        for view in (crops, crops.flip(-1)):
            features.append(trunk(normalise(view, run.preprocessing)).to(torch.float16).cpu())
            targets.append(run.teacher.net(normalise(view, run.teacher.preprocessing,
                                                     teacher_res)).float().cpu())
    return torch.cat(features), torch.cat(targets)


def fine_tune_head(run: Run, features: torch.Tensor, targets: torch.Tensor) -> float:
    """Fine-tune the head BatchNorm's affine parameters (and the classifier if asked) to match
    the teacher's probabilities (KL divergence, temperature 1); returns the last epoch's mean
    loss."""
    from tqdm import tqdm

    _, head_norm = run.family.split_at_head_norm(run.student)
    net = run.student
    net.eval()  # statistics stay as re-estimated; only the affine maps and the classifier move
    generator = torch.Generator().manual_seed(run.args.seed)
    loss_sum = seen = 0.0
    bar = tqdm(total=run.args.epochs * run.steps_per_epoch, desc="fine-tuning head", unit="step",
               file=sys.stderr, dynamic_ncols=True)
    for run.epoch in range(run.epoch, run.args.epochs):
        order = torch.randperm(len(features), generator=generator)
        loss_sum = seen = 0.0
        starts = range(0, len(order), run.args.batch_size)[:run.steps_per_epoch]  # --limit-steps
        for start in starts:
            index = order[start:start + run.args.batch_size]
            x = features[index].to(run.dist.device, torch.float32)
            logits = net.fc(net.dropout(head_norm(x).mean((2, 3))))
            loss = F.kl_div(F.log_softmax(logits, 1), F.log_softmax(
                targets[index].to(run.dist.device), 1), reduction="batchmean", log_target=True)
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            run.scheduler.step()
            run.step += 1
            run.images_seen += len(index)
            loss_sum += float(loss.detach()) * len(index)
            seen += len(index)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            bar.update()
    run.epoch = run.args.epochs
    bar.close()
    return loss_sum / max(seen, 1)


def adapt(run: Run) -> float:
    """The whole FixRes adaptation of ``run.student``; returns the final fine-tuning loss."""
    import time

    start = time.perf_counter()
    loader = torch.utils.data.DataLoader(
        CropDataset(run.images, test_time_crop(run.preprocessing)),
        batch_size=run.args.batch_size, num_workers=run.args.workers,
        collate_fn=skip_unreadable)
    from tqdm import tqdm

    batches = tqdm(loader, desc=f"BatchNorm statistics at {run.preprocessing.resolution} px",
                   unit="batch", file=sys.stderr, dynamic_ncols=True)
    run.bn_images = reestimate_batchnorm(run.student, batches, run.dist.device,
                                         lambda x: normalise(x, run.preprocessing))
    features, targets = cache_head_inputs(run)
    loss = fine_tune_head(run, features, targets)
    run.wall_time_s += time.perf_counter() - start
    return loss

