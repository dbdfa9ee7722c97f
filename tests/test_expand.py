"""Function-preserving expansion: the width ×2 and depth ×4 students start as the baseline, and
the widened one can become more than the baseline (its channel copies part once trained)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import scaled_models.expand as expand_module
from safe_io.imagenet_val import open_val_dir
from safe_io.images import load_image
from scaled_models import get_family, load_model
from scaled_models.expand import deepen, widen

pytestmark = pytest.mark.slow


def _randomized(family: str) -> torch.nn.Module:
    """A random-init baseline with non-trivial BatchNorm statistics (eval mode)."""
    net = get_family(family).architecture(1.0, 1.0).build()
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.normal_(0, 0.1, generator=generator)
    return net.eval()


@pytest.fixture(scope="module")
def lite0():
    return load_model(get_family("lite"), "baseline", "/nonexistent").net


@pytest.fixture(scope="module")
def val_batch(val_sample, lite0):
    """Six real validation images (Lite0's preprocessing) with their labels."""
    model = load_model(get_family("lite"), "baseline", "/nonexistent")
    samples = open_val_dir(val_sample).samples[:6]
    images = torch.stack([model.preprocessing(load_image(s.path)) for s in samples])
    return images, torch.tensor([s.class_index for s in samples])


@pytest.mark.parametrize("expand,target", [(widen, (2.0, 1.0)), (deepen, (1.0, 4.0))],
                         ids=["width", "depth"])
@pytest.mark.parametrize("source", ["lite0", "random-lite", "random-efficientnet"])
def test_expanded_student_reproduces_baseline_logits(expand, target, source, val_batch, lite0):
    if source == "lite0":
        family, base = get_family("lite"), lite0
    else:
        family = get_family(source.split("-")[1])
        base = _randomized(family.name)
    student = expand(base, family).eval()
    reference = family.architecture(*target).build().state_dict()
    assert {k: v.shape for k, v in student.state_dict().items()} == {
        k: v.shape for k, v in reference.items()}
    with torch.no_grad():
        difference = (student(val_batch[0][:3]) - base(val_batch[0][:3])).abs().max().item()
    assert difference < 1e-4, difference


def _widened_convolutions(base: torch.nn.Module, wide: torch.nn.Module) -> list[str]:
    """The convolutions whose output channels doubled in the widening."""
    base_shapes = {k: v.shape for k, v in base.state_dict().items()}
    return [k for k, v in wide.state_dict().items()
            if v.dim() == 4 and v.shape[0] == 2 * base_shapes[k][0]]


def _twins(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows c and c + C: an output channel and its copy made by the widening."""
    rows = weight.detach().flatten(1).clone()
    half = len(rows) // 2
    return rows[:half], rows[half:]


def _train_a_few_steps(student: torch.nn.Module, batch, steps: int = 3) -> None:
    images, labels = batch
    student.train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(student(images), labels).backward()
        optimizer.step()


@pytest.fixture(scope="module")
def widened_twins(lite0, val_batch):
    """For each split scheme, per widened convolution: (twins identical at the start, twins
    trained — either one moved — and still identical, twins never moved) after three SGD steps
    on real images."""
    counts = {}
    for scheme, split_range in (("unequal", expand_module.SPLIT_RANGE), ("halves", (0.5, 0.5))):
        original = expand_module.SPLIT_RANGE
        expand_module.SPLIT_RANGE = split_range
        try:
            student = widen(lite0, get_family("lite"))
        finally:
            expand_module.SPLIT_RANGE = original
        names = _widened_convolutions(lite0, student)
        start = {k: _twins(student.state_dict()[k]) for k in names}
        torch.manual_seed(0)
        _train_a_few_steps(student, val_batch)
        counts[scheme] = {}
        for name in names:
            (a0, b0), (a1, b1) = start[name], _twins(student.state_dict()[name])
            identical = (a1 == b1).all(1)
            moved = ~((a0 == a1).all(1) & (b0 == b1).all(1))
            counts[scheme][name] = (int((a0 == b0).all(1).sum()), int((identical & moved).sum()),
                                    int(moved.sum()), len(moved))
    return counts


def test_widened_channels_start_as_copies(widened_twins):
    counts = widened_twins["unequal"]
    assert len(counts) > 30  # every stage's expand, depthwise and projection convolutions
    for name, (identical_at_start, _, _, channels) in counts.items():
        assert identical_at_start == channels, name


def test_unequal_splits_break_symmetry_after_a_few_steps(widened_twins):
    """Every output channel that training moved has parted from its twin. (The twins that stay
    identical are the ones no step moved: channels ReLU6 zeroes on every one of these images
    in Lite0 itself, so they get no gradient in any network.)"""
    for name, (_, still_copied, moved, channels) in widened_twins["unequal"].items():
        assert moved > channels // 2, name  # training did reach most channels
        assert still_copied == 0, (name, still_copied)


def test_equal_halves_never_break_symmetry(widened_twins):
    """Net2Net's ½/½ split (this project's widening before): twins get identical gradients, so
    every twin pair that moved moved together and is still a copy — the check above fails."""
    for name, (_, still_copied, moved, _) in widened_twins["halves"].items():
        assert moved > 0 and still_copied == moved, (name, still_copied, moved)


def test_split_fractions_are_seeded_and_unequal(lite0):
    a = widen(lite0, get_family("lite"), seed=1).state_dict()
    b = widen(lite0, get_family("lite"), seed=1).state_dict()
    c = widen(lite0, get_family("lite"), seed=2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
