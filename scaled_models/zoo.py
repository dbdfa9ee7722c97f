"""Load the Table 7 models of one family, once, onto one device.

``load_zoo`` is what the CLI, the app and the benchmarks call; it returns every requested role in
paper order, available or not, so that callers show unavailable models instead of dropping them.
It takes the family itself: a name (or ``auto``) is resolved once, where it is read (``--family``
or the app's selector), never again on the way down.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from safe_io.storage import write_json

from .architectures import Architecture, CamNet, count_macs, count_params
from .derived_facts import SHIPPED_FACTS, code_version, shipped
from .devices import device_argument, usable_device
from .family import FAMILIES, WeightFamily, paper_family
from .preprocessing import Preprocessing
from .table7 import MODEL_KEYS, TABLE7, ModelSpec, parse_model_keys, spec_for
from .weights import (
    Provenance,
    checkpoints_argument,
    load_weights,
    requested_reason,
    resolve_family,
)


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
    return f"{arch.family} w={arch.width} d={arch.depth} p={arch.dropout} r={resolution}"


def shown_architectures() -> list[tuple[Architecture, int]]:
    """Every (architecture, resolution) the app and the tables show: Table 7's rows on the
    paper's family, and each family's role bindings as they run."""
    paper = paper_family()
    shown = [(paper.architecture(spec.width, spec.depth), spec.paper_resolution)
             for spec in TABLE7]
    shown += [(binding.arch, binding.resolution) for family in FAMILIES.values()
              for binding in family.roles.values()]
    return list(dict.fromkeys(shown))


def write_derived_facts(path: Path = SHIPPED_FACTS) -> None:
    """Derive every shipped fact afresh and write ``derived_facts.json`` (run after changing the
    architectures, a family or torch/torchvision: ``python -c "from scaled_models.zoo import
    write_derived_facts; write_derived_facts()"``)."""
    costs = {_cost_key(arch, resolution): list(count_cost(arch, resolution))
             for arch, resolution in shown_architectures()}
    published = {family.name: family.derive_published_facts() for family in FAMILIES.values()}
    write_json(path, {"code": code_version(), "costs": costs, "published": published})


@dataclass
class LoadedModel:
    """One Table 7 role as loaded: its spec, its provenance, and the network if available."""

    spec: ModelSpec
    provenance: Provenance
    net: CamNet | None
    preprocessing: Preprocessing | None
    params: int  # Table 7's architecture (the paper's SE/SiLU blocks, the row's coefficients)
    macs: int  # … at Table 7's resolution: what the paper's FLOPs column measures
    run_params: int | None  # the network actually loaded in this family (None: none is)
    run_macs: int | None  # … at the resolution it runs at

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def available(self) -> bool:
        return self.net is not None

    def summary(self) -> dict:
        """One flat record per model: what `python -m scaled_models table --json` prints."""
        prov = self.provenance
        return {
            "key": self.key, "label": self.spec.label, "family": prov.family,
            "coefficients": self.spec.coefficients, "architecture": prov.architecture,
            "resolution": self.spec.paper_resolution, "run_resolution": prov.resolution,
            "params": self.params, "macs": self.macs,
            "run_params": self.run_params, "run_macs": self.run_macs,
            "paper_flops": self.spec.paper_flops, "paper_top1": self.spec.paper_top1,
            "top1": prov.top1, "top1_source": prov.top1_source,
            "judged": prov.judged.sentence() if prov.judged else None,
            "weights_source": prov.source, "available": prov.available,
            "stand_in": prov.stand_in, "trained_for_config": prov.trained_for_config,
            "status": prov.status, "recipe": prov.recipe, "sha256": prov.sha256,
            "file": prov.file, "notes": list(prov.notes),
            "unavailable_reason": prov.unavailable_reason,
            "make_available": prov.make_available,
        }


@dataclass
class ModelZoo:
    family: WeightFamily
    family_reason: str
    device: torch.device
    models: list[LoadedModel]

    def available(self) -> list[LoadedModel]:
        return [m for m in self.models if m.available]

    def get(self, key: str) -> LoadedModel:
        for model in self.models:
            if model.key == key:
                return model
        raise KeyError(f"model {key!r} was not loaded")


def load_model(family: WeightFamily, key: str,
               checkpoints: str | os.PathLike | None = None,
               device: torch.device | str = "cpu") -> LoadedModel:
    """One role of one family."""
    spec = spec_for(key)
    loaded = load_weights(family, key, checkpoints)
    params, macs = measured_cost(paper_family().architecture(spec.width, spec.depth),
                                 spec.paper_resolution)
    # What nothing runs is not counted: the first screen waits for every count.
    run_params, run_macs = (measured_cost(loaded.arch, loaded.provenance.resolution)
                            if loaded.net is not None else (None, None))
    net = loaded.net
    if net is not None:
        net = net.to(device).eval().requires_grad_(False)
    return LoadedModel(spec, loaded.provenance, net, loaded.preprocessing, params, macs,
                       run_params, run_macs)


def load_zoo(family: WeightFamily, checkpoints: str | os.PathLike | None = None,
             keys: tuple[str, ...] | list[str] | None = None,
             device: torch.device | str | None = None, reason: str | None = None) -> ModelZoo:
    """Every requested role (default: all five) of one family, in paper order. ``reason`` says
    why this family (``resolve_family``'s answer); by default, that it was asked for."""
    target = pick_device(str(device) if device is not None else None)
    wanted = [k for k in MODEL_KEYS if keys is None or k in keys]
    models = [load_model(family, key, checkpoints, target) for key in wanted]
    return ModelZoo(family, reason or requested_reason(family), target, models)


def add_zoo_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The model-selection flags every scalecam CLI shares."""
    parser.add_argument("--family", default="auto", type=_family,
                        metavar="{" + ",".join(["auto", *FAMILIES]) + "}",
                        help="weight family; auto = efficientnet when B0's weights can be had, "
                             "else the offline Lite stand-ins (default: auto)")
    parser.add_argument("--checkpoints", default=None, type=checkpoints_argument,
                        help="checkpoints root holding <family>/<key>.safetensors "
                             "(default: $SCALECAM_CHECKPOINTS or checkpoints/)")
    parser.add_argument("--models", type=_model_keys, default=MODEL_KEYS,
                        help="comma-separated Table 7 keys (default: all five: "
                             + ",".join(MODEL_KEYS) + ")")
    parser.add_argument("--device", default=None, type=device_argument,
                        help="cuda, cuda:N, mps or cpu (default: the best one found)")


def _family(text: str) -> tuple[WeightFamily, str]:
    """--family resolved when the arguments are parsed, once: the family and why it was
    chosen."""
    try:
        return resolve_family(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _model_keys(text: str) -> tuple[str, ...]:
    """--models checked when the arguments are parsed, before anything loads."""
    try:
        return parse_model_keys(text)
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None


def zoo_from_args(args: argparse.Namespace) -> ModelZoo:
    family, reason = args.family
    return load_zoo(family, args.checkpoints, args.models, args.device, reason)
