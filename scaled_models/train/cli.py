"""The command line and the training run: arguments, what is built from them, the loop, and what
is written after each epoch."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from safe_io.argtypes import positive_int
from safe_io.storage import atomic_write, write_json

from ..distributed import Distributed, init_distributed
from ..family import FAMILIES, WeightFamily, WeightsUnavailable, paper_family
from ..preprocessing import Preprocessing
from ..table7 import MODEL_KEYS, spec_for
from ..weights import DEFAULT_CHECKPOINTS, default_recipe, resolve_family
from ..zoo import device_label
from . import evaluation, fixres
from .data import (
    CropDataset,
    HoldoutSplit,
    ImageSet,
    default_eval_dir,
    holdout_split,
    normalise,
    skip_unreadable,
    test_time_crop,
    train_crop,
    training_images,
)
from .evaluation import Outcomes
from .recipes import (
    EMA_DECAY,
    RECIPES,
    Recipe,
    loss_for,
    lr_factor,
    make_optimizer,
    mix,
    student_for,
    temperature,
    trainable_parameters,
)
from .state import (
    export_weights,
    load_training_state,
    rng_state,
    save_training_state,
    set_rng_state,
)
from .teachers import Teacher, baseline_teacher, resolve_teacher

# Photos of a labelled --data held out to judge the model by default, when nothing else is given
# to judge it on: half, so that both sides keep a few hundred of the 501 shared photos.
DEFAULT_HOLDOUT = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from . import __doc__ as package_doc

    p = argparse.ArgumentParser(prog="python -m scaled_models.train", description=package_doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=MODEL_KEYS, help="the Table 7 role to make")
    p.add_argument("--data", required=True,
                   help="a folder of photos, searched recursively (labelled when the photos sit "
                        "in wnid-named folders), or a train/ + val/ ImageNet layout")
    p.add_argument("--eval-dir", default=None,
                   help="labelled images the model is not fit to, to judge it on (top-1 beside "
                        "its start and the baseline, map agreement), in any layout "
                        "safe_io.imagenet_val "
                        "reads (default: DATA/val when DATA has train/ and val/)")
    p.add_argument("--holdout", type=float, default=None,
                   help="judge the model on this fraction of DATA, held out of training by a "
                        f"seeded split recorded in the checkpoint (default: {DEFAULT_HOLDOUT} "
                        "when DATA is labelled and there is no --eval-dir, else 0; 0 judges on "
                        "nothing)")
    p.add_argument("--out", default=str(DEFAULT_CHECKPOINTS),
                   help="checkpoints root the app reads (default: %(default)s)")
    p.add_argument("--recipe", default=None, choices=list(RECIPES),
                   help="default: fixres for the resolution role, distill for the others")
    p.add_argument("--family", default=None, choices=list(FAMILIES),
                   help="default: efficientnet for --recipe paper, else the family whose "
                        "baseline weights are available")
    p.add_argument("--teacher", default="auto",
                   help="distill only: auto (the strongest available model outside the grid), "
                        "a role, a published model (lite1, efficientnet_b4), timm:NAME or a "
                        "checkpoint (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="passes over the data (default: " + _per_recipe("epochs") + ")")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per process and step (default: " + _per_recipe("batch_size")
                        + ")")
    p.add_argument("--image-size", type=positive_int, default=None,
                   help="training resolution (default: the role's, Table 7)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the recipe's, scaled with the global batch)")
    p.add_argument("--fine-tune-classifier", action="store_true",
                   help="fixres only: also fine-tune the classifier, as FixRes does with the "
                        "full ImageNet training set (it overfits a few hundred photos)")
    p.add_argument("--temperature", type=float, default=None,
                   help="distillation temperature (default: " + _per_recipe("temperature")
                        + ")")
    p.add_argument("--workers", type=int, default=2, help="data loader processes (default: 2)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed, of training and of the --holdout split (default: 0)")
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="auto: bfloat16 autocast on GPUs and CPUs with native bfloat16 "
                        "(AVX512-BF16 or AMX), float16 on older GPUs, else float32 "
                        "(default: %(default)s)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: the best one found)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/FAMILY/KEY.state.pt")
    p.add_argument("--limit-steps", type=positive_int, default=None,
                   help="at most this many steps per epoch, for smoke runs (default: all)")
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="stop after this many epochs of this invocation and --resume later "
                        "(default: run to --epochs)")
    p.add_argument("--eval-every", type=positive_int, default=1,
                   help="judge the model every N epochs; the last epoch always (default: 1)")
    p.add_argument("--log-dir", default=None,
                   help="CSV and TensorBoard logs (default: OUT/logs/FAMILY-KEY)")
    return p.parse_args(argv)


def _per_recipe(field_name: str) -> str:
    """A recipe default for the help text, read from the recipes themselves."""
    return ", ".join(f"{getattr(r, field_name)} for {r.name}" for r in RECIPES.values())


@dataclass(frozen=True)
class EvaluationSet:
    """The labelled images a model is judged on, none of which it is fit to, and where they
    come from (a held-out split of the training folder, or a separate folder)."""

    images: list
    record: dict


def evaluation_set(args: argparse.Namespace, found: ImageSet, decode: bool
                   ) -> tuple[ImageSet, HoldoutSplit | None, EvaluationSet | None]:
    """The training photos, the split they come from (if any) and what the model is judged on,
    from ``--holdout`` and ``--eval-dir``. Evaluation images are decoded only when ``decode``
    (the main process); elsewhere the last value is ``None``."""
    eval_dir = Path(args.eval_dir) if args.eval_dir else default_eval_dir(Path(args.data))
    if args.holdout and eval_dir is not None:
        raise SystemExit("--holdout and --eval-dir are two ways to choose the images a model "
                         "is judged on: give one (DATA with train/ and val/ is judged on val/)")
    fraction = args.holdout if args.holdout is not None else (
        DEFAULT_HOLDOUT if eval_dir is None and found.labels is not None else 0.0)
    if fraction:
        split = holdout_split(found, fraction, args.seed)
        if not decode:
            return split.train, split, None
        images = evaluation.held_out_images(split.held_out)
        return split.train, split, EvaluationSet(images, {  # the split: metadata's "data"
            "kind": "held-out", "folder": found.root.name, "path": str(found.root),
            "images": len(images)})
    if eval_dir is not None and decode:
        images = evaluation.eval_images(eval_dir)
        return found, None, EvaluationSet(images, {
            "kind": "folder", "folder": eval_dir.name, "path": str(eval_dir),
            "images": len(images)})
    return found, None, None


@dataclass
class Run:
    """Everything one training invocation works with."""

    args: argparse.Namespace
    dist: Distributed
    family: WeightFamily
    key: str
    recipe: Recipe
    student: nn.Module
    init: dict
    preprocessing: Preprocessing
    teacher: Teacher | None
    images: ImageSet  # what the model is fit to
    split: HoldoutSplit | None
    loader: torch.utils.data.DataLoader
    sampler: torch.utils.data.DistributedSampler
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: torch.optim.swa_utils.AveragedModel | None
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # None: float32, no autocast
    judged_on: EvaluationSet | None = None
    base_state: dict | None = None  # FixRes writes only what differs from these weights
    ddp: nn.Module | None = None
    epoch: int = 0
    step: int = 0
    images_seen: int = 0
    wall_time_s: float = 0.0
    bn_images: int = 0
    start_outcomes: Outcomes | None = None  # the student before training, on judged_on
    baseline_outcomes: Outcomes | None = None  # the baseline at its resolution, likewise
    not_measured: dict[str, str] = field(default_factory=dict)  # what could not run, and why

    @property
    def folder(self) -> Path:
        return Path(self.args.out) / self.family.name

    @property
    def state_path(self) -> Path:
        return self.folder / f"{self.key}.state.pt"

    @property
    def final_net(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.student

    @property
    def model(self) -> nn.Module:
        """What the loop calls: the student, wrapped for DDP when several processes run."""
        return self.ddp if self.ddp is not None else self.student


def build_run(args: argparse.Namespace, dist: Distributed) -> Run:
    family = (FAMILIES[args.family] if args.family
              else paper_family() if args.recipe == "paper"
              else resolve_family("auto")[0])
    if dist.is_main:  # before any work: a run must be able to keep what it makes
        ensure_writable(Path(args.out) / family.name)
        ensure_writable(log_dir(args, family.name, args.model))
    key = args.model
    recipe = RECIPES[args.recipe or default_recipe(key)]
    adapts_resolution = recipe.name == "fixres"
    args.epochs = args.epochs or recipe.epochs
    args.batch_size = args.batch_size or recipe.batch_size
    preprocessing = family.preprocessing(args.image_size or spec_for(key).paper_resolution)
    student, init = student_for(family, key, recipe, args.seed)
    # a student that is the published baseline itself is written as what differs from it
    base_state = ({k: v.clone() for k, v in student.state_dict().items()}
                  if init["kind"] == "published" else None)
    amp_dtype = autocast_dtype(dist.device, args.precision)
    student = student.to(dist.device)
    if dist.device.type == "cuda" or amp_dtype is not None:
        student = student.to(memory_format=torch.channels_last)
    teacher = _teacher(args, family, recipe)
    if teacher is not None:
        teacher.net.to(dist.device).eval().requires_grad_(False)

    found = training_images(Path(args.data))
    if recipe.name == "paper" and found.labels is None:
        raise SystemExit(f"{found.root}: the paper recipe needs labels (photos in wnid folders)")
    images, split, judged_on = evaluation_set(args, found, dist.is_main)
    crop = (test_time_crop(preprocessing) if recipe.crop == "test-time"
            else train_crop(preprocessing.resolution, recipe.autoaugment, recipe.crop_scale))
    dataset = CropDataset(images, crop)
    sampler = torch.utils.data.DistributedSampler(dataset, dist.world, dist.rank, shuffle=True,
                                                  seed=args.seed)
    global_batch = args.batch_size * dist.world
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
        pin_memory=dist.device.type == "cuda", collate_fn=skip_unreadable,
        drop_last=len(dataset) > global_batch)
    # FixRes sees every photo and its mirror once per epoch
    batches = -(-2 * len(images) // global_batch) if adapts_resolution else len(loader)
    steps = min(batches, args.limit_steps or batches)
    lr = args.lr if args.lr is not None else recipe.default_lr_per_256 * global_batch / 256
    args.lr = lr
    optimizer = make_optimizer(recipe, trainable_parameters(
        student, recipe, family, args.fine_tune_classifier), lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(recipe, steps, args.epochs))
    ema = (torch.optim.swa_utils.AveragedModel(
        student, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(EMA_DECAY),
        use_buffers=True) if recipe.ema else None)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    ddp = None
    if dist.world > 1:
        ids = [dist.device.index] if dist.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(student, device_ids=ids)
    return Run(args, dist, family, key, recipe, student, init, preprocessing, teacher, images,
               split, loader, sampler, steps, optimizer, scheduler, ema, scaler, amp_dtype,
               judged_on, base_state, ddp)


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` and write a file in it, or stop with the folder and the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SystemExit(f"{folder}: cannot write there ({exc.strerror or exc}); choose another "
                         "--out or --log-dir") from None


def log_dir(args: argparse.Namespace, family: str, key: str) -> Path:
    return Path(args.log_dir or Path(args.out) / "logs" / f"{family}-{key}")


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast type of ``--precision``: bfloat16 where the hardware computes it natively
    (on a 2-core AVX512-BF16 CPU it trains Lite0 at 448 px about 3.5x faster than float32,
    channels_last included), float16 on GPUs without it, else ``None`` (float32)."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return torch.bfloat16 if device.type == "cpu" and native else None


def _teacher(args: argparse.Namespace, family: WeightFamily, recipe: Recipe) -> Teacher | None:
    if recipe.teacher == "none":
        return None
    if recipe.teacher == "baseline":
        return baseline_teacher(family)
    return resolve_teacher(args.teacher, family)


def _log(run: Run, text: str) -> None:
    if run.dist.is_main:
        print(text, flush=True)


def train_epoch(run: Run) -> tuple[float, float]:
    """One pass (or ``steps_per_epoch`` steps); returns (mean loss, images/s)."""
    from tqdm import tqdm

    run.model.train()
    if run.recipe.frozen_bn_statistics:
        for module in run.student.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
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
    device = run.dist.device
    crops, labels = crops.to(device, non_blocking=True), labels.to(device)
    if run.recipe.mixup:
        crops = mix(crops, run.recipe.mixup)
    inputs = normalise(crops, run.preprocessing)
    if device.type == "cuda" or run.amp_dtype is not None:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    teacher_logits = None
    if run.teacher is not None:
        with torch.no_grad():
            teacher_logits = run.teacher.net(normalise(crops, run.teacher.preprocessing,
                                                       run.teacher.preprocessing.resolution))
    with torch.autocast(device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
        logits = run.model(inputs)
    loss = loss_for(run.recipe, logits, teacher_logits, labels,
                    temperature(run.recipe, run.args))
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update_parameters(run.student)
    run.step += 1
    return float(loss.detach()), len(labels)


def judge_start(run: Run) -> None:
    """Before any training: the student as it starts and the baseline at its own resolution, on
    the images the trained model will be judged on (main process). A baseline that cannot be
    loaded is recorded as not measured, never fatal."""
    if run.judged_on is None:
        return
    images, device = run.judged_on.images, run.dist.device
    run.start_outcomes = evaluation.outcomes((run.student, run.preprocessing), images, device)
    if run.teacher is not None and run.recipe.teacher == "baseline":
        baseline = run.teacher
    else:
        try:
            baseline = baseline_teacher(run.family)
        except WeightsUnavailable as exc:
            run.not_measured["baseline"] = exc.reason
            _log(run, f"warning: the baseline is not measured: {exc.reason}")
            return
    run.baseline_outcomes = evaluation.outcomes(
        (baseline.net.to(device), baseline.preprocessing), images, device)


def evaluate(run: Run) -> Outcomes | None:
    """The model being trained on the images it is judged on (main process only)."""
    if run.judged_on is None:
        return None
    return evaluation.outcomes((run.final_net, run.preprocessing), run.judged_on.images,
                               run.dist.device)


def held_out(run: Run, trained: Outcomes | None) -> dict | None:
    """The checkpoint's record of how the model does on images it was not fit to, beside its
    start and the baseline; ``None`` when nothing is judged."""
    if trained is None or run.start_outcomes is None:
        return None
    return evaluation.comparison(trained, run.start_outcomes, run.baseline_outcomes,
                                 run.judged_on.record | {"not_measured": dict(run.not_measured)})


def map_agreement(run: Run) -> dict:
    """How close the model's maps are to the baseline's and (distillation) to the teacher's, on
    the images it is judged on."""
    baseline = baseline_teacher(run.family)
    references = {"baseline": (baseline.net.to(run.dist.device), baseline.preprocessing)}
    if run.teacher is not None and run.recipe.teacher == "outside":
        references["teacher"] = (run.teacher.net, run.teacher.preprocessing)
    return evaluation.agreement_with((run.final_net, run.preprocessing), references,
                                     run.judged_on.images, run.dist.device)


def metadata(run: Run, loss: float, trained: Outcomes | None) -> dict:
    spec = spec_for(run.key)
    arch = run.family.architecture(spec.width, spec.depth)
    data = run.images.record() | ({"holdout": run.split.record()} if run.split else {})
    record = {
        "model": run.key, "family": run.family.name, "label": spec.label,
        "architecture": arch.as_record(), "recipe": run.recipe.name, "init": run.init,
        "teacher": run.teacher.record() if run.teacher is not None else None,
        "data": data, "epochs": run.args.epochs, "epoch": run.epoch,
        "steps": run.step, "images_seen": run.images_seen,
        "wall_time_s": round(run.wall_time_s, 1), "device": device_label(run.dist.device),
        "last_loss": round(loss, 5),
        "config": {"batch_size": run.args.batch_size * run.dist.world, "lr": run.args.lr,
                   "image_size": run.preprocessing.resolution, "processes": run.dist.world,
                   "seed": run.args.seed, "temperature": temperature(run.recipe, run.args),
                   "workers": run.args.workers,
                   "autocast": str(run.amp_dtype).removeprefix("torch.") if run.amp_dtype
                   else None},
        "eval": held_out(run, trained),
        "map_agreement": None,  # measured after the weights are safe (``save``)
        "image_size": run.preprocessing.resolution, "preprocessing": run.preprocessing.as_dict(),
        "ema": run.ema is not None,
    }
    if run.base_state is not None:
        record["base"] = {"role": "baseline", "name": run.init["base"],
                          "source": run.init["source"], "sha256": run.init["sha256"]}
    if run.recipe.name == "fixres":
        record["bn_images"] = run.bn_images
        record["fine_tuned"] = ["head BatchNorm"] + (["classifier"]
                                                     if run.args.fine_tune_classifier else [])
    return record


def save(run: Run, loss: float, trained: Outcomes | None) -> None:
    """Weights, metadata and training state first; then, after the last epoch, the map
    agreement, which loads another model and may fail: it is then recorded as not measured and
    the weights stay."""
    rngs = [rng_state()]
    if run.dist.world > 1:
        gathered = [None] * run.dist.world
        torch.distributed.all_gather_object(gathered, rngs[0])
        rngs = gathered
    if not run.dist.is_main:
        return
    weights = export_weights(run.final_net, run.folder, run.key, metadata(run, loss, trained),
                             run.base_state)
    if run.recipe.name != "fixres":  # fixres: minutes on a CPU, it runs whole
        save_training_state(run.state_path, {
            "model": run.student.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
            "ema": run.ema.state_dict() if run.ema is not None else {}, "rng": rngs,
            "epoch": run.epoch, "step": run.step, "images_seen": run.images_seen,
            "wall_time_s": run.wall_time_s, "bn_images": run.bn_images,
            "start_outcomes": asdict(run.start_outcomes) if run.start_outcomes else None,
            "baseline_outcomes": (asdict(run.baseline_outcomes) if run.baseline_outcomes
                                  else None),
            "not_measured": dict(run.not_measured), "identity": identity(run)})
    if run.epoch == run.args.epochs and run.judged_on is not None:
        record = json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))
        try:
            record["map_agreement"] = map_agreement(run)
        except WeightsUnavailable as exc:
            record["map_agreement"] = {"not_measured": exc.reason}
            _log(run, f"warning: map agreement not measured: {exc.reason}")
        write_json(weights.with_suffix(".json"), record)


def identity(run: Run) -> dict:
    """What a resumed run must share with the run it continues: the same training photos, split,
    recipe, teacher, batch, schedule and resolution; anything else would be a different run
    under the first one's name."""
    return {"recipe": run.recipe.name, "family": run.family.name,
            "training photos (fingerprint)": run.images.fingerprint,
            "holdout": ({"fraction": run.split.fraction, "seed": run.split.seed}
                        if run.split else None),
            "teacher": run.teacher.name if run.teacher else None,
            "batch size": run.args.batch_size * run.dist.world, "epochs": run.args.epochs,
            "lr": run.args.lr, "image size": run.preprocessing.resolution,
            "seed": run.args.seed}


def resume(run: Run) -> None:
    state = load_training_state(run.state_path)
    saved = state.get("identity") or {}
    differs = [f"{name} ({saved[name]} then, {value} now)" for name, value in identity(run).items()
               if name in saved and saved[name] != value]
    if differs:
        raise SystemExit(f"--resume: {run.state_path} was saved by a run with other "
                         f"{'; '.join(differs)}. Resume with the same options, or start afresh "
                         "with another --out.")
    run.student.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    set_rng_state(state["rng"][min(run.dist.rank, len(state["rng"]) - 1)])
    run.epoch, run.step = state["epoch"], state["step"]
    run.images_seen, run.wall_time_s = state["images_seen"], state["wall_time_s"]
    run.bn_images = state["bn_images"]
    run.start_outcomes, run.baseline_outcomes = (
        Outcomes(**state[k]) if state.get(k) else None
        for k in ("start_outcomes", "baseline_outcomes"))
    run.not_measured = dict(state.get("not_measured") or {})
    if run.dist.is_main:
        trim_epoch_log(log_dir(run.args, run.family.name, run.key) / "epochs.csv", run.epoch)
    _log(run, f"resumed from {run.state_path} at epoch {run.epoch}, step {run.step}")


def trim_epoch_log(path: Path, epoch: int) -> None:
    """Drop the log's rows after ``epoch``: epochs logged but not saved (a run killed between
    its log line and its checkpoint) are trained again, and must not be listed twice."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) <= epoch]
    if kept != lines:
        atomic_write(path, lambda p: p.write_text("".join(kept)))


def log_epoch(run: Run, loss: float, images_per_s: float, trained: Outcomes | None) -> None:
    import csv

    folder = log_dir(run.args, run.family.name, run.key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "epochs.csv"
    new = not path.is_file()
    lr = run.scheduler.get_last_lr()[0]
    top1 = trained.summary()["top1"] if trained else None
    with path.open("a", newline="") as fh:
        out = csv.writer(fh)
        if new:
            out.writerow(["epoch", "steps", "loss", "eval_top1", "images_per_s", "lr"])
        out.writerow([run.epoch, run.step, f"{loss:.6f}", "" if top1 is None else top1,
                      f"{images_per_s:.2f}", f"{lr:.6g}"])
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return
    with SummaryWriter(str(folder)) as writer:
        for name, value in (("loss", loss), ("images_per_s", images_per_s), ("lr", lr)):
            writer.add_scalar(name, value, run.epoch)
        if top1 is not None:
            writer.add_scalar("eval/top1", top1, run.epoch)


def _judged(run: Run, trained: Outcomes | None) -> str:
    """The epoch line's words on the judged images: the model beside its start."""
    if trained is None:
        return ""
    top1, start = trained.summary()["top1"], run.start_outcomes.summary()["top1"]
    return f", top-1 {top1:.2f} % on {len(trained.top1)} unseen images (start {start:.2f} %)"


def adapt_at_resolution(run: Run) -> int:
    """The FixRes recipe: minutes on a CPU, so it runs whole (no --resume)."""
    if run.dist.world > 1:
        raise SystemExit("fixres runs in one process; it takes minutes on a CPU")
    judge_start(run)
    loss = fixres.adapt(run)
    trained = evaluate(run)
    _log(run, f"adapted in {run.wall_time_s:.0f} s: loss {loss:.4f}{_judged(run, trained)}")
    log_epoch(run, loss, run.images_seen / max(run.wall_time_s, 1e-9), trained)
    save(run, loss, trained)
    _log(run, f"wrote {run.folder / (run.key + '.safetensors')} ({run.step} steps)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dist = init_distributed(args.device)
    for seed_fn in (torch.manual_seed, random.seed, np.random.seed):
        seed_fn(args.seed + dist.rank)
    run = build_run(args, dist)
    judged = (f"; judged on {run.judged_on.record['images']} {run.judged_on.record['kind']} "
              f"images of {run.judged_on.record['folder']}" if run.judged_on else "")
    _log(run, f"{run.recipe.name} {run.family.name}/{run.key}: {run.init['words']}; "
              f"{len(run.images)} photos from {run.images.root}{judged}"
              + (f"; teacher {run.teacher.name}" if run.teacher else ""))
    if run.teacher is not None and run.teacher.caveat:
        _log(run, f"caveat: {run.teacher.caveat}")
    if run.recipe.name == "fixres":
        return adapt_at_resolution(run)
    if args.resume and run.state_path.is_file():
        resume(run)
    if run.epoch == 0 and dist.is_main:
        judge_start(run)
    stop_at = min(args.epochs, run.epoch + args.stop_after if args.stop_after else args.epochs)
    while run.epoch < stop_at:
        run.sampler.set_epoch(run.epoch)
        loss, images_per_s = train_epoch(run)
        run.epoch += 1
        dist.barrier()
        judge_now = run.epoch % args.eval_every == 0 or run.epoch == args.epochs
        trained = evaluate(run) if dist.is_main and judge_now else None
        if dist.is_main:
            _log(run, f"epoch {run.epoch}/{args.epochs}: loss {loss:.4f}"
                      f"{_judged(run, trained)}, {images_per_s:.1f} images/s")
            log_epoch(run, loss, images_per_s, trained)
        save(run, loss, trained)
    dist.barrier()
    dist.close()
    _log(run, f"wrote {run.folder / (run.key + '.safetensors')} ({run.step} steps, "
              f"{run.images_seen} images seen, {run.wall_time_s:.0f} s)")
    return 0
