"""The page's words that scripts find it by: widget keys and labels, tab names, status texts and
download file names.

The app draws its page with these, and the scripts that drive the real page in a browser (the
serve benchmark, tests/test_browser.py) find their way with the same values, so a rewording is
one edit here and cannot silently break them. A widget is found by its Streamlit key (rendered
as the class ``st-key-<key>``), which survives rewording; its label is the fallback and names it
in errors.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Widget(NamedTuple):
    key: str
    label: str


# sidebar
LADDER = Widget("ladder", "Compare")
FAMILY = Widget("family", "Weight family")
BROUGHT = Widget("brought", "Your models")
MODELS = Widget("models", "Models (paper order)")


def models_key(ladder: str) -> str:
    """The models selector's key: one per ladder (their columns differ), Table 7's the plain
    one."""
    return MODELS.key if ladder == "table7" else f"{MODELS.key}_{ladder}"
METHOD = Widget("method", "CAM method")
TARGET_MODE = Widget("target_mode", "Target class")
PREDICTED_MODE, GROUND_TRUTH_MODE, ONE_CLASS_MODE = (
    "each model's prediction", "ground truth", "one class for all models")
TARGET_CLASS = Widget("target_class", "Class (type to search)")
DPI = Widget("dpi", "Export DPI")
FAMILY_CAPTION = "Family"  # the sidebar caption "Family **lite** — …" names the loaded family

# images
IMAGE_TABS = SAMPLES_TAB, VAL_TAB, UPLOAD_TAB = ("Sample photos", "ImageNet validation", "Upload")
PHOTOS = Widget("samples", "Bundled photos (sample_images/)")
UPLOADS = Widget("uploads", "Upload images")

# the settings the page's refusals name (the operator sets them; app/settings.py reads them)
MAX_EXPORT_ENV = "SCALECAM_MAX_EXPORT_MEGAPIXELS"
MAX_GRID_ENV = "SCALECAM_MAX_GRID_IMAGES"

# the maps' status box
MAPS_READY = "Maps ready"
MAPS_FAILED = "CAM computation failed"
NO_MAPS = "No maps"


def images_shown(count: int) -> str:
    """The part of the ready label that says how many images the grid holds."""
    return f"({count} images ×"


def models_shown(models: Sequence[str]) -> str:
    """The part of the ready label that says which models ran."""
    return f"× {len(models)} models: {', '.join(models)};"


def maps_ready_label(seconds: float, images: int, models: Sequence[str], source: str) -> str:
    """"Maps ready in 1.23 s (6 images × 3 models: baseline, resolution, compound; …)", built
    from the parts the scripts wait for."""
    return (f"{MAPS_READY} in {seconds:.2f} s {images_shown(images)}"
            f"{models_shown(models)[1:]} {source})")


def no_model_ran_label(family: str, models: Sequence[str]) -> str:
    """The status when none of the selected models has weights: no maps, and where to read
    why (each unavailable model's reason and command stand above the grid)."""
    return (f"{NO_MAPS}: none of the selected models ({', '.join(models)}) is available in the "
            f"{family} family; why, and the command that makes each, are below")


# results
RESULT_TABS = INSPECT_TAB, EVALUATE_TAB, EXPORT_TAB, SANITY_TAB = ("Inspect", "Evaluate", "Export",
                                                                 "Sanity checks")


class Download(NamedTuple):
    widget: Widget
    file_name: str


GRID_STEM = "scalecam_figure7"  # the grid's files: .png (or .zip of parts), .pdf, .json
GRID_PNG = Download(Widget("dl_png", "Grid PNG"), f"{GRID_STEM}.png")
GRID_PDF = Download(Widget("dl_pdf", "Grid PDF"), f"{GRID_STEM}.pdf")
PANELS_ZIP = Download(Widget("dl_zip", "Panels (zip of PNGs)"), "scalecam_panels.zip")
