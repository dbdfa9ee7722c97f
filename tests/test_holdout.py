"""Judging a trained model on images it was not fit to: the seeded held-out split, and the
comparison with its start and the baseline on the same images (checked against scipy)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import binomtest

from scaled_models.checkpoint_meta import CheckpointMeta, Judged
from scaled_models.train.data import find_images, holdout_split
from scaled_models.train.evaluation import Outcomes, comparison


def _photo(path, size):
    Image.new("RGB", (size, size), (size, 0, 0)).save(path)


def _folder(root, count):
    for i in range(count):
        folder = root / ("n01440764" if i % 2 else "n01443537")
        folder.mkdir(exist_ok=True)
        _photo(folder / f"{i:04d}.jpg", 8 + i)
    return root


def test_holdout_is_seeded_disjoint_and_adding_a_photo_moves_at_most_one_other(tmp_path):
    images = find_images(_folder(tmp_path, 21))
    split = holdout_split(images, 0.5, seed=0)
    train, held = set(split.train.paths), set(split.held_out.paths)
    assert len(held) == 11 and len(train) == 10  # floor(21 * 0.5 + 0.5)
    assert not train & held and train | held == set(images.paths)
    # labels travel with their files
    assert all(label == (0 if p.parent.name == "n01440764" else 1) for p, label in
               zip(split.held_out.paths, split.held_out.labels))
    again = holdout_split(find_images(tmp_path), 0.5, seed=0)
    assert again.held_out.paths == split.held_out.paths
    assert holdout_split(images, 0.5, seed=1).held_out.paths != split.held_out.paths
    record = split.record()
    assert record["held_out_images"] == 11 and len(record["held_out_files"]) == 11
    assert record["train_fingerprint"] != record["held_out_fingerprint"]

    _photo(tmp_path / "n01440764" / "new.jpg", 5)
    grown = holdout_split(find_images(tmp_path), 0.5, seed=0)
    moved = (held ^ set(grown.held_out.paths)) - {tmp_path / "n01440764" / "new.jpg"}
    assert len(moved) <= 1


def test_unreadable_files_are_named_and_left_out_of_the_count_and_fingerprint(tmp_path,
                                                                              capsys):
    _folder(tmp_path, 4)
    before = find_images(tmp_path)
    (tmp_path / "n01440764" / "dangling.JPEG").symlink_to(tmp_path / "gone.JPEG")
    (tmp_path / "n01440764" / "loop.JPEG").symlink_to(tmp_path / "n01440764" / "loop.JPEG")
    (tmp_path / "n01440764" / "page.jpg").write_text("<html>not a photo</html>")
    after = find_images(tmp_path)
    assert len(after) == 4 and after.fingerprint == before.fingerprint
    said = capsys.readouterr().err
    assert all(name in said for name in ("dangling.JPEG", "loop.JPEG", "page.jpg"))


def test_a_holdout_that_leaves_a_side_empty_is_refused(tmp_path):
    images = find_images(_folder(tmp_path, 2))
    with pytest.raises(SystemExit, match="leaves one side empty"):
        holdout_split(images, 0.1, seed=0)
    with pytest.raises(SystemExit, match="between 0 and 1"):
        holdout_split(images, 1.0, seed=0)


def _outcomes(top1: list[bool]) -> Outcomes:
    return Outcomes(tuple(top1), tuple(top1), tuple(0.5 for _ in top1))


def test_a_model_worse_than_its_start_is_called_worse_with_scipys_mcnemar():
    # the measurement: 20 images only the adapted model gets right, 43 only its start,
    # 160 both, 28 neither (251 held-out photos)
    trained = [True] * 20 + [False] * 43 + [True] * 160 + [False] * 28
    start = [False] * 20 + [True] * 43 + [True] * 160 + [False] * 28
    baseline = [True] * 230 + [False] * 21
    record = comparison(_outcomes(trained), _outcomes(start), _outcomes(baseline),
                        {"kind": "held-out", "folder": "photos"})
    diff = record["trained_minus_start"]
    assert (diff["trained_only"], diff["start_only"]) == (20, 43)
    assert diff["mcnemar_p"] == pytest.approx(binomtest(20, 63, 0.5).pvalue)
    assert diff["top1_points"] == pytest.approx(100 * (20 - 43) / 251, abs=0.005)
    assert record["verdict"] == "worse than its start"
    assert record["trained"]["top1"] == pytest.approx(100 * 180 / 251, abs=0.005)
    low, high = record["trained"]["top1_ci95"]
    # a binomial proportion's normal interval, as an independent sanity bound (±~2.8 points)
    p, n = 180 / 251, 251
    half = 1.96 * np.sqrt(p * (1 - p) / n) * 100
    assert abs(low - (100 * p - half)) < 1.0 and abs(high - (100 * p + half)) < 1.0
    assert record["baseline"]["top1_per_image"] == "1" * 230 + "0" * 21

    judged = Judged.from_metadata(CheckpointMeta.from_record({"eval": record}, "test"))
    assert judged.sentence().startswith("top-1 71.7 [")
    assert "on 251 held-out photos of photos; start 80.9; baseline 91.6" in judged.sentence()
    assert judged.sentence().endswith("−9.2 points, McNemar p = 0.0052: worse than its start")


def test_a_difference_within_chance_is_not_called_better():
    trained = [True] * 5 + [False] * 3 + [True] * 40
    start = [False] * 5 + [True] * 3 + [True] * 40
    record = comparison(_outcomes(trained), _outcomes(start), None,
                        {"kind": "folder", "folder": "val"})
    assert record["trained_minus_start"]["mcnemar_p"] == pytest.approx(
        binomtest(5, 8, 0.5).pvalue)
    assert record["verdict"].startswith("not better than its start")
    assert "baseline" not in record
    meta = CheckpointMeta.from_record({"eval": record}, "test")
    assert "baseline not measured" in Judged.from_metadata(meta).sentence()
