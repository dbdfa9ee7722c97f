"""What one training invocation was asked to do, every default resolved: built once from the
command line (``cli.config_from_args``) and never changed afterwards, so the loop, the judging,
the checkpoint's metadata and ``--resume``'s identity check all read the same values."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..family import WeightFamily
from .recipes import Recipe

# Photos of a labelled --data held out to judge the model by default, when nothing else is given
# to judge it on: half, so that both sides keep a few hundred of the 501 shared photos.
DEFAULT_HOLDOUT = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings; ``None`` only where the option means "none" (no step limit, run to
    ``epochs``) or where the default depends on the photos (``holdout``)."""

    model: str  # the Table 7 role
    family: WeightFamily
    recipe: Recipe
    data: Path
    extra_data: tuple[Path, ...]  # more folders to fit on (--extra-data), never judged on
    eval_dir: Path | None  # --eval-dir, or DATA itself when it holds train/ and val/
    holdout: float | None  # --holdout as given; ``holdout_fraction`` resolves None
    out: Path  # the checkpoints root
    log_dir: Path
    teacher: str  # --teacher as given: resolved only by the recipes that have an outside teacher
    epochs: int
    batch_size: int  # per process and step
    image_size: int  # the resolution the model runs and is judged at
    crop_size: int  # the training crops' (random-crop recipes): image_size unless given
    crop_scale: tuple[float, float]  # random crops' share of the photo's area: the recipe's
    autoaugment: bool  # AutoAugment on the random crops: --autoaugment or the recipe's
    lr: float  # given, or the recipe's per 256 images scaled with the global batch
    temperature: float
    fine_tune_classifier: bool
    ema_decay: float | None  # the student's exponential moving average; None: no EMA
    frozen_blocks: int  # the stem and this many first blocks keep their start's weights
    workers: int
    seed: int
    autocast: torch.dtype | None  # --precision on this device; None: float32, no autocast
    resume: bool
    limit_steps: int | None
    stop_after: int | None
    eval_every: int

    @property
    def folder(self) -> Path:
        """Where the app reads this family's checkpoints."""
        return self.out / self.family.name

    @property
    def state_path(self) -> Path:
        return self.folder / f"{self.model}.state.pt"

    @property
    def weights_path(self) -> Path:
        return self.folder / f"{self.model}.safetensors"

    def holdout_fraction(self, labelled: bool) -> float:
        """The fraction of the training photos held out to judge the model: ``--holdout`` if
        given, else ``DEFAULT_HOLDOUT`` for labelled photos with no other images to judge on,
        else 0 (nothing held out)."""
        if self.holdout is not None:
            return self.holdout
        return DEFAULT_HOLDOUT if self.eval_dir is None and labelled else 0.0


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
