"""``python -m scaled_models.train``: make the Table 7 models nobody publishes.

Two recipes. ``paper`` is the EfficientNet ImageNet recipe (RMSProp, BN momentum 0.99, weight
decay 1e-5, lr 0.256 per 4096 images, ×0.97 every 2.4 epochs after a warm-up, AutoAugment,
stochastic depth 0.2, dropout 0.2, EMA) from scratch. ``distill`` starts the student from a
function-preserving expansion of the baseline (``expand.py``) and distils a pretrained teacher,
so a few epochs give useful weights. Runs on a CPU, a GPU, or many with torchrun (DDP: NCCL on
GPUs, gloo on CPU). Writes ``OUT/<family>/<key>.safetensors`` + ``.json`` (what the app loads)
and a full training state ``<key>.state.pt`` for ``--resume``.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .architectures import CamNet, build
from .expand import deepen, widen
from .imagenet import class_index_of, is_wnid
from .preprocessing import Preprocessing
from .table7 import MODEL_KEYS, spec_for
from .weights import FAMILY_TABLE, load_weights, resolve_family
from .zoo import LoadedModel, load_model

PAPER_BATCH_LR = (0.256, 4096)  # lr per images in a global batch, scaled linearly
EMA_DECAY = 0.9999


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scaled_models.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=MODEL_KEYS)
    p.add_argument("--data", required=True, help="folder with train/ and val/ ImageFolders "
                                                 "whose sub-folders are ImageNet wnids")
    p.add_argument("--out", default="checkpoints", help="checkpoints root the app reads")
    p.add_argument("--recipe", default="distill", choices=["paper", "distill"])
    p.add_argument("--family", default=None, choices=["efficientnet", "lite"],
                   help="default: efficientnet for --recipe paper; for distill, the family "
                        "whose baseline weights are available")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument("--image-size", type=int, default=None,
                   help="default: the role's resolution (Table 7)")
    p.add_argument("--lr", type=float, default=None, help="default: the recipe's")
    p.add_argument("--temperature", type=float, default=2.0, help="distillation temperature")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--resume", action="store_true", help="continue from <key>.state.pt")
    p.add_argument("--limit-steps", type=int, default=None, help="steps per epoch (smoke runs)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this many epochs of this invocation (resume later)")
    p.add_argument("--log-dir", default=None, help="TensorBoard/CSV logs (default OUT/logs)")
    return p.parse_args(argv)


# --- data --------------------------------------------------------------------------------

def imagenet_folder(root: Path, transform):
    """An ImageFolder whose labels are ImageNet sorted-wnid indices (0..999), whatever subset of
    classes it holds, so the trained head is the one the app uses."""
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(root), transform=transform)
    bad = [c for c in dataset.classes if not is_wnid(c)]
    if bad:
        raise SystemExit(f"{root}: sub-folders must be ImageNet wnids; not: {', '.join(bad[:5])}")
    mapping = [class_index_of(c) for c in dataset.classes]
    dataset.target_transform = mapping.__getitem__
    return dataset


def transforms_for(pre: Preprocessing, train: bool, autoaugment: bool):
    from torchvision import transforms as T

    interpolation = T.InterpolationMode.BICUBIC
    if train:
        steps = [T.RandomResizedCrop(pre.resolution, interpolation=interpolation),
                 T.RandomHorizontalFlip()]
        if autoaugment:
            steps.append(T.AutoAugment(T.AutoAugmentPolicy.IMAGENET, interpolation=interpolation))
    else:
        steps = [T.Resize(pre.resize_size, interpolation=interpolation),
                 T.CenterCrop(pre.resolution)]
    return T.Compose(steps + [T.ToTensor(), T.Normalize(pre.mean, pre.std)])


# --- models ------------------------------------------------------------------------------

def student_for(family: str, key: str, recipe: str, bn_momentum: float | None) -> tuple[CamNet, str]:
    """The network to train and how it was initialised."""
    arch = FAMILY_TABLE[family].roles[key].arch
    if recipe == "paper":
        net = build(arch, stochastic_depth=0.2, bn_momentum=bn_momentum)
        return net, "random init (paper recipe)"
    # Published weights only (no checkpoints root): a student always starts from the same,
    # citable baseline, not from whatever local checkpoint happens to exist.
    base = load_weights(family, "baseline", checkpoints=os.devnull)
    if base.net is None:
        raise SystemExit(f"distillation needs the {family} baseline's weights: "
                         f"{base.provenance.unavailable_reason}")
    if key == "width":
        return widen(base.net, family), f"width x2 expansion of {base.provenance.source}"
    if key == "depth":
        return deepen(base.net, family), f"depth x4 expansion of {base.provenance.source}"
    if key in ("resolution", "baseline"):
        return copy.deepcopy(base.net), f"{base.provenance.source} weights"
    own = load_weights(family, key, checkpoints=os.devnull)
    if own.net is None:
        raise SystemExit(f"no initial weights for {family}/{key}: "
                         f"{own.provenance.unavailable_reason}")
    return own.net, own.provenance.source


def teacher_for(family: str, device: torch.device) -> LoadedModel:
    """The compound model's published weights, else the best available published model."""
    candidates = [load_model(family, k, os.devnull, device) for k in ("compound", "baseline")]
    available = [m for m in candidates if m.available and m.provenance.trained_for_config]
    if not available:
        raise SystemExit(f"no pretrained teacher is available in family {family}")
    return available[0]


# --- distributed helpers -----------------------------------------------------------------

def setup_distributed(requested: str | None) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = torch.cuda.is_available() and (requested is None or requested.startswith("cuda"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device(requested or "cpu")


def all_sum(values: list[float], device: torch.device, world: int) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if world > 1:
        torch.distributed.all_reduce(tensor)
    return tensor.tolist()


# --- checkpoints -------------------------------------------------------------------------

def atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a torn file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def export_weights(net: nn.Module, folder: Path, key: str, metadata: dict) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    weights = folder / f"{key}.safetensors"
    atomic_write(weights, lambda p: save_file(state, str(p)))
    atomic_write(folder / f"{key}.json",
                 lambda p: p.write_text(json.dumps(metadata, indent=2), encoding="utf-8"))
    return weights


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_pos": random.getstate()[2],
             "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
             "numpy_pos": int(np.random.get_state()[2])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- the loop ----------------------------------------------------------------------------

def lr_lambda(recipe: str, steps_per_epoch: int, epochs: int):
    warmup = max(1, round((min(5, max(epochs * 0.1, 0.3)) if recipe == "paper" else 0.1)
                          * steps_per_epoch))
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if recipe == "paper":  # ×0.97 every 2.4 epochs
            return 0.97 ** ((step / steps_per_epoch) // 2.4)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


def evaluate(net: nn.Module, loader, device: torch.device, world: int) -> tuple[float, float]:
    net.eval()
    correct1 = correct5 = seen = 0
    with torch.inference_mode():
        for images, labels in loader:
            logits = net(images.to(device))
            top5 = logits.topk(5, dim=1).indices.cpu()
            correct1 += int((top5[:, 0] == labels).sum())
            correct5 += int((top5 == labels[:, None]).any(dim=1).sum())
            seen += len(labels)
    c1, c5, n = all_sum([correct1, correct5, seen], device, world)
    return 100 * c1 / max(n, 1), 100 * c5 / max(n, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world, device = setup_distributed(args.device)
    torch.manual_seed(args.seed + rank)
    random.seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    family = args.family or ("efficientnet" if args.recipe == "paper"
                             else resolve_family("auto")[0])
    key, spec = args.model, spec_for(args.model)
    binding = FAMILY_TABLE[family].roles[key]
    crop_pct, mean, std = FAMILY_TABLE[family].default_preprocessing
    pre = Preprocessing.from_crop_pct(args.image_size or binding.resolution, crop_pct, mean, std)
    bn_momentum = 0.01 if args.recipe == "paper" else None  # TF's 0.99 decay
    student, init = student_for(family, key, args.recipe, bn_momentum)
    student = student.to(device)
    if device.type == "cuda":
        student = student.to(memory_format=torch.channels_last)
    teacher = teacher_for(family, device) if args.recipe == "distill" else None

    data = Path(args.data)
    train_set = imagenet_folder(data / "train", transforms_for(pre, True, args.recipe == "paper"))
    val_set = imagenet_folder(data / "val", transforms_for(pre, False, False))
    from torch.utils.data import DataLoader, DistributedSampler

    train_sampler = DistributedSampler(train_set, world, rank, shuffle=True, seed=args.seed)
    val_sampler = DistributedSampler(val_set, world, rank, shuffle=False)
    loader_args = dict(batch_size=args.batch_size, num_workers=args.workers,
                       pin_memory=device.type == "cuda", persistent_workers=False)
    train_loader = DataLoader(train_set, sampler=train_sampler, drop_last=len(train_set)
                              > args.batch_size * world, **loader_args)
    val_loader = DataLoader(val_set, sampler=val_sampler, **loader_args)
    steps_per_epoch = min(len(train_loader), args.limit_steps or len(train_loader))

    model = (nn.parallel.DistributedDataParallel(student, device_ids=[device.index]
                                                 if device.type == "cuda" else None)
             if world > 1 else student)
    global_batch = args.batch_size * world
    if args.recipe == "paper":
        lr = args.lr or PAPER_BATCH_LR[0] * global_batch / PAPER_BATCH_LR[1]
        optimizer = torch.optim.RMSprop(student.parameters(), lr=lr, alpha=0.9, momentum=0.9,
                                        eps=1e-3, weight_decay=1e-5)
    else:
        lr = args.lr or 0.01 * global_batch / 256
        optimizer = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9, nesterov=True,
                                    weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(args.recipe, steps_per_epoch, args.epochs))
    ema = (torch.optim.swa_utils.AveragedModel(
        student, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(EMA_DECAY),
        use_buffers=True) if args.recipe == "paper" else None)
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    folder = Path(args.out) / family
    state_path = folder / f"{key}.state.pt"
    start_epoch, step = 0, 0
    if args.resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"][min(rank, len(state["rng"]) - 1)])
        start_epoch, step = state["epoch"], state["step"]
        if rank == 0:
            print(f"resumed from {state_path} at epoch {start_epoch}, step {step}", flush=True)

    log_dir = Path(args.log_dir or Path(args.out) / "logs" / f"{family}-{key}")
    writer = _tensorboard(log_dir) if rank == 0 else None
    description = (f"{args.data}: {len(train_set)} train / {len(val_set)} val images, "
                   f"{len(train_set.classes)} classes")
    top1 = top5 = None
    stop_at = start_epoch + args.stop_after if args.stop_after else args.epochs
    for epoch in range(start_epoch, min(args.epochs, stop_at)):
        train_sampler.set_epoch(epoch)
        loss_avg, images_per_s = _train_epoch(
            model, student, teacher, train_loader, optimizer, scheduler, ema, scaler, device,
            amp_dtype, use_amp, steps_per_epoch, args, rank, epoch)
        step += steps_per_epoch
        top1, top5 = evaluate(ema.module if ema is not None else student, val_loader, device,
                              world)
        rngs = [rng_state()]
        if world > 1:
            gathered = [None] * world
            torch.distributed.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if rank == 0:
            print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_avg:.4f}, val top-1 {top1:.2f} %, "
                  f"top-5 {top5:.2f} %, {images_per_s:.1f} images/s", flush=True)
            _log_epoch(log_dir, writer, epoch + 1, loss_avg, top1, top5, images_per_s,
                       scheduler.get_last_lr()[0])
            final = ema.module if ema is not None else student
            metadata = {
                "model": key, "family": family, "label": spec.label,
                "architecture": {"width": binding.arch.width, "depth": binding.arch.depth},
                "config": {"recipe": args.recipe, "epochs": args.epochs,
                           "batch_size": global_batch, "lr": lr, "image_size": pre.resolution,
                           "processes": world, "seed": args.seed,
                           "temperature": args.temperature if teacher else None},
                "recipe": args.recipe, "init": init, "epoch": epoch + 1, "step": step,
                "val_top1": round(top1, 4), "val_top5": round(top5, 4),
                "teacher": teacher.provenance.source if teacher else None,
                "data": description, "image_size": pre.resolution,
                "preprocessing": pre.as_dict(), "ema": ema is not None}
            export_weights(final, folder, key, metadata)
            state = {"model": student.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                     "ema": ema.state_dict() if ema is not None else {}, "rng": rngs,
                     "epoch": epoch + 1, "step": step}
            atomic_write(state_path, lambda p: torch.save(state, p))
    if writer is not None:
        writer.close()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if rank == 0 and top1 is not None:
        print(f"wrote {folder / (key + '.safetensors')} (val top-1 {top1:.2f} %)")
    return 0


def _train_epoch(model, student, teacher, loader, optimizer, scheduler, ema, scaler, device,
                 amp_dtype, use_amp, steps, args, rank, epoch) -> tuple[float, float]:
    from tqdm import tqdm

    model.train()
    total_loss, seen, start = 0.0, 0, time.perf_counter()
    bar = tqdm(total=steps, desc=f"epoch {epoch + 1}", unit="step", disable=rank != 0,
               dynamic_ncols=True, file=sys.stderr)
    for i, (images, labels) in enumerate(loader):
        if i >= steps:
            break
        images, labels = images.to(device, non_blocking=True), labels.to(device)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=0.1)
            if teacher is not None:
                loss = 0.5 * loss + 0.5 * _distill_loss(logits.float(), teacher, images,
                                                        args.temperature)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(student)
        total_loss += float(loss.detach()) * len(labels)
        seen += len(labels)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}",
                        img_s=f"{seen / (time.perf_counter() - start):.1f}")
        bar.update()
    bar.close()
    return total_loss / max(seen, 1), seen / max(time.perf_counter() - start, 1e-9)


def _distill_loss(student_logits: torch.Tensor, teacher: LoadedModel, images: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) at temperature T, scaled by T² (Hinton et al. 2015); the teacher
    sees the batch at its own resolution."""
    size = teacher.preprocessing.resolution
    with torch.no_grad():
        teacher_in = F.interpolate(images.float(), size=(size, size), mode="bilinear",
                                   align_corners=False, antialias=True)
        teacher_logits = teacher.net(teacher_in).float()
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t,
                    dim=1), reduction="batchmean", log_target=True) * t * t


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir))


def _log_epoch(log_dir: Path, writer, epoch: int, loss: float, top1: float, top5: float,
               images_per_s: float, lr: float) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "epochs.csv"
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        out = csv.writer(fh)
        if new:
            out.writerow(["epoch", "loss", "val_top1", "val_top5", "images_per_s", "lr"])
        out.writerow([epoch, f"{loss:.6f}", f"{top1:.4f}", f"{top5:.4f}",
                      f"{images_per_s:.2f}", f"{lr:.6g}"])
    if writer is not None:
        for name, value in (("loss", loss), ("val/top1", top1), ("val/top5", top5),
                            ("images_per_s", images_per_s), ("lr", lr)):
            writer.add_scalar(name, value, epoch)
        writer.flush()


if __name__ == "__main__":
    sys.exit(main())
