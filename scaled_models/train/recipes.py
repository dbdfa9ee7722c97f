"""What each recipe trains, from where, with which loss and optimiser."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..architectures import CamNet
from ..expand import deepen, widen
from ..family import WeightFamily
from ..files import file_sha256
from ..weights import load_published

PAPER_BATCH_LR = (0.256, 4096)  # the paper's lr per images in a global batch, scaled linearly
EMA_DECAY = 0.9999
MATCH_LR_PER_256 = 1.6e-3  # AdamW: 1e-4 for the default batch of 16
MATCH_EPOCHS = 30


class NonFiniteLoss(ArithmeticError):
    """A training loss that is NaN or infinite: the step that would have applied it, and every
    later one, would only make NaN weights, so the run stops and keeps its last saved epoch."""


@dataclass(frozen=True)
class Recipe:
    name: str
    crop: str  # "random" (random-resized crop + flip) or "test-time" (resize, centre crop)
    autoaugment: bool
    teacher: str  # "none", "outside" (a teacher outside the grid) or "baseline" (self)
    default_lr_per_256: float
    bn_momentum: float | None  # None keeps the network's own
    stochastic_depth: float
    ema: bool
    epochs: int  # default passes over the data (fixres: over the cached head inputs, ~1 s each)
    batch_size: int  # default images per process and step
    temperature: float = 1.0  # of the distillation loss (``--temperature`` overrides it)
    crop_scale: tuple[float, float] = (0.08, 1.0)  # random crops: the fraction of the area
    mixup: float = 0.0  # Beta(a, a) of the mixing weight; 0 mixes nothing
    frozen_bn_statistics: bool = False  # BatchNorm normalises with its running statistics
    optimizer: str = "sgd"  # "sgd" (Nesterov), "rmsprop" (the paper's) or "adamw"


RECIPES: dict[str, Recipe] = {
    "paper": Recipe("paper", "random", True, "none", PAPER_BATCH_LR[0] * 256 / PAPER_BATCH_LR[1],
                    0.01, 0.2, True, 5, 64,  # TF's BN decay 0.99 is PyTorch momentum 0.01
                    optimizer="rmsprop"),
    "distill": Recipe("distill", "random", False, "outside", 0.01, None, 0.0, False, 5, 64,
                      temperature=2.0),
    "fixres": Recipe("fixres", "test-time", False, "baseline", 1.28, None, 0.0, False, 40, 32),
    # Function matching across resolutions (Beyer et al., "Knowledge distillation: a good
    # teacher is patient and consistent", CVPR 2022): the whole network at 448 px learns to say
    # what the baseline says at 224 px about the *same* random crop, mixed up; BatchNorm keeps
    # the baseline's statistics (a batch of 16 at 448 px estimates them worse).
    "match": Recipe("match", "random", False, "baseline", MATCH_LR_PER_256, None, 0.0, False,
                    MATCH_EPOCHS, 16, crop_scale=(0.25, 1.0), mixup=1.0,
                    frozen_bn_statistics=True, optimizer="adamw"),
}


def student_for(family: WeightFamily, key: str, recipe: Recipe, seed: int
                ) -> tuple[CamNet, dict]:
    """The network to train and a record of how it was initialised. Expansions and FixRes start
    from the family's *published* baseline, never from a local checkpoint, so every student
    starts from the same citable weights."""
    binding = family.role(key)
    arch = family.architecture(binding.column.spec.width, binding.column.spec.depth)
    if recipe.name == "paper":
        net = arch.build(stochastic_depth=recipe.stochastic_depth,
                         bn_momentum=recipe.bn_momentum)
        return net, {"kind": "random", "words": "random initialisation (paper recipe)"}
    base_weights = family.role("baseline").weights
    if base_weights is None:
        raise SystemExit(f"the {family.name} family publishes no baseline to start from")
    base, path = load_published(base_weights, family.role("baseline").arch.build())
    record = {"base": base_weights.name, "source": base_weights.source,
              "sha256": file_sha256(path)}
    if recipe.teacher == "baseline":
        if (arch.width, arch.depth) != (1.0, 1.0):
            raise SystemExit(f"{recipe.name} adapts the baseline's own network to another "
                             "resolution: use it for the resolution role")
        return base, record | {"kind": "published",
                               "words": f"{base_weights.name} weights, unchanged architecture"}
    if arch.width != 1.0 and arch.depth == 1.0:
        return widen(base, family, seed), record | {
            "kind": "widened", "seed": seed,
            "words": f"width x{arch.width:g} expansion of {base_weights.name} (unequal splits)"}
    if arch.width == 1.0 and arch.depth > 1.0:
        return deepen(base, family), record | {
            "kind": "deepened", "words": f"depth x{arch.depth:g} expansion of {base_weights.name}"}
    if (arch.width, arch.depth) == (1.0, 1.0):
        return base, record | {"kind": "published", "words": f"{base_weights.name} weights"}
    raise SystemExit(f"no function-preserving start for {family.name}/{key} "
                     f"(w={arch.width:g}, d={arch.depth:g}); use --recipe paper")


def trainable_parameters(net: CamNet, recipe: Recipe, family: WeightFamily,
                         fine_tune_classifier: bool = False, frozen_blocks: int = 0
                         ) -> list[nn.Parameter]:
    """FixRes fine-tunes the BatchNorm that precedes the global pooling and, with
    ``fine_tune_classifier``, the classifier (Touvron et al. 2019, §4); the other recipes train
    everything after the stem and the first ``frozen_blocks`` blocks (``frozen_units``). The
    classifier is left alone by default: its 1.28 M weights overfit a few hundred
    photos (on 400 of the 501 shared photos, training it made the held-out agreement with the
    224 px baseline worse: KL 1.40 → 1.45, where the head BatchNorm alone took it to 0.67)."""
    if recipe.name != "fixres":
        frozen = {id(p) for module in frozen_units(net, frozen_blocks)
                  for p in module.parameters()}
        chosen = [p for p in net.parameters() if id(p) not in frozen]
    else:
        _, head_norm = family.split_at_head_norm(net)
        chosen = [p for m in head_norm.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in (m.weight, m.bias)]
        if fine_tune_classifier:
            chosen += list(net.fc.parameters())
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    for parameter in chosen:
        parameter.requires_grad_(True)
    return chosen


def frozen_units(net: CamNet, blocks: int) -> list[nn.Module]:
    """The stem and the first ``blocks`` blocks of ``net.features`` (none for 0), in forward
    order; a unit is a module with parameters, a Sequential (a stage) opened, a BatchNorm
    joined to the unit before it (as cam.engine.cascade counts them). Nothing runs backward
    through them: at 384-448 px the first, highest-resolution layers cost most of a training
    step's backward pass, and they compute local features that need the least adapting."""
    if blocks == 0:
        return []
    units: list[list[nn.Module]] = []

    def walk(module: nn.Module) -> None:
        for child in module.children():
            if isinstance(child, nn.Sequential):
                walk(child)
            elif isinstance(child, nn.modules.batchnorm._BatchNorm) and units:
                units[-1].append(child)
            elif any(True for _ in child.parameters()):
                units.append([child])

    walk(net.features)
    if blocks > len(units) - 2:  # the head (last unit) always trains
        raise SystemExit(f"--frozen-blocks {blocks}: the network has {len(units) - 2} blocks "
                         "between its stem and its head; freeze fewer")
    return [module for unit in units[:blocks + 1] for module in unit]


def make_optimizer(recipe: Recipe, parameters: list[nn.Parameter], lr: float
                   ) -> torch.optim.Optimizer:
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, alpha=0.9, momentum=0.9, eps=1e-3,
                                   weight_decay=1e-5)
    if recipe.optimizer == "adamw":  # no decay: the start is the published model, not zero
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True,
                           weight_decay=0.0 if recipe.name == "fixres" else 1e-5)


def lr_factor(recipe: Recipe, steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """Warm-up, then the paper's ×0.97 every 2.4 epochs, or a cosine to zero for the short
    recipes."""
    warmup = max(1, round((min(5, max(epochs * 0.1, 0.3)) if recipe.name == "paper" else 0.1)
                          * steps_per_epoch))
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if recipe.name == "paper":
            return 0.97 ** ((step / steps_per_epoch) // 2.4)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) at temperature T, scaled by T² (Hinton, Vinyals & Dean 2015)."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=1),
                    F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * t * t


def mix(crops: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mixup of a batch with itself reversed, one weight ~ Beta(alpha, alpha) per batch (Zhang et
    al., ICLR 2018); teacher and student see the same mixed images, so no label is mixed."""
    weight = float(torch.distributions.Beta(alpha, alpha).sample())
    return weight * crops + (1 - weight) * crops.flip(0)


def loss_for(recipe: Recipe, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
             labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """paper: cross-entropy with label smoothing 0.1. distill: the teacher's soft targets, half
    and half with cross-entropy where labels exist. fixres and match: the 224 px baseline's
    soft targets alone (self-distillation, no label)."""
    logits = student_logits.float()
    if teacher_logits is None:
        return F.cross_entropy(logits, labels, label_smoothing=0.1)
    if recipe.teacher == "baseline":
        return distillation_loss(logits, teacher_logits.float(), temperature)
    soft = distillation_loss(logits, teacher_logits.float(), temperature)
    labelled = labels >= 0
    if not labelled.any():
        return soft
    hard = F.cross_entropy(logits[labelled], labels[labelled], label_smoothing=0.1)
    return 0.5 * soft + 0.5 * hard


@torch.no_grad()
def reestimate_batchnorm(net: CamNet, batches: Iterable, device: torch.device,
                         normalise: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """Replace every BatchNorm's running statistics by their exact average over ``batches`` at
    the new resolution (FixRes's first step; momentum=None gives the cumulative average).
    Returns the number of images seen."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    seen = 0
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.eval()
    for m in norms:
        m.train()
    for batch in batches:
        if batch is None:
            continue
        images = batch[0].to(device)
        net(normalise(images))
        seen += len(images)
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
    return seen
