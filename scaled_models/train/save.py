"""What a run writes after each epoch and reads back on ``--resume``.

The weights, their metadata and the training state are written first; only then, after the last
epoch, the map agreement, which loads another model and may fail: the weights are never lost to
a measurement. A resumed run must be the run it continues (``identity``): the same photos,
split, recipe, teacher, batch, schedule and resolution, or it would be written under the first
one's name."""
from __future__ import annotations

from dataclasses import asdict

import torch

from safe_io.storage import StorageError, write_json

from ..checkpoint_meta import CheckpointMeta
from ..family import WeightsUnavailable
from ..table7 import spec_for
from ..zoo import device_label
from .epoch_log import trim_epoch_log
from .evaluation import Outcomes
from .judge import held_out, map_agreement
from .run import Run
from .state import (
    NonFiniteWeights,
    export_weights,
    load_training_state,
    rng_state,
    save_training_state,
    set_rng_state,
)


def metadata(run: Run, loss: float, trained: Outcomes | None) -> dict:
    config = run.config
    spec = spec_for(config.model)
    arch = config.family.architecture(spec.width, spec.depth)
    data = run.images.record() | ({"holdout": run.split.record()} if run.split else {})
    run_size = run.preprocessing.resolution
    record = {
        "model": config.model, "family": config.family.name, "label": spec.label,
        "architecture": arch.as_record(), "recipe": config.recipe.name, "init": run.init,
        "teacher": run.teacher.record() if run.teacher is not None else None,
        "data": data, "epochs": config.epochs, "epoch": run.epoch,
        "steps": run.step, "images_seen": run.images_seen,
        "wall_time_s": round(run.wall_time_s, 1), "device": device_label(run.dist.device),
        "last_loss": round(loss, 5),
        "config": {"batch_size": config.batch_size * run.dist.world, "lr": config.lr,
                   "image_size": run_size,
                   "crop_size": config.crop_size if config.recipe.crop == "random" else None,
                   "crop_area": (list(config.crop_scale) if config.recipe.crop == "random"
                                 else None),
                   "autoaugment": config.autoaugment if config.recipe.crop == "random" else None,
                   "ema_decay": config.ema_decay, "frozen_blocks": config.frozen_blocks,
                   "processes": run.dist.world,
                   "seed": config.seed, "temperature": config.temperature,
                   "workers": config.workers,
                   "autocast": str(config.autocast).removeprefix("torch.") if config.autocast
                   else None},
        "eval": held_out(run, trained),
        "map_agreement": None,  # measured after the weights are safe (``save``)
        "image_size": run_size, "preprocessing": run.preprocessing.as_dict(),
        "ema": run.ema is not None,
    }
    if run.base_state is not None:
        record["base"] = {"role": "baseline", "name": run.init["base"],
                          "source": run.init["source"], "sha256": run.init["sha256"]}
    if config.recipe.name == "fixres":
        record["bn_images"] = run.bn_images
        record["fine_tuned"] = ["head BatchNorm"] + (["classifier"]
                                                     if config.fine_tune_classifier else [])
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
    config = run.config
    try:
        weights = export_weights(run.final_net, config.folder, config.model,
                                 metadata(run, loss, trained), run.base_state)
        if config.recipe.name != "fixres":  # fixres: minutes on a CPU, it runs whole
            _save_state(run, rngs)
    except (NonFiniteWeights, StorageError) as exc:
        raise SystemExit(f"error: {exc}. {kept_words(run)}") from None
    if run.epoch == config.epochs and run.judged_on is not None:
        record = dict(CheckpointMeta.read(weights).record)
        try:
            record["map_agreement"] = map_agreement(run)
        except WeightsUnavailable as exc:
            record["map_agreement"] = {"not_measured": exc.reason}
            run.log(f"warning: map agreement not measured: {exc.reason}")
        try:
            write_json(weights.with_suffix(".json"),
                       CheckpointMeta.from_record(record, str(weights)).to_record())
        except StorageError as exc:
            raise SystemExit(f"error: {exc}. The weights and their record without the map "
                             "agreement are kept.") from None


def kept_words(run: Run) -> str:
    """What a run that stops on an error keeps, in words: the epoch its checkpoint holds (each
    file is written whole or not at all), or that nothing was written."""
    weights = run.config.weights_path
    try:
        meta = CheckpointMeta.read(weights) if weights.is_file() else None
        saved = meta.epoch if meta is not None else None
    except WeightsUnavailable:
        saved = None
    if saved is None:
        return "Nothing was written: no epoch was saved."
    more = ("; --resume continues from the last saved training state"
            if run.config.state_path.is_file() else "")
    return f"Kept: {weights}, the model after epoch {saved} (the last saved){more}."


def _save_state(run: Run, rngs: list[dict]) -> None:
    """The full training state ``resume`` continues from."""
    save_training_state(run.config.state_path, {
        "model": run.student.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else {}, "rng": rngs,
        "epoch": run.epoch, "step": run.step, "images_seen": run.images_seen,
        "wall_time_s": run.wall_time_s, "bn_images": run.bn_images,
        "start_outcomes": asdict(run.start_outcomes) if run.start_outcomes else None,
        "baseline_outcomes": (asdict(run.baseline_outcomes) if run.baseline_outcomes
                              else None),
        "not_measured": dict(run.not_measured), "identity": identity(run)})


def identity(run: Run) -> dict:
    """What a resumed run must share with the run it continues: the same training photos (every
    folder's), split, images it is judged on, recipe, teacher, batch, schedule, resolution,
    crop size and area, AutoAugment, EMA and frozen blocks; anything else
    would be a different run under the first one's name (judged on other images, its
    "top-1 (start …)" would compare different photos)."""
    config = run.config
    return {"recipe": config.recipe.name, "family": config.family.name,
            "training photos (fingerprint)": run.images.fingerprint,
            "holdout": ({"fraction": run.split.fraction, "seed": run.split.seed}
                        if run.split else None),
            "images it is judged on": run.judged_on.identity if run.judged_on else None,
            "teacher": run.teacher.name if run.teacher else None,
            "batch size": config.batch_size * run.dist.world, "epochs": config.epochs,
            "lr": config.lr, "image size": run.preprocessing.resolution,
            "seed": config.seed, "crop size": config.crop_size,
            "crop area": list(config.crop_scale), "AutoAugment": config.autoaugment,
            "EMA decay": config.ema_decay,
            "frozen blocks": config.frozen_blocks}


def resume(run: Run) -> None:
    """Continue from the training state ``save`` wrote, exactly (weights, optimiser, schedule,
    random generators, counters), once ``identity`` says it is the same run."""
    state_path = run.config.state_path
    state = load_training_state(state_path)
    saved = state.get("identity") or {}
    differs = [f"{name} ({saved[name]} then, {value} now)" for name, value in identity(run).items()
               if name in saved and saved[name] != value]
    if differs:
        raise SystemExit(f"--resume: {state_path} was saved by a run with other "
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
        trim_epoch_log(run.config.log_dir, run.epoch)
    run.log(f"resumed from {state_path} at epoch {run.epoch}, step {run.step}")
