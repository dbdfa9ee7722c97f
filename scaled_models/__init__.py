"""Table 7 of the EfficientNet paper as data, its architectures, and honest weight sources."""
from .table7 import MODEL_KEYS, TABLE7, ModelSpec, spec_for
from .weights import FAMILIES, Provenance, WeightsError
from .zoo import LoadedModel, ModelZoo, load_model, load_zoo, pick_device

__all__ = ["MODEL_KEYS", "TABLE7", "ModelSpec", "spec_for", "FAMILIES", "Provenance",
           "WeightsError", "LoadedModel", "ModelZoo", "load_model", "load_zoo", "pick_device"]
