"""scalecam's CAM engine: images in, Figure 7 grids and metrics out — no Streamlit needed.

    from scaled_models import load_zoo
    from scaled_models.weights import resolve_family
    from cam import CamEngine, collect_images, make_figure, RenderStyle, compose_grid
    family, reason = resolve_family("auto")
    engine = CamEngine(load_zoo(family, reason=reason))
    spec = make_figure(engine, collect_images(["sample_images"]).images)
    compose_grid(spec, RenderStyle()).save("fig.png")
"""
from safe_io.images import ImageLoadError, load_image

from .engine import CamEngine, CamResult
from .export import pdf_bytes, save_figure
from .figure import FigureSpec, make_figure
from .grid import compose_grid
from .inputs import CamImage, collect_images, image_from_bytes, image_from_path
from .manifest import manifest
from .methods import EXACT, METHODS, CamMethod
from .notebook import CompareResult, CompareRow, compare
from .sanity_notebook import CascadeResult, cascade
from .style import RenderStyle
from .targets import GROUND_TRUTH, PREDICTED, Target, TargetMode, parse_target

__all__ = ["EXACT", "GROUND_TRUTH", "METHODS", "PREDICTED", "CamEngine", "CamMethod", "CamResult",
           "Target", "TargetMode", "parse_target", "make_figure", "ImageLoadError", "load_image",
           "CamImage", "collect_images", "image_from_bytes", "image_from_path", "FigureSpec",
           "RenderStyle", "compose_grid", "manifest", "pdf_bytes", "save_figure", "compare",
           "CompareResult", "CompareRow", "cascade", "CascadeResult"]
