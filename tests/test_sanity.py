"""The sanity checks (#34) against their papers' definitions, written out here, and against
SciPy's Spearman, scikit-image's SSIM and SciPy's entropy, on real maps of the shared ImageNet
val sample with the lite baseline (Lite0): Adebayo et al. (NeurIPS 2018) randomise the classifier
first and then the layers below it, cumulatively; Sixt et al. (ICML 2020) compare the predicted
class's map with a random class's; Hedström et al. (2023) take the relative rise of the map's
histogram entropy."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import structural_similarity

from cam.engine.cascade import cascade_steps, randomised_copies
from cam.engine.inputs import collect_images
from cam.engine.maps import minmax
from cam.engine.methods import EXACT, METHODS
from cam.eval.rows import SanityRow, read_rows
from cam.eval.sanity import cascade_maps, random_class, sanity_row, score

from .conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def val_images(val_sample):
    return collect_images([val_sample]).images


@pytest.fixture(scope="module")
def baseline(lite_zoo):
    return lite_zoo.get("baseline")


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_the_first_step_randomises_the_classifier_only_and_the_second_the_head(baseline):
    """Adebayo et al. §3.1: the cascade starts at the top (the logits layer) and adds the next
    layer down at each step; the trained network itself never changes."""
    trained = _state(baseline.net)
    copies = randomised_copies(baseline.net, seed=0)
    _, first = next(copies)
    changed = {k for k, v in first.state_dict().items() if not torch.equal(v, trained[k])}
    assert changed == {"fc.weight", "fc.bias"}
    _, second = next(copies)
    changed = {k.rsplit(".", 1)[0] for k, v in second.state_dict().items()
               if not torch.equal(v, trained[k])}
    # Lite's head: the 1×1 convolution to 1280 channels (features.3) and its BatchNorm
    assert changed == {"fc", "features.3", "features.4"}
    for k, v in baseline.net.state_dict().items():
        assert torch.equal(v, trained[k]), f"the resident network's {k} changed"


def test_the_last_step_has_re_initialised_every_tensor(baseline):
    """After the whole cascade no trained weight or BatchNorm statistic is left, and the
    BatchNorms are the identity a freshly built layer is (γ 1, β 0, mean 0, variance 1)."""
    trained = _state(baseline.net)
    for step, net in randomised_copies(baseline.net, seed=0):
        last = net
    assert step.label == "stem" and step.index == len(cascade_steps(baseline.net))
    for k, v in last.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        assert not torch.equal(v, trained[k]), f"{k} kept its trained value"
    bn = last.features[4]  # the head's BatchNorm
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))


def test_spearman_ssim_and_entropy_equal_scipys_and_scikit_images(lite_engine, baseline,
                                                                  val_images):
    maps = cascade_maps(lite_engine, val_images[:2], baseline, EXACT, granularity="stages")
    for image_maps in maps:
        scores = score(image_maps)
        trained = image_maps.on_grid(image_maps.trained)
        assert trained.shape == (224, 224)
        for s, raw in enumerate(image_maps.randomised):
            randomised = image_maps.on_grid(raw)
            rho = scipy.stats.spearmanr(np.abs(trained).ravel(), np.abs(randomised).ravel())
            assert scores.spearman_abs[s] == pytest.approx(rho.statistic, abs=1e-9)
            signed = scipy.stats.spearmanr(trained.ravel(), randomised.ravel()).statistic
            assert scores.spearman[s] == pytest.approx(signed, abs=1e-9)
            # Wang et al. 2004: Gaussian window σ = 1.5, population moments, data range 1
            reference = structural_similarity(minmax(trained), minmax(randomised),
                                              data_range=1.0, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False)
            assert scores.ssim[s] == pytest.approx(reference, abs=1e-9)
        # Hedström et al.: relative rise of the discrete entropy of a 100-bin histogram
        entropy = [scipy.stats.entropy(np.histogram(m, bins=100)[0])
                   for m in (trained, image_maps.on_grid(image_maps.randomised[-1]))]
        assert scores.emprt == pytest.approx((entropy[1] - entropy[0]) / entropy[0], rel=1e-9)


def test_eigen_cam_is_the_same_map_for_every_class_and_the_exact_cam_is_not(lite_engine,
                                                                              baseline,
                                                                              val_images):
    """Random logit (Sixt et al.): Eigen-CAM is the first principal component of the
    activations, which no class enters, so its random-class map is its predicted-class map
    (SSIM 1). The exact CAM of class c is Σ_k w_k^c A_k (Zhou et al.), written out here."""
    image = val_images[0]
    eigen = cascade_maps(lite_engine, [image], baseline, METHODS["eigencam"],
                         granularity="stages")[0]
    assert eigen.random_class != eigen.target_class
    np.testing.assert_array_equal(eigen.random_logit, eigen.trained)
    assert score(eigen).random_logit_ssim == 1.0

    exact = cascade_maps(lite_engine, [image], baseline, EXACT, granularity="stages")[0]
    with torch.no_grad():
        features = baseline.net.features(lite_engine.preprocess(image, baseline.preprocessing)
                                         [None])[0]
    by_hand = {c: torch.einsum("chw,c->hw", features, baseline.net.fc.weight[c]).numpy()
               for c in (exact.target_class, exact.random_class)}
    np.testing.assert_allclose(exact.trained, by_hand[exact.target_class], rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(exact.random_logit, by_hand[exact.random_class], rtol=1e-4,
                               atol=1e-4)
    assert score(exact).random_logit_ssim < 0.9


def test_a_fully_randomised_networks_exact_cam_is_uncorrelated_with_the_trained_one(
        lite_engine, baseline, val_images):
    """On 12 val images: after the whole network is re-initialised, the exact CAM's Spearman ρ
    with the trained map averages near 0 (the new classifier's signs are random), whereas with
    the trained network it would be 1."""
    maps = cascade_maps(lite_engine, val_images[:12], baseline, EXACT, granularity="stages")
    final = [scipy.stats.spearmanr(m.on_grid(m.trained).ravel(),
                                   m.on_grid(m.randomised[-1]).ravel()).statistic for m in maps]
    assert abs(np.mean(final)) < 0.25
    assert max(np.abs(final)) < 0.9


def test_the_same_seed_gives_the_same_numbers_in_any_chunk(lite_engine, baseline, val_images):
    """A step's new weights depend on (seed, step) only: the same call gives the same numbers,
    an image explained alone or beside another the same up to float rounding (a batch of two
    sums in another order), and another seed other ones."""
    def rows(images, seed):
        return [sanity_row(m, "lite") for m in cascade_maps(lite_engine, images, baseline,
                                                             EXACT, seed, "stages")]

    pair = rows(val_images[:2], 3)
    assert rows(val_images[:2], 3) == pair
    alone = rows(val_images[1:2], 3)[0]
    assert alone.random_class == pair[1].random_class
    for field in ("spearman_abs", "spearman", "ssim"):
        np.testing.assert_allclose(getattr(alone, field), getattr(pair[1], field), atol=1e-4)
    other = rows(val_images[1:2], 4)[0]
    assert not np.allclose(other.spearman_abs, alone.spearman_abs, atol=1e-2)
    assert other.random_class != alone.random_class


def test_the_random_class_is_uniform_over_the_other_classes():
    drawn = [random_class(f"image {i}", predicted=7) for i in range(20000)]
    assert 7 not in drawn and min(drawn) == 0 and max(drawn) == 999
    counts = np.bincount(drawn, minlength=1000)
    assert scipy.stats.chisquare(np.delete(counts, 7)).pvalue > 0.001


def _evaluate(args):
    env = dict(os.environ, SCALECAM_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "cam", "evaluate", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_evaluate_sanity_resumes_refuses_other_options_and_exports_the_maps(val_sample,
                                                                            tmp_path):
    args = ["--val-dir", str(val_sample), "--limit", "2", "--batch-size", "1", "--family",
            "lite", "--models", "baseline", "--faithfulness-steps", "0", "--quiet",
            "--checkpoints", str(tmp_path / "none"), "--out", str(tmp_path / "r.csv"),
            "--sanity", "--sanity-steps", "stages", "--save-maps"]
    proc = _evaluate(args)
    assert proc.returncode == 0, proc.stderr
    assert "ρ fully randomised" in proc.stdout
    rows = read_rows(tmp_path / "r.sanity.csv", SanityRow)
    assert [(r.image_id, r.model, r.method) for r in rows] == [
        ("ILSVRC2012_val_00000001", "baseline", "cam"),
        ("ILSVRC2012_val_00000002", "baseline", "cam")]
    assert rows[0].steps[0] == "fc" and rows[0].steps[-1] == "stem"
    summary = (tmp_path / "r.sanity.summary.json").read_text()
    assert '"cascade_passes"' in summary and (tmp_path / "r.sanity.png").is_file()

    # the exported raw maps give the CSV's numbers back (bilinear onto 224 px of the crop)
    arrays = np.load(tmp_path / "r.sanity.maps.baseline.npz")
    assert list(arrays["image_ids"]) == [r.image_id for r in rows]
    assert arrays["cascade"].shape[:2] == (2, len(rows[0].steps))
    for i, row in enumerate(rows):
        trained = cv2.resize(arrays["trained"][i], (224, 224), interpolation=cv2.INTER_LINEAR)
        final = cv2.resize(arrays["cascade"][i, -1], (224, 224), interpolation=cv2.INTER_LINEAR)
        rho = scipy.stats.spearmanr(np.abs(trained).ravel(), np.abs(final).ravel()).statistic
        assert row.spearman_abs[-1] == pytest.approx(rho, abs=1e-5)
        assert row.random_class == int(arrays["random_class"][i])

    before = (tmp_path / "r.sanity.csv").read_text()
    (tmp_path / "r.sanity.csv").write_text(before.rsplit("\n", 2)[0] + "\n")  # lose a row
    proc = _evaluate([*args, "--resume"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.sanity.csv").read_text() == before

    other = [a if a != "stages" else "blocks" for a in args]
    proc = _evaluate([*other, "--resume"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "granularity (stages then, blocks now)" in proc.stderr
    assert (tmp_path / "r.sanity.csv").read_text() == before


def test_the_notebook_gives_one_images_cascade_as_arrays(baseline, lite_engine):
    """``cam.cascade``: the trained map is the exact CAM written out (Σ_k w_k^c A_k of the
    predicted class), and there is one raw map per stage-completing step, fc to stem."""
    from cam import cascade
    from cam.engine.inputs import image_from_path

    from .conftest import SAMPLE_IMAGES

    photo = SAMPLE_IMAGES / "chelsea.png"
    result = cascade(photo, family="lite", method="cam", models="baseline",
                     granularity="stages")
    maps = result.maps["baseline"]
    assert [s.label for s in maps.steps][:2] == ["fc", "head"] and maps.steps[-1].label == "stem"
    assert len(maps.randomised) == len(maps.steps) == len(result.scores["baseline"].ssim)
    image = image_from_path(photo)
    with torch.no_grad():
        logits, features = baseline.net.forward_with_features(
            lite_engine.preprocess(image, baseline.preprocessing)[None])
    predicted = int(logits.argmax())
    assert maps.target_class == predicted
    by_hand = torch.einsum("chw,c->hw", features[0], baseline.net.fc.weight[predicted]).numpy()
    np.testing.assert_allclose(maps.trained, by_hand, rtol=1e-4, atol=1e-4)
    assert result.grid.size[0] > result.grid.size[1]  # a row of panels for the one model
