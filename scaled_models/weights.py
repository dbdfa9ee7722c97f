"""Where each column's weights come from, and what each model is.

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

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .architectures import Architecture, CamNet
from .checkpoint_meta import BaseRef, CheckpointMeta, Judged
from .family import (
    PublishedWeights,
    RoleBinding,
    WeightFamily,
    WeightsUnavailable,
)
from .files import (
    BUNDLED_CHECKPOINTS,
    checkpoints_root,
    file_sha256,
    find_checkpoint,
    non_finite_values,
    read_state_dict,
)
from .ladders import DEFAULT_LADDER, Ladder
from .preprocessing import Preprocessing

# One word per kind of model, for headers and tables (``Provenance.status``).
STATUS_PUBLISHED, STATUS_STAND_IN, STATUS_UNAVAILABLE = "published", "stand-in", "unavailable"
STATUS_UNVERIFIED = "unverified"  # a file under a published name whose bytes are not that file


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


@dataclass
class LoadedWeights:
    provenance: Provenance
    arch: Architecture  # what was built (or would be, for an unavailable role)
    net: CamNet | None
    preprocessing: Preprocessing | None


# What an initialiser does to a tensor's values only (``nn.init``'s functions and the tensor
# methods they call): on a meta tensor, nothing.
_FILLS = frozenset({
    "normal_", "uniform_", "trunc_normal_", "constant_", "zeros_", "ones_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "sparse_", "zero_", "fill_", "copy_", "random_", "bernoulli_", "exponential_",
    "geometric_", "log_normal_", "cauchy_"})


class _SkipFills(TorchFunctionMode):
    """Makes a fill of a meta tensor (an initialiser's ``normal_``, ``zero_``…; ``_FILLS``)
    return the tensor untouched. A meta tensor holds no values to fill, yet ``normal_`` on one
    runs torch's Python reference implementation, whose first call imports ``torch._dynamo``:
    1.7 s of a first start here, for nothing. Anything else (a shape change, say) runs."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in _FILLS:
            target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def build_empty(arch: Architecture) -> CamNet:
    """``arch`` built for a file's tensors to be assigned into: its parameters on the meta
    device (shapes only, initialisers skipped), so loading neither draws random weights it
    throws away (0.8 s for ResNet-152 on this CPU) nor holds a second copy of every weight
    while the file's are copied in. A network with a buffer no state dict holds
    (``persistent=False``) is built in full, since a file could not give that buffer back."""
    with torch.device("meta"), _SkipFills():
        net = arch.build()
    if len(dict(net.named_buffers())) + len(dict(net.named_parameters())) != len(
            net.state_dict()):
        return arch.build()
    return net


def load_into(net: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Strict load whose error names the offending keys instead of a wall of text; weights
    that are not all finite are refused, naming how many are not. A network from
    ``build_empty`` takes the file's tensors themselves."""
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
    net.load_state_dict(state, assign=any(t.is_meta for t in own.values()))


def load_published(weights: PublishedWeights, net: CamNet | None = None) -> tuple[CamNet, Path]:
    """``weights`` loaded into ``net`` (default: the network they were published for)."""
    if net is None:
        net = build_empty(weights.arch) if weights.arch is not None else weights.build()
    path = weights.locate()
    load_into(net, weights.family.adapt_state_dict(read_state_dict(path), net, str(path)),
              str(path))
    return net.eval(), path


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
        net, path = load_published(weights, build_empty(binding.arch))
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


def _load_checkpoint(family: WeightFamily, binding: RoleBinding, path: Path) -> LoadedWeights:
    meta = CheckpointMeta.read(path) or CheckpointMeta(format=0)  # no .json: nothing said
    spec = binding.column.spec
    # what the column asks: Table 7's architecture for a Table 7 role, else the binding's
    arch = family.architecture(spec.width, spec.depth) if spec is not None else binding.arch
    recorded = meta.architecture
    if recorded is not None and (recorded.width, recorded.depth) != (arch.width, arch.depth):
        raise WeightsUnavailable(f"{path}: trained for w={recorded.width:g} "
                                 f"d={recorded.depth:g}, but {family.name}/{binding.key} "
                                 f"is w={arch.width:g} d={arch.depth:g}")
    resolution = (meta.image_size
                  or (spec.paper_resolution if spec is not None else binding.resolution))
    pre = meta.preprocessing
    preprocessing = Preprocessing.from_crop_pct(
        resolution, pre.crop_pct or family.crop_pct, pre.mean or family.mean,
        pre.std or family.std, pre.interpolation or "bicubic")
    net = build_empty(arch)
    state = read_state_dict(path)
    if meta.base is not None:
        state = _on_base(family, meta.base, state, net, path)
    load_into(net, state, str(path))
    top1, top1_source = meta.top1()
    return LoadedWeights(Provenance(
        family=family.name, key=binding.key, available=True, source=f"checkpoint {path.name}",
        architecture=arch.description, resolution=resolution, file=str(path),
        sha256=file_sha256(path), preprocessing=preprocessing.as_dict(),
        trained_for_config=True, stand_in=family.stand_in, status=meta.status,
        headline=meta.headline(), recipe=meta.describe(),
        top1=top1, top1_source=top1_source, judged=Judged.from_metadata(meta)),
        arch, net.eval(), preprocessing)


def _on_base(family: WeightFamily, base: BaseRef, delta: dict[str, torch.Tensor], net: CamNet,
             path: Path) -> dict[str, torch.Tensor]:
    """A delta checkpoint's tensors laid over the published weights it was made from; refused
    when that file is not the one recorded (its sha256 differs)."""
    weights = family.role(base.role).weights
    if weights is None or weights.source != base.source:
        raise WeightsUnavailable(f"{path}: made from {base.source}, which this family "
                                 "does not publish")
    published, published_path = load_published(weights, net)
    if base.sha256 and file_sha256(published_path) != base.sha256:
        raise WeightsUnavailable(f"{path}: made from {published_path.name} with sha256 "
                                 f"{base.sha256[:12]}…, but the installed file differs")
    state = published.state_dict()
    unknown = [k for k in delta if k not in state]
    if unknown:
        raise WeightsUnavailable(f"{path}: tensors the base model lacks: {', '.join(unknown[:5])}")
    return state | delta
