"""Localization: does the map box the object? The CAM paper's box and GT-known/Top-1 Loc, and
MaxBoxAccV2 as clovaai/wsolevaluation computes it (Choe et al., CVPR 2020)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from cam.engine.maps import minmax

from .base import BoxLike, boxes_array, checked_map, iou_matrix

# MaxBoxAccV2's CAM thresholds: np.arange(0, 1, step) with the reference's step
# (clovaai/wsolevaluation ``config.py``, ``--cam_curve_interval`` default .001), and its IoU
# thresholds δ in percent.
CAM_THRESHOLD_STEP = 0.001
MAXBOXACC_IOUS: tuple[int, ...] = (30, 50, 70)


def cam_to_box(cam: np.ndarray, threshold: float = 0.2) -> tuple[int, int, int, int]:
    """Bounding box of a CAM as in the CAM paper (Zhou et al., CVPR 2016, "Learning Deep Features
    for Discriminative Localization", §3): keep pixels with value ``>= threshold * max(cam)``, take
    the largest 8-connected component, return its tight inclusive box ``(x1, y1, x2, y2)``.

    Ties in component size go to the component met first in raster order. A map with no positive
    value (all-zero, all-negative) carries no localization evidence; it returns the whole-image box
    ``(0, 0, W-1, H-1)``, which is also what a constant positive map gives by the rule itself.

    Deviation from wsolevaluation's MaxBoxAcc (``compute_bboxes_from_scoremaps`` without
    ``multi_contour_eval``), which keeps the largest *contour* by ``cv2.contourArea``: that is the
    area of the polygon through the boundary pixels' centres, so a one-pixel-wide line or a
    single pixel has area 0 and a blob of n pixels counts fewer than n; it can pick another
    region than the largest pixel group when the two are close in size (thin shapes lose). Here
    size is the pixel count, as the CAM paper's "largest connected component" says. (The
    reference also thresholds a uint8 copy of the map with ``>`` and ends boxes at ``x + w``;
    see ``maxboxacc_per_iou``.)
    """
    m = checked_map(cam)
    h, w = m.shape
    peak = m.max()
    if peak <= 0:
        return (0, 0, w - 1, h - 1)
    mask = (m >= threshold * peak).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    # Row 0 is the background label; the peak pixel guarantees at least one foreground component.
    x, y, bw, bh, _ = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
    return (int(x), int(y), int(x + bw - 1), int(y + bh - 1))


def gt_known_loc(cam: np.ndarray, gt_boxes: Iterable[BoxLike], threshold: float = 0.2,
                 iou_threshold: float = 0.5) -> bool:
    """GT-known localization: ``cam_to_box(cam)`` has IoU ``>= iou_threshold`` with ANY GT box.

    ``cam`` must be the map of the ground-truth class (classification is ignored). No GT boxes
    means not localized.
    """
    gts = boxes_array(gt_boxes)
    if len(gts) == 0:
        return False
    box = boxes_array([cam_to_box(cam, threshold)])
    return bool(iou_matrix(box, gts).max() >= iou_threshold)


def top1_loc(cam: np.ndarray, gt_boxes: Iterable[BoxLike], correct: bool, threshold: float = 0.2,
             iou_threshold: float = 0.5) -> bool:
    """Top-1 localization (ILSVRC): the top-1 class is correct AND ``gt_known_loc`` holds.

    When the prediction is correct the predicted and GT class coincide, so ``cam`` is the GT map.
    """
    return bool(correct) and gt_known_loc(cam, gt_boxes, threshold, iou_threshold)


def cam_thresholds(step: float = CAM_THRESHOLD_STEP) -> np.ndarray:
    """MaxBoxAccV2's CAM thresholds τ: ``np.arange(0, 1, step)``, as the reference builds them
    (1000 values at the default step)."""
    return np.arange(0.0, 1.0, step)


def _best_iou_per_tau(norm: np.ndarray, gts: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """For each τ: max IoU between any box of the reference's ``scoremap2bbox`` and any GT box
    (rules in ``maxboxacc_per_iou``). The uint8 mask depends on τ only through ``int(τ·max)``,
    at most 256 values, so each distinct mask is traced once (1000 τ share about 255)."""
    image = (norm * 255).astype(np.uint8)  # float64, truncated, as the reference
    top = int(image.max())
    h, w = image.shape
    levels = np.array([int(tau * top) for tau in taus])
    distinct, level_of_tau = np.unique(levels, return_inverse=True)
    boxes: list[tuple[int, int, int, int]] = []
    owner: list[int] = []
    for i, level in enumerate(distinct):
        contours, _ = cv2.findContours((image > level).astype(np.uint8), cv2.RETR_TREE,
                                       cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            x, y, bw, bh = cv2.boundingRect(contour)
            boxes.append((x, y, min(x + bw, w - 1), min(y + bh, h - 1)))
            owner.append(i)
        if not contours:  # the reference's box for an empty mask
            boxes.append((0, 0, 0, 0))
            owner.append(i)
    best = np.zeros(len(distinct))
    if len(gts):
        ious = iou_matrix(np.array(boxes, dtype=np.float64), gts).max(axis=1)
        np.maximum.at(best, np.array(owner), ious)
    return best[level_of_tau]


def best_iou_per_threshold(cam: np.ndarray, gt_boxes: Iterable[BoxLike],
                           step: float = CAM_THRESHOLD_STEP) -> np.ndarray:
    """One image's share of MaxBoxAccV2: for each τ of ``cam_thresholds(step)``, the best IoU of
    any of the map's boxes at τ with any GT box (definition: ``maxboxacc_per_iou``)."""
    return _best_iou_per_tau(minmax(cam), boxes_array(gt_boxes), cam_thresholds(step))


def box_hits(best_ious: np.ndarray,
             iou_thresholds: Sequence[int] = MAXBOXACC_IOUS) -> np.ndarray:
    """Where one image is correct: a boolean δ × τ array, ``best_ious[τ] >= δ/100``. This is all
    of an image that MaxBoxAccV2 needs (the reference's evaluator keeps the per-τ sums of these,
    ``num_correct``), so a dataset can be scored in pieces, resumed and resampled."""
    deltas = np.asarray(iou_thresholds, dtype=np.float64)[:, None] / 100.0
    return np.asarray(best_ious, dtype=np.float64)[None, :] >= deltas


def maxboxacc_per_iou(cams: Sequence[np.ndarray], gt_boxes_per_image: Sequence[Iterable[BoxLike]],
                      iou_thresholds: Sequence[int] = MAXBOXACC_IOUS,
                      step: float = CAM_THRESHOLD_STEP) -> dict[int, float]:
    """MaxBoxAcc(δ) for each δ, as fractions in [0, 1] keyed by δ in percent.

    Choe et al., CVPR 2020, "Evaluating Weakly Supervised Object Localization Methods Right",
    §4.1, computed as their reference code computes it (clovaai/wsolevaluation, ``BoxEvaluator``
    with ``multi_contour_eval=True`` and ``--cam_curve_interval`` 0.001), since that code made
    the paper's tables and everyone's since: each map is min-max normalised (a constant map
    becomes all zeros) and copied to uint8 (``int(255·map)``, truncated); for every τ in
    ``cam_thresholds(step)`` the mask is ``uint8 map > int(τ · its max)``, split into contours
    (``cv2.findContours`` RETR_TREE / CHAIN_APPROX_SIMPLE, so hole contours count too), and each
    contour's box runs from ``(x, y)`` to ``(x + w, y + h)`` clipped to the image — one pixel
    beyond the contour, as in the reference — or is ``(0, 0, 0, 0)`` when the mask is empty.
    IoU is inclusive (``box_iou``). An image is correct at (τ, δ) if the best IoU over
    (boxes × GT boxes) is ``>= δ/100``; ``BoxAcc(τ, δ)`` is the mean over images and
    ``MaxBoxAcc(δ) = max_τ BoxAcc(τ, δ)`` — one τ for the whole dataset, not one per image.

    Where this departs from the paper's prose (a mask ``map >= τ`` on the float map, tight
    boxes), it follows the code, so that numbers compare with published ones. What differs is
    the caller's choice of grid, not this function: ``cam evaluate`` scores each image on its
    models' common region (the crop every model saw) at 224 px rather than the whole image
    resized to 224, maps the GT boxes onto it as exact (fractional) pixel boxes where the
    reference truncates resized boxes to integers, clips them to the region, and leaves out an
    image whose boxes all fall outside it.
    """
    if len(cams) != len(gt_boxes_per_image):
        raise ValueError(f"{len(cams)} maps but {len(gt_boxes_per_image)} GT box lists")
    hits = [box_hits(best_iou_per_threshold(cam, gts, step), iou_thresholds)
            for cam, gts in zip(cams, gt_boxes_per_image)]
    return maxboxacc_from_hits(hits, iou_thresholds)


def maxboxacc_from_hits(hits: Sequence[np.ndarray],
                        iou_thresholds: Sequence[int] = MAXBOXACC_IOUS) -> dict[int, float]:
    """MaxBoxAcc(δ) from per-image ``box_hits`` arrays (same δ and τ grid for all)."""
    if len(hits) == 0:
        raise ValueError("MaxBoxAcc needs at least one image")
    box_acc = np.stack([np.asarray(h, dtype=bool) for h in hits]).mean(axis=0)  # δ × τ
    return {int(d): float(acc.max()) for d, acc in zip(iou_thresholds, box_acc)}


def stack_hits(hits: Sequence[np.ndarray]) -> np.ndarray:
    """Per-image ``box_hits`` (δ × τ each) as one δ × n × τ float32 array, each δ's n × τ block
    contiguous: the form ``maxboxacc_v2_of_resamples`` multiplies, made once per dataset rather
    than once per batch of bootstrap resamples."""
    return np.ascontiguousarray(np.stack([np.asarray(h, dtype=bool) for h in hits], axis=1),
                                dtype=np.float32)


def maxboxacc_v2_of_resamples(stacked: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """MaxBoxAccV2 of resampled datasets, for bootstrap intervals: each row of ``indices``
    (B × n) picks n images (with repeats) from ``stacked`` (``stack_hits`` of the n images), and
    for each resample and each δ the best τ is chosen anew, exactly as ``maxboxacc_from_hits``
    does on one dataset. Returns B fractions; the row ``arange(n)`` gives the dataset's own
    MaxBoxAccV2."""
    n = stacked.shape[1]
    rows = np.repeat(np.arange(len(indices)), indices.shape[1])
    counts = np.zeros((len(indices), n), dtype=np.float32)
    np.add.at(counts, (rows, indices.ravel()), 1.0)  # how often each image is drawn
    per_delta = [(counts @ block).max(axis=1) / indices.shape[1] for block in stacked]
    return np.mean(per_delta, axis=0, dtype=np.float64)


def maxboxacc_v2(cams: Sequence[np.ndarray], gt_boxes_per_image: Sequence[Iterable[BoxLike]],
                 iou_thresholds: Sequence[int] = MAXBOXACC_IOUS,
                 step: float = CAM_THRESHOLD_STEP) -> float:
    """MaxBoxAccV2 (Choe et al. 2020): the mean of ``maxboxacc_per_iou`` over δ ∈ {30, 50, 70}%,
    as a fraction in [0, 1]."""
    per_iou = maxboxacc_per_iou(cams, gt_boxes_per_image, iou_thresholds, step)
    return float(np.mean(list(per_iou.values())))
