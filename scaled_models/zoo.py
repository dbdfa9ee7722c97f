"""Load the Table 7 models of one family, once, onto one device.

``load_zoo`` is what the CLI, the app and the benchmarks call; it returns every requested role in
paper order, available or not, so that callers show unavailable models instead of dropping them.
It takes the family itself: a name (or ``auto``) is resolved once, where it is read (``--family``
or the app's selector), never again on the way down.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from safe_io.storage import write_json

from .architectures import (
    Architecture,
    CamNet,
    NetShape,
    count_macs,
    count_params,
    measure_shape,
)
from .brought import (
    BroughtSpec,
    brought_column,
    is_brought,
    load_brought_weights,
    parse_brought,
)
from .derived_facts import SHIPPED_FACTS, code_version, shipped
from .devices import usable_device
from .family import (
    AUTO_FAMILY,
    FAMILIES,
    RoleBinding,
    WeightFamily,
    WeightsUnavailable,
    paper_family,
    requested_reason,
    resolve_family,
)
from .ladders import DEFAULT_LADDER, LADDERS, TABLE7_LADDER, Column, Ladder, get_ladder
from .preprocessing import Preprocessing
from .table7 import TABLE7
from .weights import Provenance, SharedNets, load_weights


def pick_device(requested: str | None = None) -> torch.device:
    """``requested`` if given (``usable_device``), else CUDA, then Apple MPS, then CPU."""
    if requested and requested != "auto":
        return usable_device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


@lru_cache(maxsize=None)
def _meta_network(arch: Architecture):
    """The architecture built on the meta device (shapes only), once per process."""
    with torch.device("meta"):
        return arch.build()


@lru_cache(maxsize=None)
def measured_cost(arch: Architecture, resolution: int) -> tuple[int, int]:
    """(params, MACs per image) of an architecture at a resolution. The first screen needs
    about ten of these and counting takes ~0.5 s each on a 2-core CPU, so the ones the app
    shows ship with scalecam (``derived_facts.py``)."""
    counted = shipped("costs").get(_cost_key(arch, resolution))
    if counted is not None:
        return tuple(counted)
    return count_cost(arch, resolution)


def count_cost(arch: Architecture, resolution: int) -> tuple[int, int]:
    """(params, MACs per image), counted now on the meta device."""
    net = _meta_network(arch)
    return count_params(net), count_macs(net, resolution)


def _cost_key(arch: Architecture, resolution: int) -> str:
    named = f"{arch.name} " if arch.name else ""
    return f"{named}{arch.family} w={arch.width} d={arch.depth} p={arch.dropout} r={resolution}"


def shown_architectures() -> list[tuple[Architecture, int]]:
    """Every (architecture, resolution) the app and the tables show: Table 7's rows on the
    paper's family, and each family's columns of every ladder it fills as they run (a ladder's
    first load waits for these counts: about 3 s for the resnet ladder's five here)."""
    paper = paper_family()
    shown = [(paper.architecture(spec.width, spec.depth), spec.paper_resolution)
             for spec in TABLE7]
    shown += [(binding.arch, binding.resolution) for family in FAMILIES.values()
              for ladder in LADDERS.values() if family.fills(ladder)
              for binding in family.bindings(ladder).values() if binding.arch is not None]
    return list(dict.fromkeys(shown))


def write_derived_facts(path: Path = SHIPPED_FACTS) -> None:
    """Derive every shipped fact afresh and write ``derived_facts.json`` (run after changing the
    architectures, a family or torch/torchvision: ``python -c "from scaled_models.zoo import
    write_derived_facts; write_derived_facts()"``)."""
    costs = {_cost_key(arch, resolution): list(count_cost(arch, resolution))
             for arch, resolution in shown_architectures()}
    published = {family.name: family.derive_published_facts() for family in FAMILIES.values()}
    write_json(path, {"code": code_version(), "costs": costs, "published": published})


@dataclass(frozen=True)
class Scaled:
    """How much deeper, wider and higher-resolution a column's network is than its ladder's
    baseline, counted on both built networks (``architectures.NetShape``), so that what the
    rounding and the publishers did shows: B3 is w=1.2 d=1.4 on paper and has 26 blocks to
    B0's 16 (d=1.62 counted)."""

    depth: float  # residual blocks / the baseline's
    width: float  # last-stage spatial channels / the baseline's
    resolution: float  # input pixels per side / the baseline's

    def text(self, digits: int = 3) -> str:
        """E.g. "d=3.12 w=1 r=1" (a grid header, narrower: ``digits=2``, "d=3.1 w=1 r=1")."""
        return " ".join(f"{name}={value:.{digits}g}" for name, value in
                        (("d", self.depth), ("w", self.width), ("r", self.resolution)))


@dataclass
class LoadedModel:
    """One column as loaded: what the column is, its provenance, and the network (``None``
    when unavailable, or in a description made by ``without_network``)."""

    column: Column
    provenance: Provenance
    net: CamNet | None
    preprocessing: Preprocessing | None
    params: int | None  # Table 7's architecture (the paper's SE/SiLU blocks) for a Table 7 role
    macs: int | None  # … at Table 7's resolution: what the paper's FLOPs column measures
    run_params: int | None  # the network actually loaded in this family (None: none is)
    run_macs: int | None  # … at the resolution it runs at
    arch: Architecture | None = None  # what was built (or would be, for an unavailable column)
    scaled: Scaled | None = None  # counted against the ladder's baseline (not for Table 7)

    @property
    def key(self) -> str:
        return self.column.key

    @property
    def available(self) -> bool:
        return self.provenance.available

    def without_network(self) -> LoadedModel:
        """This column as a description only (``net`` None, still ``available`` if it was):
        what a figure keeps, since Streamlit holds a figure's downloads for minutes after
        their visitor left, and a network kept there would outlive its engine."""
        return replace(self, net=None)

    def summary(self) -> dict:
        """One flat record per model: what `python -m scaled_models table --json` prints."""
        prov, column, paper = self.provenance, self.column, self.column.paper
        return {
            "key": self.key, "label": column.label, "family": prov.family,
            "scales": column.scales.value,
            "paper_table": paper.table if paper else None,
            "paper_row": paper.label if paper else None,
            "coefficients": (column.spec.coefficients if column.spec is not None
                             else paper.coefficients if paper else None),
            "architecture": prov.architecture,
            "resolution": column.spec.paper_resolution if column.spec else None,
            "run_resolution": prov.resolution,
            "params": self.params, "macs": self.macs,
            "run_params": self.run_params, "run_macs": self.run_macs,
            "measured_vs_baseline": asdict(self.scaled) if self.scaled else None,
            "paper_flops": paper.flops if paper else None,
            "paper_top1": paper.top1 if paper else None,
            "top1": prov.top1, "top1_source": prov.top1_source,
            "judged": prov.judged.sentence() if prov.judged else None,
            "weights_source": prov.source, "available": prov.available,
            "stand_in": prov.stand_in, "trained_for_config": prov.trained_for_config,
            "status": prov.status, "recipe": prov.recipe, "sha256": prov.sha256,
            "file": prov.file, "preprocessing": prov.preprocessing, "notes": list(prov.notes),
            "unavailable_reason": prov.unavailable_reason,
            "make_available": prov.make_available,
        }


@dataclass
class ModelZoo:
    family: WeightFamily
    family_reason: str
    device: torch.device
    models: list[LoadedModel]
    ladder: Ladder = DEFAULT_LADDER
    checkpoints: str | None = None  # the folder the ladder's checkpoints were looked for in
    brought: tuple[BroughtSpec, ...] = ()  # the models brought, after the ladder's columns

    def available(self) -> list[LoadedModel]:
        return [m for m in self.models if m.available]

    def get(self, key: str) -> LoadedModel:
        for model in self.models:
            if model.key == key:
                return model
        raise KeyError(f"model {key!r} was not loaded")

    @property
    def baseline(self) -> str:
        """The key every paired difference is taken against: the ladder's first column."""
        return next(iter(self.family.bindings(self.ladder)))

    def reload_network(self, key: str) -> torch.nn.Module:
        """An available column's network read again from where it was loaded, on this zoo's
        device: for a server that let an idle ladder's weights go (``CamEngine.park_idle``).
        Refused with ``WeightsUnavailable`` naming the file unless it still holds the weights
        first loaded (sha256): maps are cached and labelled under those."""
        model = self.get(key)
        specs = {brought_column(spec).key: spec for spec in self.brought}
        loaded = (load_brought_weights(specs[key]) if key in specs
                  else load_weights(self.family, key, self.checkpoints, self.ladder))
        was = model.provenance
        if loaded.net is None or loaded.provenance.sha256 != was.sha256:
            now = (f"now sha256 {(loaded.provenance.sha256 or '?')[:12]}…"
                   if loaded.net is not None
                   else f"now unavailable: {loaded.provenance.unavailable_reason}")
            raise WeightsUnavailable(
                f"{was.file or was.source} is no longer the file this server loaded for "
                f"{model.column.label} (sha256 {(was.sha256 or '')[:12]}…, {now})",
                "put the original file back, or restart the server to load the new one")
        return loaded.net.to(self.device).eval().requires_grad_(False)


def load_model(family: WeightFamily, key: str,
               checkpoints: str | os.PathLike | None = None,
               device: torch.device | str = "cpu", ladder: Ladder = DEFAULT_LADDER,
               shared: SharedNets | None = None) -> LoadedModel:
    """One column of one of a family's ladders."""
    bindings = family.bindings(ladder)
    binding = bindings[key]
    loaded = load_weights(family, key, checkpoints, ladder, shared)
    spec = binding.column.spec
    params, macs = (measured_cost(paper_family().architecture(spec.width, spec.depth),
                                  spec.paper_resolution) if spec is not None else (None, None))
    # What nothing runs is not counted: the first screen waits for every count.
    run_params, run_macs = (measured_cost(loaded.arch, loaded.provenance.resolution)
                            if loaded.net is not None else (None, None))
    net = loaded.net
    if net is not None:
        net = net.to(device).eval().requires_grad_(False)
    # Table 7's headers print the table's own coefficients; other ladders count theirs, for
    # the networks there are (a column nobody publishes has none to count).
    counted = loaded.net is not None or binding.weights is not None
    scaled = (scaled_from(family, loaded.arch, loaded.provenance.resolution,
                          next(iter(bindings.values())))
              if ladder != TABLE7_LADDER and counted else None)
    return LoadedModel(binding.column, loaded.provenance, net, loaded.preprocessing, params,
                       macs, run_params, run_macs, loaded.arch, scaled)


def scaled_from(family: WeightFamily, arch: Architecture, resolution: int,
                base: RoleBinding) -> Scaled:
    """``arch`` at ``resolution`` counted against the ladder's baseline binding ``base``."""
    shape, base_shape = _shape(family, arch), _shape(family, base.arch)
    return Scaled(round(shape.blocks / base_shape.blocks, 3),
                  round(shape.channels / base_shape.channels, 3),
                  round(resolution / base.resolution, 3))


@lru_cache(maxsize=None)
def _shape(family: WeightFamily, arch: Architecture) -> NetShape:
    return measure_shape(family.stages(_meta_network(arch)))


def load_zoo(family: WeightFamily, checkpoints: str | os.PathLike | None = None,
             keys: tuple[str, ...] | list[str] | None = None,
             device: torch.device | str | None = None, reason: str | None = None,
             ladder: Ladder = DEFAULT_LADDER) -> ModelZoo:
    """Every requested column (default: all) of one family's ``ladder``, in the ladder's order.
    ``reason`` says why this family (``resolve_family``'s answer); by default, that it was
    asked for. Columns of the same published weights share one network."""
    target = pick_device(str(device) if device is not None else None)
    shared: SharedNets = {}
    wanted = [k for k in family.bindings(ladder) if keys is None or k in keys]
    models = [load_model(family, key, checkpoints, target, ladder, shared) for key in wanted]
    return ModelZoo(family, reason or requested_reason(family), target, models, ladder,
                    None if checkpoints is None else str(checkpoints))


class RequestError(ValueError):
    """A model-selection option that names nothing there is: ``option`` says which (a command
    line's ``--family``; a notebook reads the message alone)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class ZooRequest:
    """Which models to load, every name resolved and checked once, before anything loads: the
    family (and why), the ladder, its columns in the ladder's order, and the models a user
    brought (``brought.BroughtSpec``), in the order given."""

    family: WeightFamily
    family_reason: str
    ladder: Ladder
    keys: tuple[str, ...]
    brought: tuple[BroughtSpec, ...] = ()
    checkpoints: str | None = None
    device: torch.device | None = None


def zoo_request(family: str | WeightFamily = AUTO_FAMILY, ladder: str | Ladder = DEFAULT_LADDER,
                models: str | None = None, checkpoints: str | os.PathLike | None = None,
                device: str | None = None) -> ZooRequest:
    """Resolve what a command line, the app or a notebook asked for; ``RequestError`` (a
    ``ValueError``) naming the option and listing the choices when something is not one.
    ``models`` is comma-separated: the ladder's column keys (or ``all``), and models one brings
    (``brought.parse_brought``)."""
    try:
        ladder = get_ladder(ladder)
    except ValueError as exc:
        raise RequestError("--ladder", str(exc)) from None
    try:
        if isinstance(family, WeightFamily):
            chosen, reason = family, requested_reason(family)
            if not family.fills(ladder):
                raise ValueError(f"the {family.name} family has no models for the "
                                 f"{ladder.name} ladder")
        else:
            chosen, reason = resolve_family(family, ladder)
    except ValueError as exc:
        raise RequestError("--family", str(exc)) from None
    columns = tuple(chosen.bindings(ladder))
    keys, brought = [], []
    tokens = [t.strip() for t in ("all" if models is None else models).split(",")]
    if not any(tokens):
        raise RequestError("--models", f"no model named in {models!r}; choose from "
                           f"{', '.join(columns)} (comma-separated) or all, or bring one "
                           "(torchvision:NAME, timm:NAME, ARCH=FILE)")
    for token in filter(None, tokens):
        if token == "all":
            keys += columns
        elif is_brought(token):
            try:
                brought.append(parse_brought(token))
            except ValueError as exc:
                raise RequestError("--models", str(exc)) from None
        elif token in columns:
            keys.append(token)
        else:
            raise RequestError("--models", f"unknown model {token!r} in the {ladder.name} "
                               f"ladder of the {chosen.name} family; choose from all, "
                               f"{', '.join(columns)}, or bring one "
                               "(torchvision:NAME[.WEIGHTS], timm:NAME, ARCH=FILE)")
    try:
        where = None if device in (None, "", "auto") else usable_device(device)
    except ValueError as exc:
        raise RequestError("--device", str(exc)) from None
    return ZooRequest(chosen, reason, ladder, tuple(k for k in columns if k in keys),
                      tuple(dict.fromkeys(brought)),
                      None if checkpoints is None else str(checkpoints), where)


def load_requested(request: ZooRequest) -> ModelZoo:
    """The zoo a ``ZooRequest`` names: the ladder's columns, then the models brought."""
    zoo = load_zoo(request.family, request.checkpoints, request.keys, request.device,
                   request.family_reason, request.ladder)
    zoo.models += [load_brought(spec, zoo.device) for spec in request.brought]
    zoo.brought = request.brought
    return zoo


def load_brought(spec: BroughtSpec, device: torch.device) -> LoadedModel:
    """A model the user brought, as a column after the ladder's."""
    loaded = load_brought_weights(spec)
    run_params, run_macs = (measured_cost(loaded.arch, loaded.provenance.resolution)
                            if loaded.net is not None else (None, None))
    net = loaded.net
    if net is not None:
        net = net.to(device).eval().requires_grad_(False)
    return LoadedModel(brought_column(spec), loaded.provenance, net, loaded.preprocessing, None,
                       None, run_params, run_macs, loaded.arch, None)
