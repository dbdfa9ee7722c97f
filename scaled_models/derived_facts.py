"""Facts the app's first screen would otherwise derive at start-up, shipped with scalecam.

Two are slow to derive: the MACs of the ~10 networks the first screen shows (counting takes about
half a second each on a 2-core CPU) and the file behind B0's published weights (reading
torchvision's ``Weights`` enum imports torchvision, and with it ``torch._dynamo``: seconds). Both
are functions of scalecam's network code and of the installed torch and torchvision, so
``derived_facts.json`` records them under a digest of exactly those (``code_version``) and
``shipped`` hands them out only while the digest is unchanged: with any other code or library
versions the facts are derived afresh, and the log says once that start-up is slower for it.
``zoo.write_derived_facts`` regenerates the file and a test re-derives every entry.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
from functools import lru_cache
from pathlib import Path

from .architectures import Architecture
from .family import FAMILIES, WeightFamily

SHIPPED_FACTS = Path(__file__).with_name("derived_facts.json")
# Modules that derive the facts without being a family's or the architecture's own module: the
# MAC counting (zoo.py) and this file.
_DERIVING_MODULES = (Path(__file__).with_name("zoo.py"), Path(__file__))


def code_version() -> str:
    """A digest of the code that builds and counts the networks and binds the published weights,
    and of the libraries it uses (read from package metadata: importing them takes seconds)."""
    from importlib.metadata import version

    digest = hashlib.sha256(" ".join(version(name) for name in ("torch", "torchvision"))
                            .encode())
    sources = {Path(inspect.getfile(cls)) for cls in (Architecture, WeightFamily)}
    sources |= {Path(inspect.getfile(type(family))) for family in FAMILIES.values()}
    sources |= set(_DERIVING_MODULES)
    for source in sorted(sources, key=lambda path: path.name):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@lru_cache(maxsize=1)
def _current_facts() -> dict:
    """The shipped file if it was derived from this code and these libraries, else ``{}``."""
    from importlib.metadata import PackageNotFoundError

    try:
        facts = json.loads(SHIPPED_FACTS.read_text(encoding="utf-8"))
        current = code_version()
    except (OSError, ValueError, PackageNotFoundError) as exc:  # e.g. torch built from source
        logging.getLogger(__name__).warning("%s unusable (%s): deriving at start-up instead",
                                            SHIPPED_FACTS.name, exc)
        return {}
    if facts.get("code") != current:
        logging.getLogger(__name__).warning(
            "%s was derived from other code or torch/torchvision versions (%s, now %s): "
            "deriving at start-up instead, which is slower; regenerate it with "
            "scaled_models.zoo.write_derived_facts()", SHIPPED_FACTS.name, facts.get("code"),
            current)
        return {}
    return facts


def shipped(section: str) -> dict:
    """One section of the shipped facts, or ``{}`` when they were derived from other code or
    library versions (or cannot be read): the caller then derives them itself."""
    return _current_facts().get(section, {})
