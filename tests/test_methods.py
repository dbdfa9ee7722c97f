"""The CAM method registry: every registered method runs through grad-cam's public template,
returns one non-negative map per image at feature resolution, explains the requested class,
and leaves no hook behind."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cam.engine.methods import EXACT, METHODS, exact_cam, get_method, library_cam
from scaled_models import get_family


@pytest.fixture(scope="module")
def small_net():
    """A narrow random-init EfficientNet (head of 320 channels), so even Score-CAM and
    Ablation-CAM, which run one forward pass per batch of channels, finish in seconds."""
    torch.manual_seed(0)
    return get_family("efficientnet").architecture(0.25, 0.25).build().eval().requires_grad_(False)


def _hooks(net: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
               for m in net.modules())


@pytest.mark.parametrize("key", [k for k in METHODS if k != EXACT.key])
def test_every_library_method_gives_feature_resolution_maps(small_net, key):
    batch = torch.randn(2, 3, 64, 64)
    maps, probs, chosen = library_cam(small_net, batch, [None, 5], METHODS[key])
    features = small_net.features(batch)
    assert maps.shape == (2, *features.shape[2:]) == (2, 2, 2)
    assert np.isfinite(maps).all() and (maps >= 0).all()
    assert chosen == [int(probs[0].argmax()), 5]
    assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
    assert _hooks(small_net) == 0
    assert not any(p.requires_grad for p in small_net.parameters())


def test_exact_cam_registered_and_by_hand(small_net):
    batch = torch.randn(1, 3, 64, 64)
    maps, _, chosen = exact_cam(small_net, batch, [7])
    features = small_net.features(batch)[0]
    by_hand = torch.einsum("chw,c->hw", features, small_net.fc.weight[7])
    np.testing.assert_allclose(maps[0], by_hand.numpy(), rtol=1e-4, atol=1e-5)
    assert chosen == [7] and EXACT.library_class is None


def test_unknown_method_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose from cam, gradcam"):
        get_method("gradcam2")


def test_score_cam_in_channel_batches_equals_the_librarys(small_net, monkeypatch):
    """scalecam's Score-CAM masks and scores a few channels at a time (bounded memory); its
    maps are those of the library's own ScoreCAM (taken at the library's per-method hook,
    before min-max scaling, which would magnify float noise in these near-flat maps)."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    import cam.engine.methods

    monkeypatch.setattr(cam.engine.methods, "CHANNEL_BATCH_PIXELS", 7 * 64 * 64)  # 7 of 320: uneven
    assert cam.engine.methods.channel_batch(64) == 7
    torch.manual_seed(1)
    batch = torch.randn(2, 3, 64, 64)
    maps, _, chosen = library_cam(small_net, batch, [3, 9], METHODS["scorecam"])

    class Reference(pytorch_grad_cam.ScoreCAM):
        def get_cam_image(self, *args, **kwargs):
            self.raw = super().get_cam_image(*args, **kwargs)
            return self.raw

    with Reference(model=small_net, target_layers=[small_net.features]) as ref:
        ref(input_tensor=batch, targets=[ClassifierOutputTarget(c) for c in chosen])
    np.testing.assert_allclose(maps, np.maximum(ref.raw, 0), rtol=1e-4, atol=1e-6)


def test_score_cam_keeps_no_activations_of_its_masked_copies(small_net, monkeypatch):
    """The library's hooks append the target layer's activations on every forward pass until
    the call ends: 1280 × 14 × 14 floats for each masked copy, 1.3 GB for one 448 px image.
    scalecam's Score-CAM lets go of them once they are read, so the hooks' list never holds
    more than the real images' one batch."""
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

    longest = []
    save = ActivationsAndGradients.save_activation

    def counting(self, module, inputs, output):
        save(self, module, inputs, output)
        longest.append(len(self.activations))

    monkeypatch.setattr(ActivationsAndGradients, "save_activation", counting)
    library_cam(small_net, torch.randn(1, 3, 64, 64), [None], METHODS["scorecam"])
    assert longest == [1]  # the real image's forward; the 320 masked copies are not hooked
