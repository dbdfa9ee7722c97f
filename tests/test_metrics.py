"""Every metric on constructed maps and boxes whose answer is worked out by hand in the comments."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from cam.eval.metrics import (
    box_iou,
    cam_to_box,
    deletion_insertion_auc,
    energy_in_boxes,
    gt_known_loc,
    maxboxacc_per_iou,
    maxboxacc_v2,
    pointing_hit,
    top1_loc,
)


@dataclass(frozen=True)
class Box:  # same shape as safe_io.imagenet_val.Box: the metrics duck-type it
    x1: float
    y1: float
    x2: float
    y2: float


def block(h: int, w: int, *regions: tuple[int, int, int, int, float]) -> np.ndarray:
    """Zero map with inclusive regions (x1, y1, x2, y2, value) painted in order."""
    m = np.zeros((h, w))
    for x1, y1, x2, y2, v in regions:
        m[y1:y2 + 1, x1:x2 + 1] = v
    return m


# --- box_iou -----------------------------------------------------------------------------------

def test_iou_half_overlap_inclusive():
    # (0,0,9,9) and (5,0,14,9): each 10×10 = 100 px; overlap columns 5..9 × rows 0..9 = 50 px;
    # union 100 + 100 - 50 = 150 → 1/3.
    assert box_iou((0, 0, 9, 9), (5, 0, 14, 9)) == pytest.approx(50 / 150, abs=1e-12)


def test_iou_shared_column_counts_and_adjacent_boxes_do_not():
    # (0,0,4,4) and (4,0,8,4) share column 4: 1×5 = 5 px; union 25 + 25 - 5 = 45 → 1/9.
    # (An exclusive convention would say 0 here.)
    assert box_iou((0, 0, 4, 4), (4, 0, 8, 4)) == pytest.approx(5 / 45, abs=1e-12)
    # Columns 0..4 vs 5..9 touch but share no pixel → 0.
    assert box_iou((0, 0, 4, 4), (5, 0, 9, 4)) == 0.0


def test_iou_single_pixel_and_duck_typed_boxes():
    # One pixel is a box of area 1×1 = 1; with itself IoU = 1 (exclusive convention: 0/0).
    assert box_iou((3, 3, 3, 3), (3, 3, 3, 3)) == 1.0
    # Attribute boxes: (0,0,9,9) inside (0,0,19,9): 100 / 200.
    assert box_iou(Box(0, 0, 9, 9), SimpleNamespace(x1=0, y1=0, x2=19, y2=9)) == 0.5


# --- cam_to_box --------------------------------------------------------------------------------

def test_cam_to_box_recovers_block():
    # 10×10 zeros with ones on columns 5..8, rows 2..4 (a 3-row × 4-column block): threshold 0.2 × 1
    # keeps exactly the block → (5, 2, 8, 4).
    assert cam_to_box(block(10, 10, (5, 2, 8, 4, 1.0))) == (5, 2, 8, 4)


def test_cam_to_box_threshold_is_inclusive_fraction_of_max():
    # Peak block (0..2, 0..2) = 1 next to a shelf (3..5, 0..2) = 0.15: at threshold 0.2 the shelf is
    # below 0.2 → (0,0,2,2); at 0.1 it joins → (0,0,5,2).
    m = block(10, 10, (0, 0, 2, 2, 1.0), (3, 0, 5, 2, 0.15))
    assert cam_to_box(m, 0.2) == (0, 0, 2, 2)
    assert cam_to_box(m, 0.1) == (0, 0, 5, 2)
    # A shelf of exactly 0.2 × max satisfies ">=" → kept.
    assert cam_to_box(block(10, 10, (0, 0, 2, 2, 1.0), (3, 0, 5, 2, 0.2))) == (0, 0, 5, 2)


def test_cam_to_box_takes_largest_component_not_highest_peak():
    # Blob A: 2×2 = 4 px at value 1 (the peak); blob B: 5×5 = 25 px at 0.5 (≥ 0.2). B is larger.
    m = block(20, 20, (0, 0, 1, 1, 1.0), (10, 10, 14, 14, 0.5))
    assert cam_to_box(m) == (10, 10, 14, 14)


def test_cam_to_box_uses_8_connectivity():
    # Two 2×2 blocks touching only diagonally ((1,1)–(2,2)) form one 8-px component; a separate
    # 3×2 = 6 px block is smaller. With 4-connectivity the 6-px block would win.
    m = block(20, 20, (0, 0, 1, 1, 1.0), (2, 2, 3, 3, 1.0), (10, 10, 12, 11, 1.0))
    assert cam_to_box(m) == (0, 0, 3, 3)


def test_cam_to_box_size_tie_goes_to_first_in_raster_order():
    # Two 2×2 blobs; the one in the upper rows is met first.
    m = block(20, 20, (15, 1, 16, 2, 1.0), (0, 10, 1, 11, 1.0))
    assert cam_to_box(m) == (15, 1, 16, 2)


def test_cam_to_box_degenerate_maps():
    # No positive evidence (all zero / all negative) → whole image; a constant positive map keeps
    # every pixel → whole image by the rule itself. W=7, H=5 → (0,0,6,4).
    for m in (np.zeros((5, 7)), np.full((5, 7), -2.0), np.full((5, 7), 3.0)):
        assert cam_to_box(m) == (0, 0, 6, 4)
    with pytest.raises(ValueError):
        cam_to_box(np.full((5, 7), np.nan))


# --- gt_known_loc / top1_loc -------------------------------------------------------------------

def test_gt_known_loc_at_the_iou_boundary():
    # CAM box (0,0,9,9) = 100 px. GT (0,0,19,9) = 200 px ⊇ it → IoU 100/200 = 0.5 ≥ 0.5 → hit.
    # GT (0,0,20,9) = 210 px → 100/210 < 0.5 → miss.
    m = block(30, 30, (0, 0, 9, 9, 1.0))
    assert gt_known_loc(m, [(0, 0, 19, 9)])
    assert not gt_known_loc(m, [(0, 0, 20, 9)])
    # ANY GT box suffices; no GT box → not localized.
    assert gt_known_loc(m, [Box(20, 20, 29, 29), Box(0, 0, 19, 9)])
    assert not gt_known_loc(m, [])


def test_top1_loc_requires_correct_class():
    m = block(30, 30, (0, 0, 9, 9, 1.0))
    assert top1_loc(m, [(0, 0, 9, 9)], correct=True)
    assert not top1_loc(m, [(0, 0, 9, 9)], correct=False)
    assert not top1_loc(m, [(20, 20, 29, 29)], correct=True)


# --- MaxBoxAccV2 -------------------------------------------------------------------------------

# The reference's rules (``maxboxacc_per_iou``): uint8 copy of the min-max map, mask
# ``uint8 > int(τ·max)``, a box per contour ending one pixel past it (x + w, clipped), IoU
# inclusive.
#
# Image A (20×20): a 6-col × 10-row block of ones; GT (0,0,9,9) = 100 px. Every τ masks exactly
# the block (255 > int(255τ) ≥ 0), whose box is (0,0,6,10) = 77 px: IoU 70/107 ≈ 0.65 →
# correct at δ = 30, 50, not 70.
IMAGE_A = (block(20, 20, (0, 0, 5, 9, 1.0)), [(0, 0, 9, 9)])
# Image B: a 10×10 blob and a 3×3 blob, whose box is (0,0,3,3); GT = that box. Largest-contour-
# only would give IoU 0; all contours give IoU 1 at every τ.
IMAGE_B = (block(20, 20, (10, 10, 19, 19, 1.0), (0, 0, 2, 2, 1.0)), [Box(0, 0, 3, 3)])
# Images C and D share a map: a 10×10 plateau at 0.555 (uint8 141) with a 5×5 core at 1 (255).
# τ < 141/255 ≈ 0.553 → the plateau's box (0,0,10,10) = 121 px; above → the core's (0,0,5,5).
# C's GT is the core's box (right only above 0.553: IoU 1, else 36/121 ≈ 0.298 < 0.3);
# D's GT is the plateau's (right only below 0.553: IoU 1, else 36/121).
_NESTED = block(20, 20, (0, 0, 9, 9, 0.555), (0, 0, 4, 4, 1.0))
IMAGE_C = (_NESTED, [(0, 0, 5, 5)])
IMAGE_D = (_NESTED, [(0, 0, 10, 10)])


def _run(*images):
    cams = [c for c, _ in images]
    gts = [g for _, g in images]
    return maxboxacc_per_iou(cams, gts), maxboxacc_v2(cams, gts)


def test_maxboxacc_single_image_iou_06():
    per_iou, v2 = _run(IMAGE_A)
    assert per_iou == {30: 1.0, 50: 1.0, 70: 0.0}
    assert v2 == pytest.approx(2 / 3, abs=1e-12)


def test_maxboxacc_counts_every_contour():
    # At every τ: A right at 30, 50; B right at all → BoxAcc = (1, 1, 0.5); V2 = 2.5/3.
    per_iou, v2 = _run(IMAGE_A, IMAGE_B)
    assert per_iou == {30: 1.0, 50: 1.0, 70: 0.5}
    assert v2 == pytest.approx(5 / 6, abs=1e-12)


def test_maxboxacc_takes_one_threshold_for_the_whole_dataset():
    # C and D are never right at the same τ, so every BoxAcc(τ, δ) ≤ 1/2 → MaxBoxAcc = 0.5 for all δ
    # (averaging per-image best thresholds would wrongly give 1).
    per_iou, v2 = _run(IMAGE_C, IMAGE_D)
    assert per_iou == {30: 0.5, 50: 0.5, 70: 0.5}
    assert v2 == 0.5


def test_maxboxacc_scale_invariant_and_constant_map():
    # Min-max normalisation: A's map shifted and scaled gives the same result.
    cam, gt = IMAGE_A
    assert maxboxacc_per_iou([3 * cam - 7], [gt]) == {30: 1.0, 50: 1.0, 70: 0.0}
    # A constant map normalises to zeros: no τ has a mask, and the reference's box for an empty
    # mask, (0,0,0,0), has IoU 1/25 with a 25-px GT → wrong at every δ ...
    assert maxboxacc_v2([np.full((20, 20), 4.0)], [[(0, 0, 4, 4)]]) == 0.0
    # ... and IoU 1 with a GT of that one pixel.
    assert maxboxacc_v2([np.full((20, 20), 4.0)], [[(0, 0, 0, 0)]]) == 1.0
    with pytest.raises(ValueError):
        maxboxacc_v2([cam], [])


def test_maxboxacc_does_one_iou_computation_per_image(monkeypatch):
    """Contour boxes of all 1000 thresholds are scored against the GT boxes in one vectorised IoU
    per image, not one per contour, and each distinct mask is traced once: int(τ·255) takes the
    255 values 0…254 over τ = 0, 0.001, …, 0.999 (the seconds are in `python -m cam bench`)."""
    from cam.eval.metrics import localization

    rng = np.random.default_rng(0)
    cams = [cv2.resize(rng.random((7, 7)).astype(np.float32), (224, 224)) for _ in range(50)]
    gts = [[(40, 50, 180, 200)]] * 50
    calls = {"iou": 0, "contours": 0}
    real_iou, real_contours = localization.iou_matrix, cv2.findContours

    def iou(*args):
        calls["iou"] += 1
        return real_iou(*args)

    def contours(*args):
        calls["contours"] += 1
        return real_contours(*args)

    monkeypatch.setattr(localization, "iou_matrix", iou)
    monkeypatch.setattr(cv2, "findContours", contours)
    v2 = maxboxacc_v2(cams, gts)
    assert 0.0 <= v2 <= 1.0
    assert calls == {"iou": 50, "contours": 50 * 255}


# --- pointing game -----------------------------------------------------------------------------

@pytest.mark.parametrize("distance, hit", [(0, True), (14, True), (15, True), (16, False)])
def test_pointing_tolerance_boundary(distance, hit):
    # Box right edge x2 = 30, tolerance 15 → the enlarged box reaches x = 45: a peak 15 px right of
    # the box is a hit, 16 px a miss.
    m = np.zeros((64, 64))
    m[20, 30 + distance] = 1.0
    assert pointing_hit(m, [(10, 10, 30, 30)], tolerance=15) is hit


def test_pointing_zero_tolerance_multiple_boxes_ties_and_constant():
    m = np.zeros((64, 64))
    m[20, 31] = 1.0  # one column right of box (10,10,30,30)
    assert not pointing_hit(m, [(10, 10, 30, 30)], tolerance=0)
    assert pointing_hit(m, [(10, 10, 30, 30), Box(31, 20, 40, 25)], tolerance=0)
    # Tied maxima at (x=60, y=0) and (x=20, y=20): the first in raster order is (60, 0), 30 px
    # right of the box → miss, although the other tied peak is inside.
    tie = np.zeros((64, 64))
    tie[0, 60] = tie[20, 20] = 1.0
    assert not pointing_hit(tie, [(10, 10, 30, 30)])
    # A constant map has no maximum to point with → miss even if the box covers everything.
    assert not pointing_hit(np.ones((64, 64)), [(0, 0, 63, 63)])


# --- energy ------------------------------------------------------------------------------------

def test_energy_quarter():
    # Uniform 10×10 map; box (0,0,4,4) covers 25 of 100 px → 0.25.
    assert energy_in_boxes(np.ones((10, 10)), [(0, 0, 4, 4)]) == 0.25


def test_energy_clips_negatives_and_counts_overlap_once():
    # Ones everywhere except rows 5..9 (50 px, all outside the box) set to -3: clipped to 0, the
    # remaining mass is 50, of which 25 is in (0,0,4,4) → 0.5.
    m = np.ones((10, 10))
    m[5:, :] = -3.0
    assert energy_in_boxes(m, [(0, 0, 4, 4)]) == 0.5
    # (0,0,4,4) ⊂ (0,0,4,9): union = 5×10 = 50 of 100 px → 0.5 (not 0.75).
    assert energy_in_boxes(np.ones((10, 10)), [(0, 0, 4, 4), Box(0, 0, 4, 9)]) == 0.5
    # Fractional box (0.5, 0, 4.2, 4): pixel columns x with 0.5 ≤ x ≤ 4.2 are 1..4 → 4×5 = 20 px.
    assert energy_in_boxes(np.ones((10, 10)), [(0.5, 0, 4.2, 4)]) == 0.2
    # Boxes past the border are clipped: (5,5,99,99) covers 25 px → 0.25.
    assert energy_in_boxes(np.ones((10, 10)), [(5, 5, 99, 99)]) == 0.25
    assert energy_in_boxes(np.zeros((10, 10)), [(0, 0, 4, 4)]) == 0.0


# --- deletion / insertion ----------------------------------------------------------------------

# A 10×10 image of ones whose "object" is the left half (50 px). The score is the fraction of the
# object still at its original value 1: deleted pixels take the fill (0 here), and every pixel of
# RISE's blurred canvas is below 1 (on a 10×10 image each 11×11 window reaches the zero padding).
OBJECT = np.zeros((10, 10), dtype=bool)
OBJECT[:, :5] = True
BLACK = (0.0, 0.0, 0.0)


def object_intact(batch: np.ndarray) -> np.ndarray:
    return (batch[:, OBJECT, 0] == 1.0).mean(axis=1, dtype=np.float64)


def test_deletion_insertion_linear_case_by_hand():
    # steps = 10 → 10 px switched per step. Perfect CAM (object first):
    #   deletion: score 1 - 2x for x ≤ 0.5, then 0 → AUC = ½·0.5·1 = 0.25
    #   insertion: score 2x for x ≤ 0.5, then 1 → AUC = 0.25 + 0.5 = 0.75
    # Inverted CAM (background first): deletion 1 until 0.5 then linear to 0 → 0.5 + 0.25 = 0.75;
    #   insertion 0 until 0.5 then linear to 1 → 0.25.
    image = np.ones((10, 10, 3), dtype=np.float32)
    perfect = OBJECT.astype(float)
    d, i = deletion_insertion_auc(object_intact, image, perfect, BLACK, steps=10)
    assert (d, i) == pytest.approx((0.25, 0.75), abs=1e-9)
    d_inv, i_inv = deletion_insertion_auc(object_intact, image, 1.0 - perfect, BLACK, steps=10)
    assert (d_inv, i_inv) == pytest.approx((0.75, 0.25), abs=1e-9)


def test_deletion_uneven_steps_is_exact_for_a_linear_score():
    # 7×7 = 49 px, 16 steps: switched counts round(k·49/16) are uneven, but a score equal to the
    # fraction of untouched pixels is 1 - x at the exact fractions x = count/49, so the trapezoid
    # is exact: deletion AUC = ½ whatever the ranking; insertion (no canvas pixel is 1) likewise ½.
    image = np.ones((7, 7, 3), dtype=np.float32)
    cam = np.random.default_rng(1).random((7, 7))

    def untouched(batch: np.ndarray) -> np.ndarray:
        return (batch[..., 0] == 1.0).mean(axis=(1, 2), dtype=np.float64)

    d, i = deletion_insertion_auc(untouched, image, cam, BLACK, steps=16)
    assert (d, i) == pytest.approx((0.5, 0.5), abs=1e-9)


def test_deletion_fills_with_the_mean_colour_and_insertion_starts_from_rises_blur():
    # steps = 10 → 11 frames per curve, batch_size 4 → calls of 4, 4, 3 for each curve.
    # Deletion goes image → the fill colour (not black); insertion goes RISE's blur → image.
    # RISE's blur, as its evaluation.py does it: normalise, conv2d with its gkern(11, 5) and zero
    # padding, and (here) map back to [0, 1] with the same mean and std.
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(2)
    image = rng.random((12, 12, 3)).astype(np.float32)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    seen: list[np.ndarray] = []

    def score(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return np.zeros(len(batch))

    deletion_insertion_auc(score, image, rng.random((12, 12)), mean, steps=10, batch_size=4)
    assert [len(b) for b in seen] == [4, 4, 3, 4, 4, 3]
    frames = np.concatenate(seen)
    np.testing.assert_array_equal(frames[0], image)
    np.testing.assert_array_equal(frames[10], np.broadcast_to(np.float32(mean), image.shape))
    impulse = np.zeros((11, 11))
    impulse[5, 5] = 1
    kern = torch.zeros(3, 3, 11, 11)
    for c in range(3):
        kern[c, c] = torch.from_numpy(gaussian_filter(impulse, 5))
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    normalised = (torch.from_numpy(image).permute(2, 0, 1)[None] - m) / s
    rise = (torch.nn.functional.conv2d(normalised, kern, padding=5) * s + m)[0].permute(1, 2, 0)
    np.testing.assert_allclose(frames[11], rise.numpy(), atol=1e-5)
    assert frames[11].std() < image.std()  # the canvas really is blurred
    np.testing.assert_array_equal(frames[21], image)


def test_deletion_insertion_rejects_bad_inputs():
    image = np.ones((10, 10, 3), dtype=np.float32)
    with pytest.raises(ValueError):
        deletion_insertion_auc(object_intact, image, np.ones((5, 5)), BLACK)
    with pytest.raises(ValueError):  # score_fn must give one score per image
        deletion_insertion_auc(lambda b: np.zeros(1), image, np.ones((10, 10)), BLACK)
    with pytest.raises(ValueError, match="one value per channel"):
        deletion_insertion_auc(object_intact, image, np.ones((10, 10)), (0.5,))


def test_maxboxacc_v2_of_resamples_matches_the_dataset_definition():
    """On the identity resample it equals MaxBoxAccV2 of the dataset; on a resample that draws
    image 0 twice it equals MaxBoxAccV2 of that duplicated dataset."""
    from cam.eval.metrics import maxboxacc_from_hits, maxboxacc_v2_of_resamples, stack_hits

    rng = np.random.default_rng(3)
    hits = rng.random((5, 3, 100)) < 0.4
    stacked = stack_hits(list(hits))
    identity = maxboxacc_v2_of_resamples(stacked, np.arange(5)[None])[0]
    assert identity == pytest.approx(np.mean(list(maxboxacc_from_hits(list(hits)).values())))
    drawn = np.array([[0, 0, 2, 3, 4]])
    duplicated = list(hits[[0, 0, 2, 3, 4]])
    assert maxboxacc_v2_of_resamples(stacked, drawn)[0] == pytest.approx(
        np.mean(list(maxboxacc_from_hits(duplicated).values())))
