"""The command line: the options, the ``TrainConfig`` they resolve to (every default decided
here, once), and what the person running the trainer is told as it starts."""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch

from ..cli import device_text
from ..cli.argtypes import checked, finite_number, non_empty, positive_int, whole_number
from ..distributed import Distributed, init_distributed
from ..family import AUTO_FAMILY, FAMILIES, WeightsUnavailable, paper_family, resolve_family
from ..files import DEFAULT_CHECKPOINTS
from ..table7 import MODEL_KEYS, spec_for
from ..weights import default_recipe
from .config import DEFAULT_HOLDOUT, TrainConfig, autocast_dtype
from .data import default_eval_dir
from .loop import adapt_at_resolution, train
from .recipes import EMA_DECAY, RECIPES
from .run import build_run

# Ranges of the numeric options, checked when they are parsed: outside them a run only makes a
# bad model (a temperature of 0 divides the logits by zero: NaN weights) or a torch traceback.
IMAGE_SIZES = (32, 1024)  # the networks downsample 32x; Table 7 goes to 448 px
MAX_LR = 10.0  # every recipe's learning rate is below 1 per image batch
MAX_TEMPERATURE = 100.0  # Hinton et al. use 1-20; T^2 scales the loss
MAX_WORKERS = 256
MAX_SEED = 2**32 - 1 - 1024  # numpy's seeds end at 2^32 - 1; each process adds its rank


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from . import __doc__ as package_doc

    p = argparse.ArgumentParser(prog="python -m scaled_models.train", description=package_doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=MODEL_KEYS, help="the Table 7 role to make")
    p.add_argument("--data", required=True, type=non_empty,
                   help="a folder of photos, searched recursively (labelled when the photos sit "
                        "in wnid-named folders), or a train/ + val/ ImageNet layout")
    p.add_argument("--extra-data", action="append", default=[], type=non_empty,
                   metavar="FOLDER",
                   help="another folder of photos to fit on, searched recursively, labelled or "
                        "not (photos in wnid folders keep their class, others have none); "
                        "repeat it for more. Never judged on, and recorded by fingerprint in "
                        "the checkpoint; a photo with the bytes of one the model is judged on "
                        "is left out and named (default: none, --data only)")
    p.add_argument("--eval-dir", default=None, type=non_empty,
                   help="labelled images the model is not fit to, to judge it on (top-1 beside "
                        "its start and the baseline, map agreement), in any layout "
                        "safe_io.imagenet_val "
                        "reads (default: DATA/val when DATA has train/ and val/)")
    p.add_argument("--holdout", type=finite_number(0.0, 1.0, high_open=True), default=None,
                   help="judge the model on this fraction of DATA, held out of training by a "
                        f"seeded split recorded in the checkpoint (default: {DEFAULT_HOLDOUT} "
                        "when DATA is labelled and there is no --eval-dir, else 0; 0 judges on "
                        "nothing)")
    p.add_argument("--out", default=str(DEFAULT_CHECKPOINTS), type=non_empty,
                   help="checkpoints root the app reads (default: %(default)s)")
    p.add_argument("--recipe", default=None, choices=list(RECIPES),
                   help=f"default: {_default_recipes()}")
    p.add_argument("--family", default=None, choices=list(FAMILIES),
                   help="default: efficientnet for --recipe paper, else the family whose "
                        "baseline weights are available")
    p.add_argument("--teacher", default="auto", type=non_empty,
                   help="distill only: auto (the strongest available model outside the grid), "
                        "a role, a published model (lite1, efficientnet_b4), timm:NAME or a "
                        "checkpoint (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="passes over the data (default: " + _per_recipe("epochs") + ")")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per process and step (default: " + _per_recipe("batch_size")
                        + ")")
    p.add_argument("--image-size", type=whole_number(*IMAGE_SIZES), default=None,
                   help=f"training resolution, {IMAGE_SIZES[0]}..{IMAGE_SIZES[1]} px (default: "
                        "the role's, Table 7)")
    p.add_argument("--crop-size", type=whole_number(*IMAGE_SIZES), default=None,
                   help="random-crop recipes: the training crops' size in px, "
                        f"{IMAGE_SIZES[0]}..{IMAGE_SIZES[1]}; the model still runs and is "
                        "judged at --image-size. A random crop shows objects larger than the "
                        "test-time centre crop at the same size (Touvron et al., NeurIPS "
                        "2019), so a smaller crop can match the test crops' object size at "
                        "less cost; a teacher sees each crop scaled by the same factor "
                        "(default: --image-size)")
    p.add_argument("--crop-min-area", type=finite_number(0.0, 1.0, low_open=True), default=None,
                   metavar="FRACTION",
                   help="random-crop recipes: the smallest share of a photo's area a training "
                        "crop covers (the largest is all of it). A smaller share shows objects "
                        "larger than the test-time centre crop does (Touvron et al., NeurIPS "
                        "2019) (default: " + _per_recipe_crop_area() + ")")
    p.add_argument("--autoaugment", action="store_true",
                   help="random-crop recipes: AutoAugment's ImageNet policy (Cubuk et al., CVPR "
                        "2019) on every training crop, after the flip; a teacher sees the same "
                        "augmented crop, so function matching stays consistent (default: the "
                        "recipe's: on for paper, off for the others)")
    p.add_argument("--lr", type=finite_number(0.0, MAX_LR), default=None,
                   help=f"learning rate, 0..{MAX_LR:g} (default: the recipe's, scaled with the "
                        "global batch)")
    p.add_argument("--fine-tune-classifier", action="store_true",
                   help="fixres only: also fine-tune the classifier, as FixRes does with the "
                        "full ImageNet training set (it overfits a few hundred photos)")
    p.add_argument("--temperature", type=finite_number(0.0, MAX_TEMPERATURE, low_open=True),
                   default=None,
                   help=f"distillation temperature, above 0 and up to {MAX_TEMPERATURE:g} "
                        "(default: " + _per_recipe("temperature") + ")")
    p.add_argument("--ema", type=finite_number(0.0, 1.0, low_open=True, high_open=True),
                   default=None, metavar="DECAY",
                   help="keep an exponential moving average of the student with this decay per "
                        "step and write it as the model; the student without it is judged "
                        "beside it (default: " + _per_recipe_ema() + ")")
    p.add_argument("--frozen-blocks", type=whole_number(0, 1000), default=0, metavar="N",
                   help="match, distill, paper: the stem and the first N blocks keep their "
                        "start's weights and nothing runs backward through them (the "
                        "highest-resolution layers, the costliest to train); 0 trains every "
                        "weight (default: 0)")
    p.add_argument("--workers", type=whole_number(0, MAX_WORKERS), default=2,
                   help=f"data loader processes, 0..{MAX_WORKERS} (default: 2)")
    p.add_argument("--seed", type=whole_number(0, MAX_SEED), default=0,
                   help="random seed, of training and of the --holdout split (default: 0)")
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="auto: bfloat16 autocast on GPUs and CPUs with native bfloat16 "
                        "(AVX512-BF16 or AMX), float16 on older GPUs, else float32 "
                        "(default: %(default)s)")
    p.add_argument("--device", default=None, type=checked(device_text, "device"),
                   help="cuda, cuda:N or cpu (default: the best one found)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/FAMILY/KEY.state.pt")
    p.add_argument("--limit-steps", type=positive_int, default=None,
                   help="at most this many steps per epoch, for smoke runs (default: all)")
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="stop after this many epochs of this invocation and --resume later "
                        "(default: run to --epochs)")
    p.add_argument("--eval-every", type=positive_int, default=1,
                   help="judge the model every N epochs; the last epoch always (default: 1)")
    p.add_argument("--log-dir", default=None, type=non_empty,
                   help="CSV and TensorBoard logs (default: OUT/logs/FAMILY-KEY)")
    return p.parse_args(argv)


def _default_recipes() -> str:
    """Each role's default recipe for the help text, read from ``default_recipe`` itself (the
    text once said fixres where the code used match)."""
    roles: dict[str, list[str]] = {}
    for key in MODEL_KEYS:
        roles.setdefault(default_recipe(key), []).append(key)
    return "; ".join(f"{recipe} for {', '.join(keys)}" for recipe, keys in roles.items())


def _per_recipe(field_name: str) -> str:
    """A recipe default for the help text, read from the recipes themselves."""
    return ", ".join(f"{getattr(r, field_name)} for {r.name}" for r in RECIPES.values())


def _per_recipe_crop_area() -> str:
    """Each random-crop recipe's smallest crop area for the help text, from the recipes."""
    return ", ".join(f"{r.crop_scale[0]:g} for {r.name}" for r in RECIPES.values()
                     if r.crop == "random")


def _per_recipe_ema() -> str:
    """Each recipe's EMA default for the help text, read from the recipes themselves."""
    return ", ".join(f"{EMA_DECAY:g} for {r.name}" if r.ema else f"none for {r.name}"
                     for r in RECIPES.values())


def config_from_args(args: argparse.Namespace, dist: Distributed) -> TrainConfig:
    """The run's settings, every default resolved: the family, the role's recipe and its epochs,
    batch, temperature and learning rate (scaled with the global batch), the resolution, the
    evaluation folder, the log folder and the autocast type on this device."""
    family = (FAMILIES[args.family] if args.family
              else paper_family() if args.recipe == "paper"
              else resolve_family(AUTO_FAMILY)[0])
    recipe = RECIPES[args.recipe or default_recipe(args.model)]
    batch_size = args.batch_size or recipe.batch_size
    data, out = Path(args.data), Path(args.out)
    if args.crop_size is not None and recipe.crop != "random":
        raise SystemExit(f"--crop-size: {recipe.name} adapts the model to its test-time crop, "
                         "so it takes no other crop size")
    if args.crop_min_area is not None and recipe.crop != "random":
        raise SystemExit(f"--crop-min-area: {recipe.name} adapts the model to its test-time "
                         "crop, so it takes no random crops")
    if args.autoaugment and recipe.crop != "random":
        raise SystemExit(f"--autoaugment: {recipe.name} adapts the model to its test-time "
                         "crop, so it takes no augmented crops")
    if args.frozen_blocks and recipe.name == "fixres":
        raise SystemExit("--frozen-blocks: fixres trains only the head's BatchNorm already")
    image_size = args.image_size or spec_for(args.model).paper_resolution
    return TrainConfig(
        model=args.model, family=family, recipe=recipe, data=data,
        extra_data=tuple(Path(folder) for folder in args.extra_data),
        eval_dir=Path(args.eval_dir) if args.eval_dir else default_eval_dir(data),
        holdout=args.holdout, out=out,
        log_dir=Path(args.log_dir or out / "logs" / f"{family.name}-{args.model}"),
        teacher=args.teacher, epochs=args.epochs or recipe.epochs, batch_size=batch_size,
        image_size=image_size, crop_size=args.crop_size or image_size,
        crop_scale=((args.crop_min_area, 1.0) if args.crop_min_area is not None
                    else recipe.crop_scale),
        autoaugment=args.autoaugment or recipe.autoaugment,
        lr=(args.lr if args.lr is not None
            else recipe.default_lr_per_256 * batch_size * dist.world / 256),
        temperature=args.temperature if args.temperature is not None else recipe.temperature,
        fine_tune_classifier=args.fine_tune_classifier,
        ema_decay=args.ema if args.ema is not None else EMA_DECAY if recipe.ema else None,
        frozen_blocks=args.frozen_blocks,
        workers=args.workers, seed=args.seed,
        autocast=autocast_dtype(dist.device, args.precision), resume=args.resume,
        limit_steps=args.limit_steps, stop_after=args.stop_after, eval_every=args.eval_every)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dist = init_distributed(args.device)
    for seed_fn in (torch.manual_seed, random.seed, np.random.seed):
        seed_fn(args.seed + dist.rank)
    try:
        return _run(config_from_args(args, dist), dist)
    except WeightsUnavailable as exc:  # a published model (student start, teacher) is missing
        fix = f"; to make it available: {exc.make_available}" if exc.make_available else ""
        raise SystemExit(f"error: {exc.reason}{fix}") from None


def _run(config: TrainConfig, dist: Distributed) -> int:
    """Build the run (every input checked before the networks load), say what it is, train."""
    run = build_run(config, dist)
    judged = (f"; judged on {run.judged_on.record['images']} {run.judged_on.record['kind']} "
              f"images of {run.judged_on.record['folder']}" if run.judged_on
              else f"; judged on nothing: {run.not_judged}")
    run.log(f"{config.recipe.name} {config.family.name}/{config.model}: {run.init['words']}; "
            f"{run.images.words()}{judged}"
            + (f"; teacher {run.teacher.name}" if run.teacher else ""))
    if run.teacher is not None and run.teacher.caveat:
        run.log(f"caveat: {run.teacher.caveat}")
    if config.recipe.name == "fixres":
        return adapt_at_resolution(run)
    return train(run)
