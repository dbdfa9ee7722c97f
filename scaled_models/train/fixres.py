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
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..architectures import CamNet
from ..preprocessing import Preprocessing
from .config import TrainConfig
from .data import CropDataset, ImageSet, normalise, skip_unreadable, test_time_crop
from .recipes import NonFiniteLoss, reestimate_batchnorm
from .teachers import Teacher


@dataclass(frozen=True)
class Adaptation:
    """What the adaptation did: its last fine-tuning loss and the counts a checkpoint reports."""

    loss: float
    bn_images: int  # photos the BatchNorm statistics were re-estimated on
    steps: int
    images_seen: int  # cached views the head was fine-tuned on, over every epoch
    wall_time_s: float


def _test_time_loader(config: TrainConfig, images: ImageSet, preprocessing: Preprocessing
                      ) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        CropDataset(images, test_time_crop(preprocessing)),
        batch_size=config.batch_size, num_workers=config.workers, collate_fn=skip_unreadable)


@torch.no_grad()
def cache_head_inputs(config: TrainConfig, net: CamNet, images: ImageSet,
                      preprocessing: Preprocessing, teacher: Teacher, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs of the head BatchNorm, teacher logits) for every photo and its mirror image."""
    from tqdm import tqdm

    trunk, _ = config.family.split_at_head_norm(net)
    loader = _test_time_loader(config, images, preprocessing)
    net.eval()
    features, targets = [], []
    teacher_res = teacher.preprocessing.resolution
    for batch in tqdm(loader, desc="caching head inputs", unit="batch", file=sys.stderr,
                      dynamic_ncols=True):
        if batch is None:
            continue
        crops = batch[0].to(device)
        for view in (crops, crops.flip(-1)):
            features.append(trunk(normalise(view, preprocessing)).to(torch.float16).cpu())
            targets.append(teacher.net(normalise(view, teacher.preprocessing,
                                                 teacher_res)).float().cpu())
    return torch.cat(features), torch.cat(targets)


def fine_tune_head(config: TrainConfig, net: CamNet, features: torch.Tensor,
                   targets: torch.Tensor, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, steps_per_epoch: int,
                   device: torch.device) -> tuple[float, int, int]:
    """Fine-tune the head BatchNorm's affine parameters (and the classifier if asked) to match
    the teacher's probabilities (KL divergence, temperature 1) for ``config.epochs`` epochs of
    at most ``steps_per_epoch`` steps; returns the last epoch's mean loss, the steps taken and
    the views seen."""
    from tqdm import tqdm

    _, head_norm = config.family.split_at_head_norm(net)
    net.eval()  # statistics stay as re-estimated; only the affine maps and the classifier move
    generator = torch.Generator().manual_seed(config.seed)
    loss_sum = seen = 0.0
    steps = views = 0
    bar = tqdm(total=config.epochs * steps_per_epoch, desc="fine-tuning head", unit="step",
               file=sys.stderr, dynamic_ncols=True)
    for _ in range(config.epochs):
        order = torch.randperm(len(features), generator=generator)
        loss_sum = seen = 0.0
        starts = range(0, len(order), config.batch_size)[:steps_per_epoch]  # --limit-steps
        for start in starts:
            index = order[start:start + config.batch_size]
            x = features[index].to(device, torch.float32)
            logits = net.fc(net.dropout(head_norm(x).mean((2, 3))))
            loss = F.kl_div(F.log_softmax(logits, 1), F.log_softmax(
                targets[index].to(device), 1), reduction="batchmean", log_target=True)
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"head fine-tuning, step {steps + 1}: the loss is "
                                    f"{float(loss.detach())}, so the adaptation stopped")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            steps += 1
            views += len(index)
            loss_sum += float(loss.detach()) * len(index)
            seen += len(index)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            bar.update()
    bar.close()
    return loss_sum / max(seen, 1), steps, views


def adapt(config: TrainConfig, net: CamNet, images: ImageSet, preprocessing: Preprocessing,
          teacher: Teacher, optimizer: torch.optim.Optimizer,
          scheduler: torch.optim.lr_scheduler.LRScheduler, steps_per_epoch: int,
          device: torch.device) -> Adaptation:
    """The whole FixRes adaptation of ``net`` (in place) to ``preprocessing``'s resolution,
    from the first epoch to ``config.epochs``: FixRes runs whole, never resumed."""
    from tqdm import tqdm

    start = time.perf_counter()
    batches = tqdm(_test_time_loader(config, images, preprocessing),
                   desc=f"BatchNorm statistics at {preprocessing.resolution} px",
                   unit="batch", file=sys.stderr, dynamic_ncols=True)
    bn_images = reestimate_batchnorm(net, batches, device,
                                     lambda x: normalise(x, preprocessing))
    features, targets = cache_head_inputs(config, net, images, preprocessing, teacher, device)
    loss, steps, views = fine_tune_head(config, net, features, targets, optimizer, scheduler,
                                        steps_per_epoch, device)
    return Adaptation(loss, bn_images, steps, views, time.perf_counter() - start)
