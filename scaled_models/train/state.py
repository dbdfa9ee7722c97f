"""What a training run leaves behind: the weights the app loads (full, or only the tensors that
differ from the published model they started from), their metadata, and the full training state
that ``--resume`` continues from exactly."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from safe_io.storage import atomic_write, write_json

from ..checkpoint_meta import CheckpointMeta
from ..files import non_finite_values


class NonFiniteWeights(ValueError):
    """Weights with NaN or infinite values: never written, since every map and prediction of
    such a model would be NaN."""


def export_weights(net: nn.Module, folder: Path, key: str, metadata: dict,
                   base_state: dict[str, torch.Tensor] | None = None) -> Path:
    """``<key>.safetensors`` + ``<key>.json``. With ``base_state`` (the published weights the
    run started from) only the tensors that changed are written, and the metadata's ``base``
    says which file they go on top of. Refuses (``NonFiniteWeights``) weights that are not all
    finite; a failed write raises ``safe_io.storage.StorageError``."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    weights = Path(folder) / f"{key}.safetensors"
    broken = non_finite_values(state)
    if broken:
        raise NonFiniteWeights(f"{weights}: not written, since {broken}")
    if base_state is not None:
        state = {k: v for k, v in state.items() if not torch.equal(v, base_state[k].cpu())}
        metadata = metadata | {"delta_tensors": len(state)}
    # serialised in memory, then written by Python: a full disk is then an OSError naming its
    # cause, where safetensors' own writer raises an error of its own type
    # the record is checked before anything is written: weights never sit beside a stale .json
    record = CheckpointMeta.from_record(metadata, str(weights.with_suffix(".json"))).to_record()
    atomic_write(weights, lambda p: p.write_bytes(save(state)))
    write_json(weights.with_suffix(".json"), record)
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


def save_training_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_training_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
