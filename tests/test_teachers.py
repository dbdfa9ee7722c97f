"""Who teaches a distilled student: by default the strongest available model outside the
grid; a compared model only when named, with the caveat recorded."""
from __future__ import annotations

import pytest

import scaled_models.train.teachers as teachers
from scaled_models import get_family
from scaled_models.family import WeightsUnavailable


def test_default_teacher_of_the_lite_grid_is_lite1():
    """Lite0 and Lite2 fill the lite grid; the strongest installed model outside it is Lite1
    (76.7 % published top-1)."""
    teacher = teachers.resolve_teacher("auto", get_family("lite"))
    assert teacher.name == "Lite1" and not teacher.compared and not teacher.caveat
    assert teacher.top1 == 76.7 and teacher.preprocessing.resolution == 240


def test_default_teacher_of_the_efficientnet_grid_is_outside_it(monkeypatch, tmp_path):
    """With no torchvision weights cached, the efficientnet grid is empty of weights: the
    strongest installed model not in it is Lite2 (77.6 %)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    teacher = teachers.resolve_teacher("auto", get_family("efficientnet"))
    assert teacher.name == "Lite2" and not teacher.compared


@pytest.mark.parametrize("name", ["compound", "lite:compound", "lite2"])
def test_a_compared_model_teaches_only_when_named_and_says_so(name):
    teacher = teachers.resolve_teacher(name, get_family("lite"))
    assert teacher.compared and "one of the five compared models" in teacher.caveat
    assert teacher.record()["caveat"] == teacher.caveat


def test_no_outside_teacher_is_refused_with_how_to_proceed(monkeypatch):
    """If only compared models are available, auto refuses instead of silently using one."""
    def lite1_missing(weights):
        if weights.name == "Lite1":
            return False
        try:
            return weights.locate(download=False).is_file()
        except WeightsUnavailable:
            return False

    monkeypatch.setattr(teachers, "_present", lite1_missing)
    with pytest.raises(SystemExit, match="--teacher compound"):
        teachers.resolve_teacher("auto", get_family("lite"))


def test_unknown_teacher_lists_the_forms():
    with pytest.raises(SystemExit, match="a role .*a published model"):
        teachers.resolve_teacher("resnet9000", get_family("lite"))
