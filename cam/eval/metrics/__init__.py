"""CAM evaluation metrics, one module per family on one small base (``base``: what a map and a
box are): localization (the CAM paper's box, GT-known/Top-1 Loc, MaxBoxAccV2), pointing, energy
in the box, faithfulness (deletion and insertion) and similarity (Spearman, top-region IoU, SSIM,
histogram entropy).

Pure numpy/OpenCV (SciPy for RISE's blur kernel) and model-agnostic: every function takes maps
and boxes, and the one family that needs a model (faithfulness) takes a caller-supplied
``score_fn``. Each function names its source and where it deviates from the reference code;
tests/test_references.py checks them against independent implementations. The names below are
every family's, as ``metrics.NAME``.
"""
from __future__ import annotations

from .base import BoxLike, box_iou, checked_map
from .energy import box_mask, energy_in_boxes
from .faithfulness import (
    RISE_BLUR_SIGMA,
    RISE_BLUR_SIZE,
    Faithfulness,
    deletion_insertion_auc,
    normalised_faithfulness,
    rise_blur,
    rise_blur_kernel,
)
from .localization import (
    CAM_THRESHOLD_STEP,
    MAXBOXACC_IOUS,
    best_iou_per_threshold,
    box_hits,
    cam_thresholds,
    cam_to_box,
    gt_known_loc,
    maxboxacc_from_hits,
    maxboxacc_per_iou,
    maxboxacc_v2,
    maxboxacc_v2_of_resamples,
    stack_hits,
    top1_loc,
)
from .pointing import pointing_hit
from .similarity import histogram_entropy, spearman_rank_correlation, ssim, top_fraction_iou

# Raised whenever a definition here changes what a metric returns (2: deletion to the mean colour,
# insertion from RISE's blur, MaxBoxAccV2 by the reference's rules), so that ``--resume`` never
# adds rows to rows measured otherwise.
DEFINITIONS_VERSION = 2

__all__ = ["BoxLike", "CAM_THRESHOLD_STEP", "DEFINITIONS_VERSION", "Faithfulness",
           "MAXBOXACC_IOUS", "RISE_BLUR_SIGMA", "RISE_BLUR_SIZE", "best_iou_per_threshold",
           "box_hits", "box_iou", "box_mask", "cam_thresholds", "cam_to_box", "checked_map",
           "deletion_insertion_auc", "energy_in_boxes", "gt_known_loc", "histogram_entropy",
           "maxboxacc_from_hits", "maxboxacc_per_iou", "maxboxacc_v2",
           "maxboxacc_v2_of_resamples", "normalised_faithfulness", "pointing_hit", "rise_blur",
           "rise_blur_kernel", "spearman_rank_correlation", "ssim", "stack_hits",
           "top1_loc", "top_fraction_iou"]
