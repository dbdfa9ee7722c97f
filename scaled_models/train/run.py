"""One training invocation's working state, built from its ``TrainConfig``: the student, its
teacher, the photos and their loader, the optimiser and schedule, and the counters that the loop
advances and a checkpoint records. The config says what was asked; the ``Run`` is what changes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from safe_io.storage import StorageError, check_writable

from ..distributed import Distributed
from ..preprocessing import Preprocessing
from .config import TrainConfig
from .data import (
    CropDataset,
    FitPhotos,
    HoldoutSplit,
    fit_photos,
    skip_unreadable,
    test_time_crop,
    train_crop,
    training_images,
)
from .evaluation import EvaluationSet, Outcomes, evaluation_set, not_judged_reason
from .recipes import lr_factor, make_optimizer, student_for, trainable_parameters
from .teachers import Teacher, baseline_teacher, resolve_teacher


@dataclass
class Run:
    """Everything one training invocation works with."""

    config: TrainConfig
    dist: Distributed
    student: nn.Module
    init: dict
    preprocessing: Preprocessing
    teacher: Teacher | None
    images: FitPhotos  # what the model is fit to: --data's training side, --extra-data
    split: HoldoutSplit | None
    loader: torch.utils.data.DataLoader
    sampler: torch.utils.data.DistributedSampler
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: torch.optim.swa_utils.AveragedModel | None
    scaler: torch.amp.GradScaler
    judged_on: EvaluationSet | None = None
    not_judged: str | None = None  # why nothing judges the model, when nothing does
    base_state: dict | None = None  # FixRes writes only what differs from these weights
    ddp: nn.Module | None = None
    epoch: int = 0
    step: int = 0
    images_seen: int = 0
    wall_time_s: float = 0.0
    bn_images: int = 0
    start_outcomes: Outcomes | None = None  # the student before training, on judged_on
    baseline_outcomes: Outcomes | None = None  # the baseline at its resolution, likewise
    without_ema: Outcomes | None = None  # the student itself when the model is its EMA
    not_measured: dict[str, str] = field(default_factory=dict)  # what could not run, and why

    @property
    def final_net(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.student

    @property
    def model(self) -> nn.Module:
        """What the loop calls: the student, wrapped for DDP when several processes run."""
        return self.ddp if self.ddp is not None else self.student

    def log(self, text: str) -> None:
        """A line for the person running the trainer, from the main process only."""
        if self.dist.is_main:
            print(text, flush=True)


def build_run(config: TrainConfig, dist: Distributed) -> Run:
    """The run's state, its inputs checked first: the output folders hold no other run, the
    photos can be read, the output folders can be written (made only once the photos are
    found, so a mistyped folder leaves nothing behind), the images it is judged on can be read;
    only then are the networks loaded."""
    refuse_earlier_run(config)
    recipe, family = config.recipe, config.family
    found = training_images(config.data)
    extra = [training_images(folder, mixed=True) for folder in config.extra_data]
    if recipe.name == "paper" and (found.labels is None
                                   or any(-1 in part.labels for part in extra)):
        raise SystemExit(f"{found.root}: the paper recipe needs labels (photos in wnid folders)"
                         + (", in --extra-data too" if found.labels is not None else ""))
    if dist.is_main:  # before any work: a run must be able to keep what it makes
        ensure_writable(config.folder)
        ensure_writable(config.log_dir)
    train_side, split, judged_on = evaluation_set(config, found, dist.is_main)
    images = fit_photos(train_side, extra, judged_on.files if judged_on else (),
                        judged_on.root if judged_on else None)
    adapts_resolution = recipe.name == "fixres"
    preprocessing = family.preprocessing(config.image_size)
    student, init = student_for(family, config.model, recipe, config.seed)
    # a student that is the published baseline itself is written as what differs from it
    base_state = ({k: v.clone() for k, v in student.state_dict().items()}
                  if init["kind"] == "published" else None)
    student = student.to(dist.device)
    if channels_last(config, dist.device):
        student = student.to(memory_format=torch.channels_last)
    teacher = _teacher(config)
    if teacher is not None:
        teacher.net.to(dist.device).eval().requires_grad_(False)

    crop = (test_time_crop(preprocessing) if recipe.crop == "test-time"
            else train_crop(config.crop_size, config.autoaugment, config.crop_scale))
    dataset = CropDataset(images, crop)
    sampler = torch.utils.data.DistributedSampler(dataset, dist.world, dist.rank, shuffle=True,
                                                  seed=config.seed)
    global_batch = config.batch_size * dist.world
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.workers,
        pin_memory=dist.device.type == "cuda", collate_fn=skip_unreadable,
        drop_last=len(dataset) > global_batch)
    # FixRes sees every photo and its mirror once per epoch
    batches = -(-2 * len(images) // global_batch) if adapts_resolution else len(loader)
    steps = min(batches, config.limit_steps or batches)
    optimizer = make_optimizer(recipe, trainable_parameters(
        student, recipe, family, config.fine_tune_classifier, config.frozen_blocks), config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lr_factor(recipe, steps, config.epochs))
    ema = (torch.optim.swa_utils.AveragedModel(
        student, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay),
        use_buffers=True) if config.ema_decay else None)
    scaler = torch.amp.GradScaler("cuda", enabled=config.autocast == torch.float16)
    ddp = None
    if dist.world > 1:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(student, device_ids=ids)
    return Run(config, dist, student, init, preprocessing, teacher, images, split, loader,
               sampler, steps, optimizer, scheduler, ema, scaler, judged_on,
               None if judged_on else not_judged_reason(config, found), base_state, ddp)


def channels_last(config: TrainConfig, device: torch.device) -> bool:
    """Whether the student and its inputs use channels_last: on GPUs, and on CPUs that
    autocast."""
    return device.type == "cuda" or config.autocast is not None


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and write a file in it, or stop with the folder and the reason."""
    try:
        check_writable(folder)
    except StorageError as exc:
        raise SystemExit(f"{exc}; choose another --out or --log-dir") from None


def refuse_earlier_run(config: TrainConfig) -> None:
    """Stop before a run mixes with an earlier one in the same folders: a fresh run would
    overwrite that run's checkpoint and append a second epoch 1 to its log. ``--resume``
    continues it (recipes that keep a training state), another ``--out`` keeps both. (An
    earlier log without a checkpoint is kept beside the new one: ``epoch_log.set_aside``.)"""
    earlier = [path for path in (config.weights_path, config.state_path) if path.is_file()]
    if config.recipe.name == "fixres":
        if config.resume:
            raise SystemExit("--resume: fixres runs whole (minutes) and keeps no training state "
                             "to continue from; run it without --resume")
        if earlier:
            raise SystemExit(f"{earlier[0]} is there from an earlier run: give another --out "
                             "to keep both, or remove it to make it again")
    elif config.resume:
        if not config.state_path.is_file() and earlier:
            raise SystemExit(f"--resume: {earlier[0]} is there but its training state "
                             f"{config.state_path.name} is not, so the run cannot be continued "
                             "and starting afresh would overwrite it: give another --out")
    elif earlier:
        raise SystemExit(f"{earlier[0]} is there from an earlier run: continue that run with "
                         "--resume, or give another --out (a fresh folder) to keep both")


def _teacher(config: TrainConfig) -> Teacher | None:
    if config.recipe.teacher == "none":
        return None
    if config.recipe.teacher == "baseline":
        return baseline_teacher(config.family)
    return resolve_teacher(config.teacher, config.family)
