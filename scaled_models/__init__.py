"""Table 7 of the EfficientNet paper as data, its architectures, and honest weight sources."""
from . import efficientnet, lite, resnet  # noqa: F401 - importing a family module registers it
from .family import FAMILIES, WeightFamily, WeightsUnavailable, get_family
from .table7 import MODEL_KEYS, TABLE7, ModelSpec, spec_for
from .weights import Provenance
from .zoo import LoadedModel, ModelZoo, load_model, load_zoo, pick_device

__all__ = ["MODEL_KEYS", "TABLE7", "ModelSpec", "spec_for", "FAMILIES", "WeightFamily",
           "WeightsUnavailable", "get_family", "Provenance", "LoadedModel", "ModelZoo",
           "load_model", "load_zoo", "pick_device"]
