"""scalecam's CAM engine: images in, Figure 7 grids and metrics out — no Streamlit needed.

    from scaled_models import load_zoo
    from cam import CamEngine, collect_images, make_figure, RenderStyle, compose_grid
    engine = CamEngine(load_zoo("auto"))
    spec = make_figure(engine, collect_images(["sample_images"]).images)
    compose_grid(spec, RenderStyle()).save("fig.png")
"""
from .engine import EXACT, GROUND_TRUTH, METHODS, PREDICTED, CamEngine, CamResult, Target, parse_target
from .figure import make_figure
from .images import ImageLoadError, load_image
from .inputs import CamImage, collect_images, image_from_bytes, image_from_path
from .render import FigureSpec, RenderStyle, compose_grid, figure_bytes, manifest, save_figure

__all__ = ["EXACT", "GROUND_TRUTH", "METHODS", "PREDICTED", "CamEngine", "CamResult", "Target",
           "parse_target", "make_figure", "ImageLoadError", "load_image", "CamImage",
           "collect_images", "image_from_bytes", "image_from_path", "FigureSpec", "RenderStyle",
           "compose_grid", "figure_bytes", "manifest", "save_figure"]
