"""Function-preserving expansion: the width x2 and depth x4 students start as the baseline."""
from __future__ import annotations

import pytest
import torch

from cam.data import open_val_dir
from cam.images import load_image
from scaled_models import load_model
from scaled_models.architectures import Architecture, build
from scaled_models.expand import deepen, widen


def _randomized(family: str) -> torch.nn.Module:
    """A random-init baseline with non-trivial BatchNorm statistics (eval mode)."""
    net = build(Architecture(family, 1.0, 1.0))
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.normal_(0, 0.1, generator=generator)
    return net.eval()


@pytest.fixture(scope="module")
def batch(val_sample):
    lite0 = load_model("lite", "baseline", "/nonexistent")
    samples = open_val_dir(val_sample).samples[:3]
    return torch.stack([lite0.preprocessing(load_image(s.path)) for s in samples])


@pytest.mark.parametrize("expand,target", [(widen, (2.0, 1.0)), (deepen, (1.0, 4.0))],
                         ids=["width", "depth"])
@pytest.mark.parametrize("source", ["lite0", "random-lite", "random-efficientnet"])
def test_expanded_student_reproduces_baseline_logits(expand, target, source, batch):
    if source == "lite0":
        family, base = "lite", load_model("lite", "baseline", "/nonexistent").net
    else:
        family = source.split("-")[1]
        base = _randomized(family)
    student = expand(base, family).eval()
    reference = build(Architecture(family, *target)).state_dict()
    assert {k: v.shape for k, v in student.state_dict().items()} == {
        k: v.shape for k, v in reference.items()}
    with torch.no_grad():
        difference = (student(batch) - base(batch)).abs().max().item()
    assert difference < 1e-4, difference
