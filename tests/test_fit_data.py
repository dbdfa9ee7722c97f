"""#35: a model fit to more than one folder of photos (``--extra-data``), labelled or not, with
no photo it is judged on fitted under another name (checked by content, not by name); the
training crops' own size (``--crop-size``); the student's moving average (``--ema``) judged
beside the student itself."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from safe_io.imagenet import class_index_of
from scaled_models import get_family, load_model
from scaled_models.train.data import FitPhotos, find_images, fit_photos

from .conftest import SHARED
from .test_train import _eight_shared_photos, _fails, _run, _top1_per_image

TRAIN_SAMPLE = SHARED / "imagenet_train_sample_1k"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fingerprint(root: Path, files: list[Path]) -> str:
    """The fingerprint's definition (README: every file's relative path and size), written out
    here rather than read from the code."""
    lines = "".join(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n"
                    for p in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def test_extra_photos_keep_their_class_in_wnid_folders_and_have_none_elsewhere(tmp_path):
    """An --extra-data folder is only fitted, so a mix of labelled and unlabelled photos is
    what it is (``../shared/imagenet_train_sample_1k`` has both); --data still refuses it."""
    for folder, colour in (("n01443537", 10), ("n01443537", 20), ("_unlabelled", 30)):
        (tmp_path / folder).mkdir(exist_ok=True)
        Image.new("RGB", (24, 24), (colour, 0, 0)).save(tmp_path / folder / f"{colour}.jpg")
    mixed = find_images(tmp_path, mixed=True)
    goldfish = class_index_of("n01443537")
    assert dict(zip((p.name for p in mixed.paths), mixed.labels)) == {
        "30.jpg": -1, "10.jpg": goldfish, "20.jpg": goldfish}
    with pytest.raises(SystemExit, match="sit in folders that are not one of the 1000"):
        find_images(tmp_path)


def _photo(path: Path, colour: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour, 0, 0)).save(path)
    return path


def test_photos_with_the_bytes_of_a_judged_or_fitted_photo_are_left_out_whatever_their_name(
        tmp_path):
    judged = _photo(tmp_path / "half" / "n01440764" / "a.jpg", 1)
    train = find_images(_photo(tmp_path / "half" / "n01443537" / "b.jpg", 2).parent.parent)
    train = train.subset([train.paths.index(tmp_path / "half" / "n01443537" / "b.jpg")])
    extra = tmp_path / "more"
    shutil.copy(judged, _photo(extra / "x" / "renamed.png", 0))  # a judged photo, renamed
    shutil.copy(train.paths[0], _photo(extra / "x" / "again.jpg", 0))  # fitted twice
    _photo(extra / "x" / "new.jpg", 3)
    photos = fit_photos(train, [find_images(extra, mixed=True)], (judged,), tmp_path / "half")
    assert isinstance(photos, FitPhotos) and len(photos) == 2
    assert [p.name for p in photos.paths] == ["b.jpg", "new.jpg"]
    assert [item.record() for item in photos.left_out] == [
        {"file": "more/x/again.jpg", "same_bytes_as": "half/n01443537/b.jpg",
         "why": "fitted already"},
        {"file": "more/x/renamed.png", "same_bytes_as": "half/n01440764/a.jpg",
         "why": "a photo it is judged on"}]
    only_twins = tmp_path / "twins"
    shutil.copy(judged, _photo(only_twins / "c.jpg", 0))
    with pytest.raises(SystemExit, match="every photo in it is also a photo the model is judged"):
        fit_photos(train, [find_images(only_twins, mixed=True)], (judged,), tmp_path / "half")


@pytest.fixture(scope="module")
def labelled_photos(tmp_path_factory) -> Path:
    return _eight_shared_photos(tmp_path_factory.mktemp("labelled"), in_wnid_folders=True)


@pytest.fixture(scope="module")
def extra_photos(tmp_path_factory, labelled_photos) -> Path:
    """Three photos of ../shared/imagenet_train_sample_1k (two labelled, one not), and every
    photo of ``labelled_photos`` again under another name in ``_unlabelled/``."""
    if not TRAIN_SAMPLE.is_dir():
        pytest.skip(f"{TRAIN_SAMPLE} not found")
    root = tmp_path_factory.mktemp("extra")
    wnid = sorted(p for p in TRAIN_SAMPLE.iterdir() if p.name.startswith("n"))[0]
    for path in sorted(wnid.iterdir())[:2]:
        (root / wnid.name).mkdir(exist_ok=True)
        shutil.copy(path, root / wnid.name / path.name)
    (root / "_unlabelled").mkdir()
    shutil.copy(sorted((TRAIN_SAMPLE / "_unlabelled").iterdir())[0], root / "_unlabelled")
    for i, path in enumerate(sorted(labelled_photos.glob("*/*.JPEG"))):
        shutil.copy(path, root / "_unlabelled" / f"copy{i}.jpg")
    return root


def test_a_run_fits_every_folder_given_and_never_a_judged_photo(labelled_photos, extra_photos,
                                                                tmp_path):
    """The held-out split stays a split of --data (4 of its 8 photos); the extra folder's
    copies of those 8 photos are left out (4 judged, 4 fitted already) and named; the 3 new
    photos are fitted: 7 photos, 3 steps of 2. The written model is the EMA and the student
    itself is judged beside it; the crops are --crop-size, the model runs at --image-size."""
    out = tmp_path / "ckpt"
    proc = _run(["-m", "scaled_models.train", "--model", "resolution", "--family", "lite",
                 "--data", str(labelled_photos), "--extra-data", str(extra_photos), "--out",
                 str(out), "--image-size", "96", "--crop-size", "64", "--ema", "0.5",
                 "--frozen-blocks", "3", "--crop-min-area", "0.5", "--autoaugment",
                 "--epochs", "1", "--batch-size", "2", "--workers", "0"])
    assert (f"7 photos: 4 from {labelled_photos} and 3 from {extra_photos} (8 left out"
            in proc.stdout)
    meta = json.loads((out / "lite" / "resolution.json").read_text())
    data = meta["data"]
    held = data["holdout"]["held_out_files"]
    assert len(held) == 4 and data["images"] == 4 and data["fit_images"] == 7
    assert meta["steps"] == 3 and meta["images_seen"] == 6

    kept = [p for p in extra_photos.rglob("*.*") if not p.name.startswith("copy")]
    assert data["extra"] == [{"folder": extra_photos.name, "path": str(extra_photos),
                              "images": 3, "fingerprint": _fingerprint(extra_photos, kept),
                              "labelled": 2, "unlabelled": 1}]
    judged_bytes = {_sha256(labelled_photos / f) for f in held}
    fitted = [p for p in labelled_photos.glob("*/*.JPEG")
              if p.relative_to(labelled_photos).as_posix() not in held] + kept
    assert data["fingerprint"] == _fingerprint(labelled_photos, fitted[:4])
    assert not judged_bytes & {_sha256(p) for p in fitted}
    reasons = {item["file"]: item for item in data["left_out"]}
    assert len(reasons) == 8
    for item in reasons.values():
        twin = item["same_bytes_as"].split("/", 1)[1]
        assert _sha256(extra_photos / item["file"].split("/", 1)[1]) == \
            _sha256(labelled_photos / twin)
        assert item["why"] == ("a photo it is judged on" if twin in held else "fitted already")

    assert (meta["image_size"], meta["config"]["crop_size"]) == (96, 64)
    assert meta["config"]["crop_area"] == [0.5, 1.0]
    assert meta["config"]["autoaugment"] is True
    assert meta["config"]["ema_decay"] == 0.5 and meta["ema"]
    judged = meta["eval"]
    paths = [labelled_photos / f for f in held]
    labels = [class_index_of(p.parent.name) for p in paths]
    written = load_model(get_family("lite"), "resolution", out)
    assert written.preprocessing.resolution == 96
    assert ("about the same random crops (50–100 % of each photo) under AutoAugment's "
            "ImageNet policy, shown to it at 64 px in "
            "training (to Lite0 at 149 px)" in written.provenance.recipe)
    assert written.provenance.recipe.startswith(
        "adapted to 96 px from Lite0: every weight after the stem and the first 3 blocks "
        "fine-tuned so that")
    assert written.provenance.recipe.endswith(
        "; the weights are the moving average of the fine-tuned ones (decay 0.5)")
    assert (f"on {labelled_photos.name} (4 images; 4 more held out to judge it) and "
            f"{extra_photos.name} (3 images)") in written.provenance.recipe
    assert judged["trained"]["top1_per_image"] == _top1_per_image(
        written.net, written.preprocessing, paths, labels)
    student = get_family("lite").architecture(1.0, 1.0).build()
    student.load_state_dict(torch.load(out / "lite" / "resolution.state.pt",
                                       weights_only=True)["model"])
    assert judged["without_ema"]["top1_per_image"] == _top1_per_image(
        student, written.preprocessing, paths, labels)
    assert not torch.equal(student.fc.weight, written.net.fc.weight)  # the average is written

    # Lite0's stem (conv + BatchNorm) and its first three blocks (stage 1's one, stage 2's
    # two) are frozen: Lite0's own tensors, weights and statistics, and none in the delta;
    # every later block was trained
    frozen = ("features.0.", "features.1.", "features.2.0.0.", "features.2.1.0.",
              "features.2.1.1.")
    from safetensors.torch import load_file

    delta = load_file(str(out / "lite" / "resolution.safetensors"))
    lite0 = load_model(get_family("lite"), "baseline", tmp_path / "none").net.state_dict()
    assert not [k for k in delta if k.startswith(frozen)]
    assert all(torch.equal(written.net.state_dict()[k], lite0[k]) for k in lite0
               if k.startswith(frozen))
    assert "features.2.2.0.conv_pw.weight" in delta and meta["config"]["frozen_blocks"] == 3

    # --resume is the same run only with the same folders to fit on
    proc = _fails(["-m", "scaled_models.train", "--model", "resolution", "--family", "lite",
                   "--data", str(labelled_photos), "--out", str(out), "--image-size", "96",
                   "--crop-size", "64", "--ema", "0.5", "--epochs", "2", "--batch-size", "2",
                   "--workers", "0", "--resume"])
    assert "--resume:" in proc.stderr and "training photos (fingerprint)" in proc.stderr
    assert "AutoAugment (True then, False now)" in proc.stderr


def test_the_training_crops_have_crop_size_and_fixres_takes_none(labelled_photos, tmp_path):
    from scaled_models.distributed import Distributed
    from scaled_models.train.cli import config_from_args, parse_args
    from scaled_models.train.loop import train_step
    from scaled_models.train.run import build_run

    cpu = Distributed(0, 1, torch.device("cpu"))
    argv = ["--model", "resolution", "--family", "lite", "--data", str(labelled_photos),
            "--out", str(tmp_path / "ckpt"), "--image-size", "96", "--batch-size", "2",
            "--workers", "0"]
    run = build_run(config_from_args(parse_args([*argv, "--crop-size", "64"]), cpu), cpu)
    crops, labels = next(iter(run.loader))
    assert crops.shape[1:] == (3, 64, 64) and run.preprocessing.resolution == 96

    # the teacher (Lite0, 224 px) sees each crop at the same fraction of its own resolution as
    # the student of its 96 px: 224 * 64 / 96 = 149.3 -> 149 px, never the student's 64 px
    seen = []
    teacher_net = run.teacher.net
    run.teacher.net = lambda x: seen.append(tuple(x.shape[-2:])) or teacher_net(x)
    train_step(run, crops, labels)
    assert seen == [(149, 149)]
    with pytest.raises(SystemExit, match="--crop-size: fixres adapts the model to its"):
        config_from_args(parse_args([*argv, "--recipe", "fixres", "--crop-size", "64"]), cpu)
    with pytest.raises(SystemExit, match="--crop-min-area: fixres adapts the model to its"):
        config_from_args(parse_args([*argv, "--recipe", "fixres", "--crop-min-area", "0.5"]),
                         cpu)
    with pytest.raises(SystemExit, match="the network has 16 blocks between its stem and"):
        build_run(config_from_args(parse_args([*argv, "--frozen-blocks", "17"]), cpu), cpu)


def _covered_area(crop: torch.Tensor) -> float:
    """The share of a coordinate-coded photo (red = column, green = row, each 0..255 across
    the photo) that a crop shows, read from the crop's own pixels."""
    red, green = crop[0] * 255, crop[1] * 255
    return float((red.max() - red.min()) / 255 * (green.max() - green.min()) / 255)


def _crop_argv(tmp_path: Path) -> list[str]:
    """A run of 64 px crops of the photos in ``tmp_path/photos``, judged on nothing."""
    return ["--model", "resolution", "--family", "lite", "--data", str(tmp_path / "photos"),
            "--holdout", "0", "--out", str(tmp_path / "ckpt"), "--image-size", "64",
            "--workers", "0"]


def _training_crops(tmp_path: Path, photo: Image.Image, options: list[str], count: int
                    ) -> list[torch.Tensor]:
    """``count`` crops of ``photo`` (in [0, 1]) made by the crop of the run that the command
    line builds with ``options`` (seed 0), the photo being its training folder's two photos."""
    from scaled_models.distributed import Distributed
    from scaled_models.train.cli import config_from_args, parse_args
    from scaled_models.train.run import build_run

    wnid = tmp_path / "photos" / "n01440764"
    if not wnid.is_dir():
        wnid.mkdir(parents=True)
        for i in range(2):
            photo.save(wnid / f"photo_{i}.png")
    cpu = Distributed(0, 1, torch.device("cpu"))
    torch.manual_seed(0)
    run = build_run(config_from_args(parse_args(_crop_argv(tmp_path) + options), cpu), cpu)
    return [run.loader.dataset.crop(photo) for _ in range(count)]


def test_crop_min_area_bounds_the_share_of_the_photo_a_training_crop_shows(tmp_path):
    """--crop-min-area 0.6: no crop of 200 shows less than 60 % of the photo (measured from the
    crops' pixels, up to a pixel of the 64 px crop at each edge); the match recipe's own crops
    (25-100 %) do."""
    x, y = torch.meshgrid(torch.arange(240), torch.arange(200), indexing="xy")
    coded = torch.stack([x * 255 / 239, y * 255 / 199, torch.zeros_like(x, dtype=torch.float)])
    photo = Image.fromarray(coded.round().byte().permute(1, 2, 0).numpy())
    areas = {bool(extra): [_covered_area(c) for c in _training_crops(tmp_path, photo, extra, 200)]
             for extra in ([], ["--crop-min-area", "0.6"])}
    edge = 2 / 64  # a pixel at each side, in width and height
    assert min(areas[True]) >= 0.6 - 2 * edge, min(areas[True])
    assert max(areas[True]) > 0.9
    assert min(areas[False]) < 0.35 and sum(a < 0.6 for a in areas[False]) > 40


def test_autoaugment_alters_the_training_crops_only_when_asked(tmp_path):
    """A uniform grey photo: every random-resized, flipped crop of it is the same grey (bicubic
    weights sum to one), so without --autoaugment all 100 crops are exactly grey 128; with it,
    the ImageNet policy's rotations (black corners), solarizations and inversions (127) alter a
    good share of them. FixRes, which adapts to the test-time crop, refuses the option."""
    from scaled_models.distributed import Distributed
    from scaled_models.train.cli import config_from_args, parse_args

    grey = Image.new("RGB", (240, 200), (128, 128, 128))
    altered = {bool(extra): sum(not bool(((c * 255).round() == 128).all())
                                for c in _training_crops(tmp_path, grey, extra, 100))
               for extra in ([], ["--autoaugment"])}
    assert altered[False] == 0
    assert altered[True] >= 10, altered
    cpu = Distributed(0, 1, torch.device("cpu"))
    with pytest.raises(SystemExit, match="--autoaugment: fixres adapts the model to its"):
        config_from_args(parse_args([*_crop_argv(tmp_path), "--recipe", "fixres",
                                     "--autoaugment"]), cpu)


def _checkpoint(path: Path, trained: list[bool], start: list[bool], baseline: list[bool],
                fingerprint: str = "f" * 64, without_ema: list[bool] | None = None) -> Path:
    """A checkpoint's JSON as the trainer writes it (its eval record by the trainer's own
    ``comparison``), with made-up outcomes."""
    from scaled_models.train.evaluation import Outcomes, comparison

    def outcomes(top1: list[bool]) -> Outcomes:
        return Outcomes(tuple(top1), tuple(True for _ in top1), tuple(0.5 for _ in top1))

    record = comparison(outcomes(trained), outcomes(start), outcomes(baseline),
                        {"kind": "held-out", "folder": "half", "fingerprint": fingerprint},
                        outcomes(without_ema) if without_ema else None)
    path.write_text(json.dumps({
        "eval": record, "images_seen": 7434, "wall_time_s": 12345.6,
        "data": {"holdout": {"held_out_fingerprint": fingerprint}},
        "map_agreement": {"baseline": {"spearman": {"mean": 0.8, "ci95": [0.78, 0.82]}}}}))
    return path


def test_the_variants_table_pairs_each_model_with_its_start_the_baseline_and_a_reference(
        tmp_path, capsys):
    """Discordant counts and McNemar p computed here (scipy's binomial test), for a variant
    20 / 5 against its start and 3 / 12 against the reference."""
    from scipy.stats import binomtest

    from scaled_models.train.variants import main

    n = 251
    start = [True] * 200 + [False] * 51
    ref = start[:]  # the shipped model: as good as the start, on other photos
    for i in range(10):
        ref[i], ref[200 + i] = False, True
    new = start[:]
    for i in range(200, 220):  # right only the new model, against the start: 20
        new[i] = True
    for i in range(20, 25):  # right only the start: 5
        new[i] = False
    assert sum(a and not b for a, b in zip(new, start)) == 20
    assert sum(b and not a for a, b in zip(new, start)) == 5
    baseline = [True] * 230 + [False] * 21
    shipped = _checkpoint(tmp_path / "shipped.json", ref, start, baseline)
    variant = _checkpoint(tmp_path / "new.json", new, start, baseline, without_ema=start)
    assert main([f"shipped={shipped}", f"new={variant}", "--reference", "shipped"]) == 0
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")
            for line in capsys.readouterr().out.splitlines()[2:]}
    assert list(rows) == ["start", "shipped", "new", "new, without EMA", "baseline"]
    cells = rows["new"]
    assert cells[1].startswith(f"{100 * sum(new) / n:.1f} [")
    vs_start, vs_ref = cells[4], cells[6]
    assert vs_start.startswith(f"+{100 * 15 / n:.1f} [") and "; 20 / 5, p = " in vs_start
    assert vs_start.endswith(f"p = {binomtest(20, 25).pvalue:.3f}")  # 0.004: three decimals
    new_only = sum(a and not b for a, b in zip(new, ref))
    ref_only = sum(b and not a for a, b in zip(new, ref))
    p_ref = binomtest(new_only, new_only + ref_only).pvalue
    assert vs_ref.endswith(f"; {new_only} / {ref_only}, p = "
                           + (f"{p_ref:.3f}" if p_ref < 0.01 else f"{p_ref:.2f}"))
    assert cells[7] == "0.80 [0.78, 0.82]" and cells[8] == "7,434, 12,346 s |"
    # the student without its average is the start here: no image differs
    assert rows["new, without EMA"][4] == "0.0 [0.0, 0.0]; 0 / 0, p = 1.00"

    other = _checkpoint(tmp_path / "other.json", new, start, baseline, fingerprint="e" * 64)
    with pytest.raises(SystemExit, match="other: judged on other images than shipped"):
        main([f"shipped={shipped}", f"other={other}"])
