"""CAM evaluation metrics: localization (CAM paper, MaxBoxAccV2), pointing, energy, deletion and
insertion.

Pure numpy/OpenCV (SciPy for RISE's blur kernel) and model-agnostic: every function takes maps
and boxes, and the one metric that needs a model (deletion/insertion) takes a caller-supplied
``score_fn``. Each function names its source and where it deviates from the reference code;
tests/test_references.py checks them against independent implementations.

Conventions shared by every function here:

* A map (``cam``) is a finite float array H×W in the same pixel coordinates as the boxes.
* A box is ``safe_io.imagenet_val.Box`` (the one box type) or its corners ``(x1, y1, x2, y2)``.
  Boxes are INCLUSIVE, as in ILSVRC annotations: ``x2`` is the last pixel column inside the box, so
  ``area = (x2 - x1 + 1) * (y2 - y1 + 1)`` and pixel ``(x, y)`` lies in the box iff
  ``x1 <= x <= x2 and y1 <= y <= y2``. Boxes this module returns follow the same convention.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Union

import cv2
import numpy as np

from safe_io.imagenet_val import Box

BoxLike = Union[Box, Sequence[float]]  # the one Box type, or its four corners

# RISE (Petsiuk et al. 2018; eclique/RISE ``evaluation.py``) blurs the insertion canvas with
# an 11×11 kernel made from a Gaussian of sigma 5 (``gkern(11, 5)``).
RISE_BLUR_SIZE = 11
RISE_BLUR_SIGMA = 5.0
# MaxBoxAccV2's CAM thresholds: np.arange(0, 1, step) with the reference's step
# (clovaai/wsolevaluation ``config.py``, ``--cam_curve_interval`` default .001), and its IoU
# thresholds δ in percent.
CAM_THRESHOLD_STEP = 0.001
MAXBOXACC_IOUS: tuple[int, ...] = (30, 50, 70)
# Raised whenever a definition here changes what a metric returns (2: deletion to the mean colour,
# insertion from RISE's blur, MaxBoxAccV2 by the reference's rules), so that ``--resume`` never
# adds rows to rows measured otherwise.
DEFINITIONS_VERSION = 2


def _xyxy(box: BoxLike) -> tuple[float, float, float, float]:
    """Duck-type a box: attribute access first (safe_io.imagenet_val.Box), else a 4-sequence."""
    if hasattr(box, "x1"):
        return (float(box.x1), float(box.y1), float(box.x2), float(box.y2))
    x1, y1, x2, y2 = box
    return (float(x1), float(y1), float(x2), float(y2))


def _boxes_array(boxes: Iterable[BoxLike]) -> np.ndarray:
    """Boxes as a float (N, 4) array, N may be 0."""
    return np.array([_xyxy(b) for b in boxes], dtype=np.float64).reshape(-1, 4)


def _check_map(cam: np.ndarray) -> np.ndarray:
    """Reject maps a metric cannot interpret instead of returning a silently wrong number."""
    m = np.asarray(cam, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"expected a non-empty H×W map, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("map contains NaN or infinite values")
    return m


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), inclusive convention."""
    a, b = a[:, None, :], b[None, :, :]

    def extent(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # pixels in [lo, hi], inclusive
        return np.clip(hi - lo + 1, 0, None)

    inter = (extent(np.maximum(a[..., 0], b[..., 0]), np.minimum(a[..., 2], b[..., 2]))
             * extent(np.maximum(a[..., 1], b[..., 1]), np.minimum(a[..., 3], b[..., 3])))
    area_a = extent(a[..., 0], a[..., 2]) * extent(a[..., 1], a[..., 3])
    area_b = extent(b[..., 0], b[..., 2]) * extent(b[..., 1], b[..., 3])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou(a: BoxLike, b: BoxLike) -> float:
    """Intersection over union of two inclusive boxes.

    ``|A ∩ B| / |A ∪ B|`` with areas counted in pixels, ``area = (x2-x1+1)(y2-y1+1)``; so
    ``(0,0,9,9)`` vs ``(5,0,14,9)`` is 50/150 and a single pixel with itself is 1. Degenerate boxes
    (empty union) give 0.
    """
    return float(_iou_matrix(_boxes_array([a]), _boxes_array([b]))[0, 0])


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
    m = _check_map(cam)
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
    gts = _boxes_array(gt_boxes)
    if len(gts) == 0:
        return False
    box = _boxes_array([cam_to_box(cam, threshold)])
    return bool(_iou_matrix(box, gts).max() >= iou_threshold)


def top1_loc(cam: np.ndarray, gt_boxes: Iterable[BoxLike], correct: bool, threshold: float = 0.2,
             iou_threshold: float = 0.5) -> bool:
    """Top-1 localization (ILSVRC): the top-1 class is correct AND ``gt_known_loc`` holds.

    When the prediction is correct the predicted and GT class coincide, so ``cam`` is the GT map.
    """
    return bool(correct) and gt_known_loc(cam, gt_boxes, threshold, iou_threshold)


def minmax(cam: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1]: ``(cam - min) / (max - min)``; a constant map becomes all
    zeros (as wsolevaluation does). The one normalisation every display and metric uses."""
    m = _check_map(cam)
    lo, hi = m.min(), m.max()
    return np.zeros_like(m) if hi == lo else (m - lo) / (hi - lo)


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
        ious = _iou_matrix(np.array(boxes, dtype=np.float64), gts).max(axis=1)
        np.maximum.at(best, np.array(owner), ious)
    return best[level_of_tau]


def best_iou_per_threshold(cam: np.ndarray, gt_boxes: Iterable[BoxLike],
                           step: float = CAM_THRESHOLD_STEP) -> np.ndarray:
    """One image's share of MaxBoxAccV2: for each τ of ``cam_thresholds(step)``, the best IoU of
    any of the map's boxes at τ with any GT box (definition: ``maxboxacc_per_iou``)."""
    return _best_iou_per_tau(minmax(cam), _boxes_array(gt_boxes), cam_thresholds(step))


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


def pointing_hit(cam: np.ndarray, gt_boxes: Iterable[BoxLike], tolerance: int = 15) -> bool:
    """Pointing game (Zhang et al., ECCV 2016, "Top-down Neural Attention by Excitation Backprop").

    Hit iff the map's maximum ``(x, y)`` lies in some GT box enlarged by ``tolerance`` pixels on
    each side: ``x1 - t <= x <= x2 + t`` and ``y1 - t <= y <= y2 + t`` (a square tolerance;
    TorchRay's implementation uses a Euclidean disc, which differs only near box corners). Tied
    maxima: the first in raster order (``np.argmax``). A constant map points nowhere: a miss.
    """
    m = _check_map(cam)
    if m.max() == m.min():
        return False
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    g = _boxes_array(gt_boxes)
    t = tolerance
    inside = (g[:, 0] - t <= x) & (x <= g[:, 2] + t) & (g[:, 1] - t <= y) & (y <= g[:, 3] + t)
    return bool(inside.any())


def box_mask(gt_boxes: Iterable[BoxLike], shape: tuple[int, int]) -> np.ndarray:
    """The ground-truth region as a boolean mask (Quantus' ``s_batch``), the one energy in box
    counts: pixels inside any box, ``x1 <= x <= x2`` on integer pixel coordinates, clipped to
    the map."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    for x1, y1, x2, y2 in _boxes_array(gt_boxes):
        c0, c1 = max(int(np.ceil(x1)), 0), min(int(np.floor(x2)), w - 1)
        r0, r1 = max(int(np.ceil(y1)), 0), min(int(np.floor(y2)), h - 1)
        if c0 <= c1 and r0 <= r1:
            mask[r0:r1 + 1, c0:c1 + 1] = True
    return mask


def energy_in_boxes(cam: np.ndarray, gt_boxes: Iterable[BoxLike]) -> float:
    """Energy-based pointing game (Wang et al., CVPRW 2020, Score-CAM §4.2).

    Share of the map's mass inside the UNION of the GT boxes (overlaps counted once):
    ``sum(relu(cam)[inside]) / sum(relu(cam))``. Negative values are clipped to 0 rather than
    min-shifted, so a constant offset does not leak energy outside the boxes. An all-zero (or
    all-negative) map has no energy and gives 0.0.
    """
    m = np.clip(_check_map(cam), 0.0, None)
    total = m.sum()
    if total <= 0:
        return 0.0
    return float(m[box_mask(gt_boxes, m.shape)].sum() / total)


def _perturbation_curve(score_fn: Callable[[np.ndarray], np.ndarray], rank: np.ndarray,
                        counts: np.ndarray, start: np.ndarray, end: np.ndarray,
                        batch_size: int) -> np.ndarray:
    """Scores of the images that take their ``k`` top-ranked pixels from ``end``, the rest from
    ``start``, for each ``k`` in ``counts``; ``score_fn`` is called on chunks of ``batch_size``."""
    scores = []
    for i in range(0, len(counts), batch_size):
        k = counts[i:i + batch_size]
        swapped = (rank[None] < k[:, None, None])[..., None]
        batch = np.where(swapped, end[None], start[None])
        s = np.asarray(score_fn(batch), dtype=np.float64).reshape(-1)
        if s.shape != (len(k),):
            raise ValueError(f"score_fn returned {s.shape[0]} scores for a batch of {len(k)}")
        scores.append(s)
    return np.concatenate(scores)


def rise_blur_kernel() -> np.ndarray:
    """RISE's blur kernel, made as its ``gkern(11, 5)`` makes it: a centred unit impulse on an
    11×11 grid smoothed by ``scipy.ndimage.gaussian_filter`` with sigma 5 (reflecting edges, so
    the Gaussian's tails fold back into the window and the kernel sums to 1)."""
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros((RISE_BLUR_SIZE, RISE_BLUR_SIZE))
    impulse[RISE_BLUR_SIZE // 2, RISE_BLUR_SIZE // 2] = 1.0
    return gaussian_filter(impulse, RISE_BLUR_SIGMA)


def rise_blur(image: np.ndarray, fill: Sequence[float]) -> np.ndarray:
    """RISE's insertion canvas for an H×W×3 image: each channel convolved with
    ``rise_blur_kernel`` as RISE convolves the *normalised* input ``(x - fill) / std``, with
    zero padding. Convolution is linear, so mapping that result back (``· std + fill``) is
    blurring ``image - fill`` with zero padding and adding ``fill``, whatever the std: edge
    pixels are drawn towards the mean colour, as RISE's are towards normalised zero."""
    img = np.asarray(image, dtype=np.float32)
    base = np.asarray(fill, dtype=np.float32).reshape(1, 1, -1)
    kernel = rise_blur_kernel().astype(np.float32)
    blurred = cv2.filter2D(img - base, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return blurred.reshape(img.shape) + base


def deletion_insertion_auc(score_fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                           cam: np.ndarray, fill: Sequence[float], steps: int = 16, *,
                           batch_size: int = 32) -> tuple[float, float]:
    """Deletion and insertion AUC (Petsiuk et al., BMVC 2018, "RISE", §4.1; reference code
    eclique/RISE ``evaluation.py``, ``CausalMetric``). Returns ``(del, ins)``.

    ``image`` is the model's input crop, H×W×3 in the [0, 1] RGB space the model's
    normalisation starts from, and ``fill`` that normalisation's mean colour: the pixel value it
    maps to zero. RISE deletes to zero in the normalised space (``torch.zeros_like`` of the
    normalised input), i.e. to the mean colour, not to black, which is an out-of-distribution
    colour that models with different normalisations (Lite's 0.5 grey vs torchvision's ImageNet
    mean) react to differently. Insertion starts from ``rise_blur(image, fill)``, as RISE's
    ``substrate_fn = blur``, and restores pixels into it.

    Pixels are ranked by ``cam`` descending (ties in raster order). For k = 0..steps, the top
    ``round(k/steps · H·W)`` pixels are switched (RISE switches a fixed 224 pixels a step and
    scores every step; ``steps`` trades that resolution for time). ``score_fn(batch[N,H,W,3])
    -> [N]`` scores the target class (its probability, as RISE's softmax output) and is called
    in chunks of ``batch_size``. AUC is the trapezoidal area over the switched fraction in
    [0, 1], as RISE's ``auc``: lower deletion and higher insertion are better. ``cam`` must be
    H×W like ``image`` (the caller resizes).
    """
    img = np.asarray(image, dtype=np.float32)
    m = _check_map(cam)
    if img.ndim != 3 or img.shape[:2] != m.shape:
        raise ValueError(f"image {img.shape} must be H×W×C, H×W equal to the map's {m.shape}")
    colour = np.asarray(fill, dtype=np.float32)
    if colour.shape != (img.shape[2],):
        raise ValueError(f"fill must be one value per channel ({img.shape[2]}), got {colour.shape}")
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    h, w = m.shape
    n = h * w
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-m.ravel(), kind="stable")] = np.arange(n)
    rank = rank.reshape(h, w)
    counts = np.round(np.linspace(0, n, steps + 1)).astype(np.int64)
    deleted = np.broadcast_to(colour, img.shape)
    fractions = counts / n
    deletion = _perturbation_curve(score_fn, rank, counts, img, deleted, batch_size)
    insertion = _perturbation_curve(score_fn, rank, counts, rise_blur(img, colour), img,
                                    batch_size)
    return float(np.trapezoid(deletion, fractions)), float(np.trapezoid(insertion, fractions))


def _matching_maps(map_a: np.ndarray, map_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both maps validated by ``_check_map`` and required to have the same shape."""
    a, b = _check_map(map_a), _check_map(map_b)
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array; tied values share the mean of the ranks they occupy."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group_of = np.cumsum(starts_group) - 1
    first = np.flatnonzero(starts_group)  # 0-based position where each group starts
    past_last = np.r_[first[1:], len(values)]  # ranks first+1 .. past_last
    ranks = np.empty(len(values))
    ranks[order] = ((first + 1 + past_last) / 2.0)[group_of]
    return ranks


def spearman_rank_correlation(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Spearman's rank correlation ρ between the pixel values of two H×W maps (Spearman 1904,
    "The proof and measurement of association between two things", Am. J. Psychol. 15:72–101),
    as used to compare saliency maps by Adebayo et al. (NeurIPS 2018, "Sanity Checks for Saliency
    Maps") and Ghorbani, Abid & Zou (AAAI 2019, "Interpretation of Neural Networks is Fragile").

    ρ is the Pearson correlation of the two maps' pixel ranks, tied pixels getting the mean of the
    ranks they span (as ``scipy.stats.spearmanr``); without ties it equals
    ``1 - 6 Σ d² / (n (n² - 1))`` with d the rank differences. Maps with identical rankings — a
    map and itself, or any strictly increasing transform of it — give exactly 1.0. A constant map
    has no ranking: the result is ``nan``. Shapes must match (``ValueError`` otherwise).
    """
    a, b = _matching_maps(map_a, map_b)
    if a.min() == a.max() or b.min() == b.max():
        return float("nan")
    rank_a, rank_b = _average_ranks(a.ravel()), _average_ranks(b.ravel())
    if np.array_equal(rank_a, rank_b):  # exactly 1, whatever order the dot products sum in
        return 1.0
    dev_a, dev_b = rank_a - rank_a.mean(), rank_b - rank_b.mean()
    rho = (dev_a @ dev_b) / np.sqrt((dev_a @ dev_a) * (dev_b @ dev_b))
    return float(np.clip(rho, -1.0, 1.0))


def top_fraction_iou(map_a: np.ndarray, map_b: np.ndarray, fraction: float = 0.2) -> float:
    """IoU of the two maps' top-``fraction`` regions; an IoU variant of the top-k intersection
    Ghorbani, Abid & Zou (AAAI 2019, "Interpretation of Neural Networks is Fragile") use to compare
    saliency maps.

    A map's region is exactly its k = ⌈fraction · H·W⌉ highest pixels, ties broken in raster order
    (stable sort on −value), so both regions have k pixels and ``IoU = |A ∩ B| / (2k − |A ∩ B|)``.
    k is computed on the decimal value of ``fraction`` (0.07 of 100 pixels is 7, not the 8 that
    ⌈0.07 · 100⌉ gives in binary floating point). Identical maps give exactly 1.0. Shapes must
    match and ``0 < fraction <= 1``, else ``ValueError``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    a, b = _matching_maps(map_a, map_b)
    k = math.ceil(Fraction(str(fraction)) * a.size)
    top_a = np.argsort(-a.ravel(), kind="stable")[:k]
    top_b = np.argsort(-b.ravel(), kind="stable")[:k]
    shared = len(np.intersect1d(top_a, top_b, assume_unique=True))
    return shared / (2 * k - shared)


def normalised_faithfulness(deletion_auc: float, insertion_auc: float,
                            unperturbed_prob: float) -> dict[str, float | None]:
    """Deletion and insertion AUC, raw and divided by the unperturbed probability ``p0`` of the
    explained class (the score of the untouched crop, where both curves start or end).

    A raw deletion AUC rewards a model whose probability starts near zero: its curve cannot fall
    far, so its area is small whatever its map shows. Dividing by ``p0`` measures the area in
    units of the model's own confidence (a map that deletes nothing useful scores about 1 on
    deletion). The scale dependence of these curves is among the weaknesses of DAUC/IAUC that
    Gomez et al. discuss (ICPR 2022, "Metrics for saliency map evaluation of deep learning
    explanation methods"); this normalisation is scalecam's. ``p0 <= 0`` gives ``None`` for the
    normalised values.
    """
    scale = 1.0 / unperturbed_prob if unperturbed_prob > 0 else None
    return {"deletion_auc": deletion_auc, "insertion_auc": insertion_auc,
            "deletion_auc_norm": deletion_auc * scale if scale is not None else None,
            "insertion_auc_norm": insertion_auc * scale if scale is not None else None}
