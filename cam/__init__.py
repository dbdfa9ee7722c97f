"""scalecam's CAM library: images in, Figure 7 grids and metrics out — no Streamlit needed.

    from cam import compare
    result = compare(["sample_images/chelsea.png"], family="lite")   # a notebook's entry

    from scaled_models import load_zoo, get_family
    from cam import CamEngine, collect_images, make_figure, RenderStyle, compose_grid
    engine = CamEngine(load_zoo(get_family("lite")))
    spec = make_figure(engine, collect_images(["sample_images"]).images)
    compose_grid(spec, RenderStyle()).save("fig.png")

Three groups, one sub-package each, imports pointing down the list:

- ``cam.engine`` — computing maps: CAM methods, targets, images as the engine sees them, the
  engine and its cache, geometry, the figure spec, the sanity cascade's randomisation;
- ``cam.eval`` — measuring them: metrics (one module per family), statistics, map agreement,
  evaluation runs and their rows, summaries, sanity checks, the ``--save-maps`` export;
- ``cam.render`` — drawing and formatting them: style, overlays, the grid, exports, manifests,
  the report, summaries in words and plots.

``cam.notebook`` (``compare``, ``cascade``) is the notebook's entry to all three; ``cam.cli``
is the command line, an application that nothing in the library imports. The names below are
imported when first used (PEP 562), so ``import cam.eval.stats`` costs numpy, not torch.
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "ImageLoadError": "safe_io.images", "load_image": "safe_io.images",
    "CamEngine": "cam.engine.engine", "CamResult": "cam.engine.engine",
    "FigureSpec": "cam.engine.figure", "make_figure": "cam.engine.figure",
    "CamImage": "cam.engine.inputs", "collect_images": "cam.engine.inputs",
    "image_from_bytes": "cam.engine.inputs", "image_from_path": "cam.engine.inputs",
    "EXACT": "cam.engine.methods", "METHODS": "cam.engine.methods",
    "CamMethod": "cam.engine.methods",
    "GROUND_TRUTH": "cam.engine.targets", "PREDICTED": "cam.engine.targets",
    "Target": "cam.engine.targets", "TargetMode": "cam.engine.targets",
    "parse_target": "cam.engine.targets",
    "pdf_bytes": "cam.render.export", "save_figure": "cam.render.export",
    "compose_grid": "cam.render.grid", "manifest": "cam.render.manifest",
    "RenderStyle": "cam.render.style",
    "compare": "cam.notebook.compare", "CompareResult": "cam.notebook.compare",
    "CompareRow": "cam.notebook.compare",
    "cascade": "cam.notebook.cascade", "CascadeResult": "cam.notebook.cascade",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """A public name, imported from its module when first asked for."""
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'cam' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
