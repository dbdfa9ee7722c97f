"""scalecam's metrics and statistics against independent implementations: SciPy's bootstrap,
statsmodels' McNemar, torchvision's box IoU, torch-cam's DeletionInsertionMetric, and
MaxBoxAccV2 written here from Choe et al. (CVPR 2020) and their evaluator's rules, on real maps
of the ImageNet val sample. Each reference is a dev dependency or is written out below; none is
scalecam's own code. (Spearman's ρ is checked against ``scipy.stats.spearmanr`` in
test_stats.py; Quantus does not install beside numpy 2.4, so its RelevanceMassAccuracy is written
out in test_evaluate.py's ``--save-maps`` test.)"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from cam.eval import metrics
from cam.eval.stats import bootstrap_mean_ci, mcnemar_exact

# --- statistics -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed, n, binary", [(0, 32, False), (1, 32, True), (2, 7, False),
                                             (3, 200, True)])
def test_bootstrap_equals_scipys_percentile_bootstrap(seed, n, binary):
    """The same resamples (both draw an n_resamples × n index matrix from default_rng(seed)):
    scipy interpolates between the two order statistics around each percentile, scalecam takes
    the one at or above it (Efron & Tibshirani's (B·α)-th value), so each bound lies between the
    two neighbouring order statistics of SciPy's own bootstrap distribution."""
    rng = np.random.default_rng(100 + seed)
    values = (rng.random(n) < 0.6).astype(float) if binary else rng.gamma(2.0, 0.1, n)
    ours = bootstrap_mean_ci(values, n_resamples=10_000, seed=seed)
    theirs = scipy.stats.bootstrap((values,), np.mean, n_resamples=10_000, method="percentile",
                                   rng=np.random.default_rng(seed), vectorized=True)
    ordered = np.sort(theirs.bootstrap_distribution)
    for bound, level, reference in ((ours.low, 0.025, theirs.confidence_interval.low),
                                    (ours.high, 0.975, theirs.confidence_interval.high)):
        below = ordered[int(np.floor((len(ordered) - 1) * level))]
        above = ordered[int(np.ceil((len(ordered) - 1) * level))]
        assert below <= reference <= above
        assert bound in (below, above)
        assert abs(bound - reference) <= above - below
    assert ours.mean == pytest.approx(values.mean(), abs=1e-15)


def test_mcnemar_equals_statsmodels_exact_test():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        a, b = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)),
                                                              int(np.sum(~a & ~b))]]
        expected = mcnemar(table, exact=True).pvalue
        assert mcnemar_exact(a, b).p == pytest.approx(expected, rel=1e-12, abs=1e-15)


# --- boxes ------------------------------------------------------------------------------------


def test_box_iou_equals_torchvisions_on_inclusive_boxes():
    """ILSVRC boxes are inclusive (x2 is the last pixel inside), torchvision's are half-open:
    the same pixels are (x1, y1, x2 + 1, y2 + 1) there."""
    from torchvision.ops import box_iou

    rng = np.random.default_rng(5)
    corners = rng.integers(0, 60, (120, 4))
    boxes = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]),
                            np.maximum(corners[:, :2], corners[:, 2:])], axis=1)
    a, b = boxes[:60], boxes[60:]
    half_open = torch.from_numpy(np.concatenate([boxes[:, :2], boxes[:, 2:] + 1], 1)).double()
    expected = box_iou(half_open[:60], half_open[60:]).numpy()
    ours = np.array([[metrics.box_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


# --- MaxBoxAccV2 on real maps -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_maps(lite_engine, val_sample):
    """The exact CAMs of the lite baseline for the val sample's 32 images, each on its common
    region at 224 px with the ground-truth boxes mapped into it, as ``cam evaluate`` scores
    them."""
    from cam.engine.geometry import boxes_in_region, image_region, map_in_region
    from cam.engine.inputs import image_from_sample
    from cam.engine.methods import EXACT
    from cam.engine.targets import GROUND_TRUTH
    from cam.eval.agreement import EVAL_SIZE
    from safe_io.imagenet_val import open_val_dir

    images = [image_from_sample(s) for s in open_val_dir(val_sample).samples]
    models = lite_engine.zoo.available()
    results = lite_engine.compute(images, EXACT, GROUND_TRUTH, ["baseline"])
    maps, boxes = [], []
    for image in images:
        region = image_region(image, models)
        result = results[(image.key, "baseline")]
        maps.append(map_in_region(result.raw_map, result.crop_box, region, EVAL_SIZE))
        boxes.append(boxes_in_region(image.boxes, region, EVAL_SIZE))
    return maps, boxes


def _box_acc_from_the_reference(maps, boxes, step=0.001):
    """BoxAcc(τ, δ) for δ = 30, 50, 70 % (Choe et al. 2020, §4.1, MaxBoxAccV2), written here from
    the paper and the rules of its evaluator (clovaai/wsolevaluation ``BoxEvaluator``,
    ``multi_contour_eval``, ``cam_curve_interval`` 0.001): each map min-max normalised and copied
    to uint8 by truncation; at τ the mask is ``uint8 > int(τ·max)``; one box per contour, from
    (x, y) to (x + w, y + h) clipped to the map, or (0, 0, 0, 0) for an empty mask; an image
    right at (τ, δ) if any box has IoU >= δ with any ground-truth box (inclusive pixel boxes,
    IoU from torchvision on the boxes made half-open)."""
    import cv2
    from torchvision.ops import box_iou

    taus = np.arange(0, 1, step)
    right = np.zeros((3, len(taus)))
    for cam, gts in zip(maps, boxes):
        cam = cam.astype(np.float64)  # the reference's maps are float64
        lo, hi = cam.min(), cam.max()
        scaled = (cam - lo) / (hi - lo) if hi > lo else np.zeros_like(cam)
        image = np.floor(scaled * 255).astype(np.uint8)
        height, width = image.shape
        gt = torch.tensor([[x1, y1, x2 + 1, y2 + 1] for x1, y1, x2, y2 in gts], dtype=torch.float64)
        for t, tau in enumerate(taus):
            mask = (image > int(tau * int(image.max()))).astype(np.uint8)
            contours = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            corners = [(x, y, min(x + w, width - 1), min(y + h, height - 1))
                       for x, y, w, h in map(cv2.boundingRect, contours)] or [(0, 0, 0, 0)]
            found = torch.tensor([[x1, y1, x2 + 1, y2 + 1] for x1, y1, x2, y2 in corners],
                                 dtype=torch.float64)
            best = float(box_iou(found, gt).max())
            right[:, t] += [best >= 0.3, best >= 0.5, best >= 0.7]
    return right / len(maps)


def test_maxboxacc_v2_equals_the_reference_definition_on_real_maps(real_maps):
    """Every BoxAcc(τ, δ) on the reference's 1000-threshold grid, and so MaxBoxAcc(δ), equals the
    one written out above. scalecam's earlier definition fails here twice over: its grid had
    100 thresholds, and its float mask ``>= τ`` with tight boxes gave the baseline's maps
    MaxBoxAcc(50) = 65.6 where the reference's rules give 68.8."""
    maps, boxes = real_maps
    expected = _box_acc_from_the_reference(maps, boxes)
    hits = [metrics.box_hits(metrics.best_iou_per_threshold(m, b)) for m, b in zip(maps, boxes)]
    np.testing.assert_array_equal(np.mean(hits, axis=0), expected)
    per_iou = metrics.maxboxacc_per_iou(maps, boxes)
    assert per_iou == {30: expected[0].max(), 50: expected[1].max(), 70: expected[2].max()}
    assert metrics.maxboxacc_v2(maps, boxes) == pytest.approx(expected.max(axis=1).mean(),
                                                              abs=1e-15)


# --- deletion and insertion against torch-cam ---------------------------------------------------


def test_deletion_and_insertion_equal_torchcams_on_a_real_image(lite_engine, val_sample):
    """torch-cam's DeletionInsertionMetric (RISE's metric: pixels ranked by the CAM, switched in
    equal steps, softmax score of the class, trapezoidal AUC) on one val image and the lite
    baseline, given the same map. Deletion: torch-cam's default baseline is zero in the
    normalised input, i.e. the mean colour (black fails here). Insertion: torch-cam starts from
    its baseline, so it is given RISE's blur of the normalised input (conv2d with RISE's
    11×11 kernel, zero padding) as that baseline."""
    from functools import partial

    from scipy.ndimage import gaussian_filter
    from torchcam.methods import CAM
    from torchcam.metrics import DeletionInsertionMetric

    from cam.engine.inputs import image_from_sample
    from safe_io.imagenet_val import open_val_dir

    # ILSVRC2012_val_00000002: confident (p 0.74), so the fill matters: its deletion AUC is 0.158
    # with the mean colour and 0.074 with black
    image = image_from_sample(open_val_dir(val_sample).samples[1])
    model = lite_engine.zoo.get("baseline")
    prep = model.preprocessing
    x = prep(image.image)[None]
    net = model.net
    target = int(net(x).argmax())

    with CAM(net, target_layer="features", fc_layer="fc") as extractor:
        with torch.no_grad():
            scores = net(x)
        cam_map = extractor(target, scores)[0]
        resized = torch.nn.functional.interpolate(cam_map[None], size=x.shape[-2:],
                                                  mode="bilinear", align_corners=False)[0, 0]
        impulse = np.zeros((11, 11))
        impulse[5, 5] = 1
        kernel = torch.zeros(3, 3, 11, 11)
        for c in range(3):
            kernel[c, c] = torch.from_numpy(gaussian_filter(impulse, 5))
        torchcam_auc = {}
        for name, baseline in (("deletion", None),
                               ("insertion", lambda t: torch.nn.functional.conv2d(t, kernel,
                                                                                  padding=5))):
            metric = DeletionInsertionMetric(extractor, partial(torch.softmax, dim=-1), steps=16,
                                             baseline=baseline)
            metric.update(x, target)
            torchcam_auc[name] = metric.summary()[f"{name}_auc"]

    crop = np.asarray(prep.crop(image.image), dtype=np.float32) / 255.0

    def score(frames: np.ndarray) -> np.ndarray:
        return lite_engine.class_probability("baseline", frames, target)

    deletion, insertion = metrics.deletion_insertion_auc(score, crop, resized.numpy(), prep.mean,
                                                         steps=16)
    assert deletion == pytest.approx(torchcam_auc["deletion"], abs=2e-4)
    assert insertion == pytest.approx(torchcam_auc["insertion"], abs=2e-4)
