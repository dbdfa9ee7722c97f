"""Where each Table 7 role's weights come from, and what each model is, in words.

Within a family a role is filled, in this order, by: a checkpoint in the user's checkpoints folder;
a checkpoint shipped with scalecam (``scaled_models/checkpoints``, e.g. the lite resolution model
adapted to 448 px); the family's published weights; else nothing — the role is *unavailable*, never
run with random weights. Every failure on that path is a ``WeightsUnavailable`` caught in one place
(``load_weights``), so a truncated download or a foreign file disables its own role only.

A checkpoint is ``<root>/<family>/<key>.safetensors`` (or a weights-only ``.pth``) with
``<key>.json`` metadata written by ``scaled_models.train``. It may hold only the tensors that differ
from a published model (``"base"`` in its metadata names that model and its file's sha256), so an
adapted model ships in a few MB.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from .architectures import Architecture, CamNet
from .family import (
    FAMILIES,
    PublishedWeights,
    RoleBinding,
    WeightFamily,
    WeightsUnavailable,
    families_for,
    offline_family,
    paper_family,
)
from .ladders import DEFAULT_LADDER, Ladder
from .preprocessing import Preprocessing

CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth")
DEFAULT_CHECKPOINTS = Path("checkpoints")
BUNDLED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT_FORMAT = 1  # the "scalecam_checkpoint" version written into checkpoint metadata

# One word per kind of model, for headers and tables (``Provenance.status``).
STATUS_PUBLISHED, STATUS_STAND_IN, STATUS_UNAVAILABLE = "published", "stand-in", "unavailable"
STATUS_UNVERIFIED = "unverified"  # a file under a published name whose bytes are not that file
_RECIPE_STATUS = {"match": "adapted", "fixres": "adapted", "distill": "distilled",
                  "paper": "trained"}


@dataclass(frozen=True)
class Provenance:
    """Everything needed to say where a model's weights came from, as plain data."""

    family: str
    key: str
    available: bool
    source: str
    architecture: str
    resolution: int
    trained_for_config: bool  # the weights were made for this role's configuration
    stand_in: bool  # … or they only stand in for the paper's network (other blocks or config)
    status: str  # one word: published / adapted / distilled / trained / stand-in / unavailable
    headline: str  # what the model is in a few words, for grid headers: "adapted from Lite0 …"
    recipe: str  # what the model is, in a sentence, e.g. "adapted to 448 px (FixRes) from …"
    file: str | None = None
    sha256: str | None = None
    preprocessing: dict | None = None
    top1: float | None = None
    top1_source: str | None = None
    judged: Judged | None = None  # top-1 on unseen images beside the start and baseline
    notes: tuple[str, ...] = ()
    unavailable_reason: str | None = None
    make_available: str | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class LoadedWeights:
    provenance: Provenance
    arch: Architecture  # what was built (or would be, for an unavailable role)
    net: CamNet | None
    preprocessing: Preprocessing | None


def checkpoints_root(path: str | os.PathLike | None = None) -> Path:
    """``--checkpoints`` if given, else ``$SCALECAM_CHECKPOINTS``, else ``checkpoints/``."""
    return Path(path or os.environ.get("SCALECAM_CHECKPOINTS") or DEFAULT_CHECKPOINTS)


def check_checkpoints(path: str | os.PathLike) -> None:
    """A checkpoints folder as given (it may not exist yet: then no local checkpoint is used),
    never an empty value or a file; ``ValueError`` otherwise."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise ValueError(f"checkpoints must name a folder, got {path!r} (leave it out for "
                         "$SCALECAM_CHECKPOINTS or checkpoints/)")
    if Path(path).exists() and not Path(path).is_dir():
        raise ValueError(f"checkpoints {os.fspath(path)} is a file, not a folder")


def checkpoints_argument(text: str) -> str:
    """--checkpoints checked when the arguments are parsed (``check_checkpoints``)."""
    try:
        check_checkpoints(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def find_checkpoint(root: Path, family: str, key: str) -> Path | None:
    for suffix in CHECKPOINT_SUFFIXES:
        candidate = root / family / f"{key}{suffix}"
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, computed once per (path, size, mtime)."""
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only: safetensors, or a ``.pth`` read with ``weights_only=True`` — a pickle that
    would run code is refused, never executed."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear message
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailable(f"{path}: not a loadable tensor file ({first_line}); scalecam "
                                 "only reads safetensors or weights-only .pth state dicts",
                                 f"replace or remove {path}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailable(f"{path}: expected a flat state dict of tensors",
                                 f"replace or remove {path}")
    return state


def non_finite_values(state: dict[str, torch.Tensor]) -> str | None:
    """``None`` when every floating-point value of ``state`` is finite, else what is not, in
    words ("4,507,974 of 4,652,008 values are NaN or infinite, in 212 tensors (e.g. fc.weight)").
    A network with one NaN weight gives NaN logits and maps: such weights are never written
    (``scaled_models.train``) and never loaded (``load_into``)."""
    bad_tensors, bad, total = [], 0, 0
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        count = tensor.numel() - int(torch.isfinite(tensor).sum())
        total += tensor.numel()
        if count:
            bad += count
            bad_tensors.append(key)
    if not bad:
        return None
    return (f"{bad:,} of {total:,} values are NaN or infinite, in {len(bad_tensors)} "
            f"tensor{'s' if len(bad_tensors) > 1 else ''} (e.g. {bad_tensors[0]})")


def load_into(net: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Strict load whose error names the offending keys instead of a wall of text; weights
    that are not all finite are refused, naming how many are not."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                        ("shape mismatches (file vs model)", mismatched)):
        if keys:
            shown = ", ".join(keys[:5]) + (f" … (+{len(keys) - 5} more)" if len(keys) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise WeightsUnavailable(f"{origin} does not fit this architecture — "
                                 + "; ".join(problems))
    broken = non_finite_values(state)
    if broken:
        raise WeightsUnavailable(f"{origin}: not usable weights: {broken}")
    net.load_state_dict(state)


def load_published(weights: PublishedWeights, net: CamNet | None = None) -> tuple[CamNet, Path]:
    """``weights`` loaded into ``net`` (default: the network they were published for)."""
    net = weights.build() if net is None else net
    path = weights.locate()
    load_into(net, weights.family.adapt_state_dict(read_state_dict(path), net, str(path)),
              str(path))
    return net.eval(), path


def resolve_family(requested: str, ladder: Ladder = DEFAULT_LADDER) -> tuple[WeightFamily, str]:
    """A family's name, or ``auto``, for ``ladder``; with the reason. ``auto`` is the one family
    that fills a ladder only one fills (the ResNets), else ``efficientnet`` when B0's weights
    can be had, else the offline ``lite``. Called once, where the request is read (a command
    line's ``--family``, the app's selector): everything below takes the family itself."""
    fillers = families_for(ladder)
    if requested in FAMILIES:
        family = FAMILIES[requested]
        if family not in fillers:
            raise ValueError(f"the {family.name} family has no models for the {ladder.name} "
                             f"ladder; choose {' or '.join(['auto', *(f.name for f in fillers)])}")
        return family, requested_reason(family)
    if requested != "auto":
        raise ValueError(f"unknown family {requested!r}; choose auto, {', '.join(FAMILIES)}")
    if len(fillers) == 1:
        return fillers[0], f"auto: the only family with models for the {ladder.name} ladder"
    paper, offline = paper_family(), offline_family()
    ok, why = paper.published_available("baseline")
    if ok:
        return paper, f"auto: {paper.role('baseline').weights.name}'s weights are available ({why})"
    return offline, f"auto: using the offline {offline.name} stand-ins because {why}"


def requested_reason(family: WeightFamily) -> str:
    """Why a family that was named is used."""
    return f"family {family.name!r} was requested"


def default_recipe(key: str) -> str:
    """The recipe that makes a role: function matching adapts the baseline to the resolution
    role's pixels; the other roles change the network, so they are distilled into an
    expansion."""
    return "match" if key == "resolution" else "distill"


def train_command(family: WeightFamily, key: str, root: Path) -> str:
    """The command that makes a role's checkpoint."""
    return (f"python -m scaled_models.train --model {key} --family {family.name} "
            f"--recipe {default_recipe(key)} --data IMAGES_DIR --out {root}")


SharedNets = dict[tuple[str, Architecture], tuple[CamNet, Path]]
"""Published networks already loaded by one zoo, by (weights source, architecture): two columns
of the same weights (ResNet-50 and ResNet-50 at 448 px) share one network in memory."""


def load_weights(family: WeightFamily, key: str,
                 checkpoints: str | os.PathLike | None = None, ladder: Ladder = DEFAULT_LADDER,
                 shared: SharedNets | None = None) -> LoadedWeights:
    """The weights for one column of one of a family's ladders, or why there are none and how
    to get them.

    The one place a ``WeightsUnavailable`` becomes an unavailable role."""
    binding = family.bindings(ladder)[key]
    root = checkpoints_root(checkpoints)
    user_file = find_checkpoint(root, family.name, key)
    shipped_file = find_checkpoint(BUNDLED_CHECKPOINTS, family.name, key)
    checkpoint = user_file or shipped_file
    try:
        if checkpoint is not None:
            return _load_checkpoint(family, binding, checkpoint)
        if binding.weights is None and binding.column.spec is None:
            raise WeightsUnavailable(binding.note or f"nobody publishes weights for "
                                                     f"{binding.column.label}")
        if binding.weights is None:
            raise WeightsUnavailable(
                f"nobody publishes weights for {binding.column.label}; no checkpoint at "
                f"{root / family.name / (key + '.safetensors')}",
                train_command(family, key, root))
        return _load_role_published(family, binding, shared)
    except WeightsUnavailable as exc:
        source = (f"checkpoint {checkpoint.name}" if checkpoint is not None
                  else binding.weights.source if binding.weights is not None else "none")
        reason = f"checkpoint refused: {exc}" if checkpoint is not None else exc.reason
        fix = exc.make_available or (binding.weights.install_hint if binding.weights else "")
        if checkpoint is not None:
            fix = f"replace or remove {checkpoint}" + (
                f"; to make it again: {train_command(family, key, root)}"
                if binding.column.spec is not None else "")
        return LoadedWeights(Provenance(
            family=family.name, key=key, available=False, source=source,
            architecture=binding.arch.description, resolution=binding.resolution,
            trained_for_config=False, stand_in=False, status=STATUS_UNAVAILABLE,
            headline="unavailable", recipe="unavailable",
            file=str(checkpoint) if checkpoint else None,
            unavailable_reason=reason, make_available=fix), binding.arch, None, None)


def _load_role_published(family: WeightFamily, binding: RoleBinding,
                         shared: SharedNets | None = None) -> LoadedWeights:
    weights = binding.weights
    memo_key = (weights.source, binding.arch)
    if shared is not None and memo_key in shared:
        net, path = shared[memo_key]
    else:
        net, path = load_published(weights, binding.arch.build())
        if shared is not None:
            shared[memo_key] = (net, path)
    preprocessing = weights.preprocessing.at_resolution(binding.resolution)
    stand_in = family.stand_in or binding.stand_in
    native = binding.resolution == weights.preprocessing.resolution
    digest = file_sha256(path)
    status = STATUS_STAND_IN if binding.stand_in else STATUS_PUBLISHED
    if binding.stand_in:
        recipe = f"stand-in: {binding.note}"
        headline = (f"stand-in: {weights.name}" if native
                    else f"stand-in: {weights.name} at {binding.resolution} px")
    else:
        recipe = f"published: {weights.source}"
        headline = f"published {weights.name}"
    unverified = unverified_reason(weights.source, weights.sha256_prefix, path, digest)
    if unverified:  # loaded as torchvision would, said as what it is
        status, headline = STATUS_UNVERIFIED, f"unverified {weights.name} file"
        recipe = f"{unverified}. {recipe}" if binding.stand_in else unverified
    return LoadedWeights(Provenance(
        family=family.name, key=binding.key, available=True, source=weights.source,
        architecture=binding.arch.description, resolution=binding.resolution,
        trained_for_config=not binding.stand_in and not unverified, stand_in=stand_in,
        status=status, headline=headline, recipe=recipe,
        file=str(path), sha256=digest, preprocessing=preprocessing.as_dict(),
        # published top-1 holds where it was measured, for the published file
        top1=weights.top1 if native and not unverified else None,
        top1_source="published" if native and not unverified else None,
        notes=(binding.note,) if binding.note else ()), binding.arch, net, preprocessing)


def unverified_reason(source: str, prefix: str | None, path: Path, digest: str) -> str | None:
    """Why a file under a published name is not the published file (its sha256 does not start
    with ``prefix``, as the name says it does), or ``None``. torchvision itself loads such a
    file without a word; scalecam loads it too, and says it is not what it is named."""
    if prefix is None or digest.startswith(prefix):
        return None
    return (f"{path.name} is named as {source}'s file, but its sha256 ({digest[:12]}…) "
            f"does not start with {prefix} as the published file's does: not the published "
            "weights (their top-1 does not apply)")


def read_checkpoint_metadata(path: Path) -> dict:
    """``<checkpoint>.json`` beside a checkpoint, or ``{}`` when there is none."""
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return {}
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsUnavailable(f"{meta_path}: unreadable metadata ({exc})") from None


def _load_checkpoint(family: WeightFamily, binding: RoleBinding, path: Path) -> LoadedWeights:
    metadata = read_checkpoint_metadata(path)
    spec = binding.column.spec
    # what the column asks: Table 7's architecture for a Table 7 role, else the binding's
    arch = family.architecture(spec.width, spec.depth) if spec is not None else binding.arch
    recorded = metadata.get("architecture") or {}
    if recorded and (recorded.get("width"), recorded.get("depth")) != (arch.width, arch.depth):
        raise WeightsUnavailable(f"{path}: trained for w={recorded.get('width')} "
                                 f"d={recorded.get('depth')}, but {family.name}/{binding.key} "
                                 f"is w={arch.width:g} d={arch.depth:g}")
    resolution = int(metadata.get("image_size")
                     or (spec.paper_resolution if spec is not None else binding.resolution))
    pre = metadata.get("preprocessing") or {}
    preprocessing = Preprocessing.from_crop_pct(
        resolution, float(pre.get("crop_pct", family.crop_pct)),
        tuple(pre.get("mean", family.mean)),
        tuple(pre.get("std", family.std)), pre.get("interpolation", "bicubic"))
    net = arch.build()
    state = read_state_dict(path)
    if metadata.get("base"):
        state = _on_base(family, metadata["base"], state, net, path)
    load_into(net, state, str(path))
    top1, top1_source = checkpoint_top1(metadata)
    return LoadedWeights(Provenance(
        family=family.name, key=binding.key, available=True, source=f"checkpoint {path.name}",
        architecture=arch.description, resolution=resolution, file=str(path),
        sha256=file_sha256(path), preprocessing=preprocessing.as_dict(),
        trained_for_config=True, stand_in=family.stand_in,
        status=_RECIPE_STATUS.get(metadata.get("recipe"), "trained"),
        headline=checkpoint_headline(metadata), recipe=describe_checkpoint(metadata),
        top1=top1, top1_source=top1_source, judged=Judged.from_metadata(metadata),
        metadata=metadata), arch, net.eval(), preprocessing)


def _on_base(family: WeightFamily, base: dict, delta: dict[str, torch.Tensor], net: CamNet,
             path: Path) -> dict[str, torch.Tensor]:
    """A delta checkpoint's tensors laid over the published weights it was made from; refused
    when that file is not the one recorded (its sha256 differs)."""
    weights = family.role(base.get("role", "baseline")).weights
    if weights is None or weights.source != base.get("source"):
        raise WeightsUnavailable(f"{path}: made from {base.get('source')}, which this family "
                                 "does not publish")
    published, published_path = load_published(weights, net)
    if base.get("sha256") and file_sha256(published_path) != base["sha256"]:
        raise WeightsUnavailable(f"{path}: made from {published_path.name} with sha256 "
                                 f"{base['sha256'][:12]}…, but the installed file differs")
    state = published.state_dict()
    unknown = [k for k in delta if k not in state]
    if unknown:
        raise WeightsUnavailable(f"{path}: tensors the base model lacks: {', '.join(unknown[:5])}")
    return state | delta


def checkpoint_top1(metadata: dict) -> tuple[float | None, str | None]:
    """A checkpoint's top-1 and the images it was measured on, from its ``eval`` record: the
    held-out comparison the trainer writes (``train.evaluation.comparison``), or the bare
    top-1 of checkpoints written before it."""
    evaluation = metadata.get("eval") or {}
    trained, on = evaluation.get("trained"), evaluation.get("on") or {}
    if trained is not None:
        return float(trained["top1"]), f"{trained['images']} {_judged_images(on)}"
    if evaluation.get("top1") is None:
        return None, None
    return (float(evaluation["top1"]),
            f"{evaluation.get('images')} images of {evaluation.get('dir')}")


def _judged_images(on: dict) -> str:
    if on.get("kind") == "held-out":
        return f"held-out photos of {on.get('folder')}"
    return f"images of {on.get('folder')}"


def _signed(points: float) -> str:
    """+2.4 or −9.2 (a minus sign, as the statistics' sentences write it)."""
    return f"{points:+.1f}".replace("-", "−")


@dataclass(frozen=True)
class Judged:
    """How a trained model does on images it was not fit to, beside the model it started from
    and the baseline on the same images (read from the checkpoint's ``eval`` record)."""

    top1: float
    ci95: tuple[float, float]
    images: int
    where: str  # "held-out photos of imagenet_sample_1k_half"
    start_top1: float
    baseline_top1: float | None  # None: the baseline could not be run
    gain_points: float  # trained − start, top-1 points
    p: float  # exact McNemar, trained vs start
    verdict: str  # "better than its start", …
    spearman: tuple[float, float, float] | None = None  # maps vs the baseline's: mean, 95 % CI

    @classmethod
    def from_metadata(cls, metadata: dict) -> Judged | None:
        evaluation = metadata.get("eval") or {}
        trained, start = evaluation.get("trained"), evaluation.get("start")
        if trained is None or start is None:
            return None
        diff = evaluation["trained_minus_start"]
        spearman = ((metadata.get("map_agreement") or {}).get("baseline") or {}).get("spearman")
        return cls(trained["top1"], tuple(trained["top1_ci95"]), trained["images"],
                   _judged_images(evaluation.get("on") or {}), start["top1"],
                   (evaluation.get("baseline") or {}).get("top1"), diff["top1_points"],
                   diff["mcnemar_p"], evaluation["verdict"],
                   (spearman["mean"], *spearman["ci95"]) if spearman else None)

    def sentence(self) -> str:
        """E.g. "top-1 84.1 [80.0, 88.0] on 251 held-out photos of imagenet_sample_1k_half;
        start 81.7; baseline 90.4; trained − start +2.4 points, McNemar p = 0.04: better than
        its start; maps' Spearman with the baseline's 0.80 [0.78, 0.82]"."""
        baseline = ("baseline not measured" if self.baseline_top1 is None
                    else f"baseline {self.baseline_top1:.1f}")
        text = (f"top-1 {self.top1:.1f} [{self.ci95[0]:.1f}, {self.ci95[1]:.1f}] on "
                f"{self.images} {self.where}; start {self.start_top1:.1f}; {baseline}; "
                f"trained − start {_signed(self.gain_points)} points, McNemar p = {self.p:.2g}: "
                f"{self.verdict}")
        if self.spearman is not None:
            mean, low, high = self.spearman
            text += f"; maps' Spearman with the baseline's {mean:.2f} [{low:.2f}, {high:.2f}]"
        return text

    def short(self) -> str:
        """A grid header's line, as short as a panel is wide: "unseen 84.1 (start 81.7)", the
        top-1 in percent on images the model was not fit to."""
        return f"unseen {self.top1:.1f} (start {self.start_top1:.1f})"


def checkpoint_headline(metadata: dict) -> str:
    """A checkpoint in a few words, for a grid header."""
    recipe = metadata.get("recipe")
    if recipe == "match":
        return f"fine-tuned from {(metadata.get('base') or {}).get('name', 'the baseline')}"
    if recipe == "fixres":
        return f"adapted from {(metadata.get('base') or {}).get('name', 'the baseline')} (FixRes)"
    if recipe == "distill":
        return f"distilled from {(metadata.get('teacher') or {}).get('name', 'a teacher')}"
    if recipe == "paper":
        return "trained from scratch"
    return "local checkpoint"


def describe_checkpoint(metadata: dict) -> str:
    """What a checkpoint is, in words, from the metadata the trainer wrote."""
    recipe = metadata.get("recipe")
    data = metadata.get("data") or {}
    held = (data.get("holdout") or {}).get("held_out_images") if isinstance(data, dict) else None
    on = (f" on {data.get('folder')} ({data.get('images'):,} images"
          + (f"; {held:,} more held out to judge it)" if held else ")")
          + "".join(f" and {extra.get('folder')} ({extra.get('images'):,} images)"
                    for extra in data.get("extra") or [])  # --extra-data (#35)
          if isinstance(data, dict) and data.get("folder") else "")
    steps = metadata.get("steps")
    steps_text = f", {steps:,} steps" if steps else ""
    if recipe == "match":
        base = (metadata.get("base") or {}).get("name") or "the baseline"
        resolution = (metadata.get("teacher") or {}).get("resolution", 224)
        crop = (metadata.get("config") or {}).get("crop_size")  # --crop-size (#35)
        shown = (f", shown to it at {crop} px in training" if crop
                 and crop != metadata.get("image_size") else "")
        return (f"adapted to {metadata.get('image_size')} px from {base}: every weight "
                f"fine-tuned so that at {metadata.get('image_size')} px it says what {base} "
                f"says at {resolution} px about the same random crops{shown} "
                f"(self-distillation, no label){on}{steps_text}")
    if recipe == "fixres":
        base = (metadata.get("base") or {}).get("name") or "the baseline"
        tuned = " and ".join(metadata.get("fine_tuned") or ["head BatchNorm"])
        return (f"adapted to {metadata.get('image_size')} px (FixRes) from {base}: BatchNorm "
                f"statistics re-estimated and the {tuned} fine-tuned to the baseline's own "
                f"{(metadata.get('teacher') or {}).get('resolution', 224)} px predictions{on}"
                f"{steps_text}")
    if recipe == "distill":
        teacher = (metadata.get("teacher") or {}).get("name") or "a teacher"
        return f"distilled from {teacher}{on}{steps_text}"
    if recipe == "paper":
        return f"trained from scratch (paper recipe){on}{steps_text}"
    return "local checkpoint" + on
