"""safe_io.imagenet_val: every ImageNet val layout yields the labels and boxes of labels.csv; bad
annotation files fail with file and line; missing/unannotated images are skipped with a reason."""
from __future__ import annotations

import csv
import io
import os
import shutil
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from cam.engine.inputs import image_from_sample
from safe_io.imagenet import WNIDS
from safe_io.imagenet_val import AnnotationError, Box, ValDataset, open_val_dir
from safe_io.images import ImageLoadError

SHARED = Path(os.environ.get("SCALECAM_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SAMPLE = SHARED / "imagenet_val_sample"
GT_NAME = "ILSVRC2012_validation_ground_truth.txt"
# ILSVRC2012_ID order is not sorted-wnid order: a fixed shuffle stands in for the devkit's.
DEVKIT_ORDER = list(np.random.default_rng(7).permutation(WNIDS))  # DEVKIT_ORDER[id - 1] = wnid


@pytest.fixture(scope="module")
def truth() -> dict[str, tuple[str, int, tuple[Box, ...]]]:
    if not (SAMPLE / "labels.csv").is_file():
        pytest.skip(f"shared ImageNet sample not found at {SAMPLE}")
    with (SAMPLE / "labels.csv").open(newline="", encoding="utf-8") as fh:
        return {row["file"].rsplit(".", 1)[0]: (
            row["wnid"], int(row["class_index"]),
            tuple(Box(*map(float, b.split())) for b in row["boxes"].split(";")))
            for row in csv.DictReader(fh)}


def _check(ds: ValDataset, truth, layout: str, boxes: bool = True) -> None:
    assert ds.layout == layout
    assert [s.image_id for s in ds] == sorted(truth)
    for sample in ds:
        wnid, index, gt_boxes = truth[sample.image_id]
        assert (sample.wnid, sample.class_index) == (wnid, index)
        assert sample.boxes == (gt_boxes if boxes else ())
        assert sample.path.is_file() and sample.path.stem == sample.image_id
    if boxes:
        assert sum(len(s.boxes) for s in ds) == 59
        assert sum(len(s.boxes) > 1 for s in ds) == 10


def _link_images(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for image in SAMPLE.glob("*.JPEG"):
        (folder / image.name).symlink_to(image)
    return folder


def _copy(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(SAMPLE / name, tmp_path / name)
    return tmp_path


# -- layouts -----------------------------------------------------------------------------------

def test_kaggle_layout_shared_sample(truth):
    ds = open_val_dir(SAMPLE)
    _check(ds, truth, "kaggle")
    assert ds.skipped == [] and ds.root == SAMPLE


def test_kaggle_layout_with_images_under_ilsvrc_tree(tmp_path, truth):
    _link_images(tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val")
    ds = open_val_dir(_copy(tmp_path, "LOC_val_solution.csv", "LOC_synset_mapping.txt"))
    _check(ds, truth, "kaggle")
    assert ds[0].path.parent == tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "val"


@pytest.mark.parametrize("xml_folder", ["bbox_xml", "val", "Annotations", "."])
def test_flat_xml_layout(tmp_path, truth, xml_folder):
    _link_images(tmp_path)
    shutil.copytree(SAMPLE / "bbox_xml", tmp_path / xml_folder, dirs_exist_ok=True)
    _check(open_val_dir(tmp_path), truth, "flat-xml")


@pytest.mark.parametrize("under_val", [True, False])
def test_folders_layout(tmp_path, truth, under_val):
    wnid_root = tmp_path / "val" if under_val else tmp_path
    for image_id, (wnid, _, _) in truth.items():
        (wnid_root / wnid).mkdir(parents=True, exist_ok=True)
        (wnid_root / wnid / f"{image_id}.JPEG").symlink_to(SAMPLE / f"{image_id}.JPEG")
    _check(open_val_dir(tmp_path), truth, "folders", boxes=False)
    if under_val:
        _check(open_val_dir(wnid_root), truth, "folders", boxes=False)
    shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")
    _check(open_val_dir(tmp_path), truth, "folders")


def _fake_devkit(devkit: Path, truth, lines: int = 50_000) -> Path:
    """ILSVRC2012_devkit_t12/data/{meta.mat, ground truth} shaped like the real ones: a
    ``synsets`` struct array (1000 leaves with num_children == 0, plus inner nodes) in the real
    field order, which torchvision's parser indexes by position."""
    data = devkit / "data"
    data.mkdir(parents=True)
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]
    synsets = np.zeros((1010,), dtype=[(f, object) for f in fields])
    for i in range(1010):
        leaf = i < 1000
        synsets[i] = (i + 1, DEVKIT_ORDER[i] if leaf else f"n9{i:07d}", f"words {i}", "gloss",
                      0 if leaf else 2, np.zeros((0,)) if leaf else np.array([1.0, 2.0]),
                      0 if leaf else 3, 1300 if leaf else 0)
    scipy.io.savemat(data / "meta.mat", {"synsets": synsets})
    ids = {int(image_id[-8:]): DEVKIT_ORDER.index(wnid) + 1
           for image_id, (wnid, _, _) in truth.items()}
    (data / GT_NAME).write_text("".join(f"{ids.get(n, 1 + n % 1000)}\n"
                                        for n in range(1, lines + 1)))
    return data / GT_NAME


def test_fake_meta_mat_matches_torchvision_parser(tmp_path, truth, monkeypatch):
    torch = pytest.importorskip("torch")
    imagenet = pytest.importorskip("torchvision.datasets.imagenet")
    _fake_devkit(tmp_path / "ILSVRC2012_devkit_t12", truth, lines=40_000)
    with tarfile.open(tmp_path / "devkit.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "ILSVRC2012_devkit_t12", "ILSVRC2012_devkit_t12")
    monkeypatch.setattr(imagenet, "_verify_archive", lambda *args: None)  # md5 is the real one
    imagenet.parse_devkit_archive(str(tmp_path), "devkit.tar.gz")
    wnid_to_classes, val_wnids = torch.load(tmp_path / "meta.bin")
    assert set(wnid_to_classes) == set(WNIDS)
    _link_images(tmp_path)
    ds = open_val_dir(tmp_path)
    assert ds.layout == "flat-devkit"
    assert all(val_wnids[int(s.image_id[-8:]) - 1] == s.wnid for s in ds) and len(ds) == 32


def test_flat_devkit_layout(tmp_path, truth):
    _fake_devkit(tmp_path / "ILSVRC2012_devkit_t12", truth)
    _link_images(tmp_path)
    ds = open_val_dir(tmp_path)
    _check(ds, truth, "flat-devkit", boxes=False)
    assert len(ds.skipped) == 50_000 - 32
    path, reason = ds.skipped[0]
    assert path == tmp_path / "ILSVRC2012_val_00000005.JPEG"
    assert reason == (f"annotated ({tmp_path}/ILSVRC2012_devkit_t12/data/{GT_NAME}, line 5) "
                      f"but the image file is missing")
    shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")  # boxes + cross-check
    _check(open_val_dir(tmp_path), truth, "flat-devkit")


def test_devkit_ground_truth_beside_images_with_meta_in_data_folder(tmp_path, truth):
    gt = _fake_devkit(tmp_path, truth, lines=40_000)
    gt.rename(tmp_path / GT_NAME)
    _link_images(tmp_path)
    _check(open_val_dir(tmp_path), truth, "flat-devkit", boxes=False)


def test_devkit_labels_disagreeing_with_xml(tmp_path, truth):
    gt = _fake_devkit(tmp_path / "devkit", truth, lines=40_000)
    lines = gt.read_text().splitlines()
    lines[1] = str(DEVKIT_ORDER.index("n01440764") + 1)  # val_00000002 is alp, say tench
    gt.write_text("\n".join(lines) + "\n")
    _link_images(tmp_path)
    shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    assert str(info.value) == (
        f"{gt}, line 2: ILSVRC2012_ID {lines[1]} is n01440764 (per {gt.parent / 'meta.mat'}), "
        f"but {tmp_path / 'bbox_xml' / 'ILSVRC2012_val_00000002.xml'} says n09193705")


def test_ground_truth_without_meta_mat(tmp_path, truth):
    gt = _fake_devkit(tmp_path / "devkit", truth, lines=40_000)
    (gt.parent / "meta.mat").unlink()
    _link_images(tmp_path)
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    assert str(info.value).startswith(f"{gt}: found the devkit ground truth but not the "
                                      f"devkit's meta.mat")
    assert "ILSVRC2012_IDs, which are not class indices" in str(info.value)
    shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")  # XML alone is enough
    _check(open_val_dir(tmp_path), truth, "flat-xml")


# -- skipped, lookups, loading -----------------------------------------------------------------

def test_missing_and_unannotated_images_are_skipped(tmp_path, truth):
    _link_images(tmp_path)
    _copy(tmp_path, "LOC_val_solution.csv")
    (tmp_path / "ILSVRC2012_val_00000004.JPEG").unlink()
    (tmp_path / "holiday photo.jpg").symlink_to(SAMPLE / "ILSVRC2012_val_00000001.JPEG")
    ds = open_val_dir(tmp_path)
    assert len(ds) == 31 and ds.find("ILSVRC2012_val_00000004") is None
    assert ds.skipped == [
        (tmp_path / "ILSVRC2012_val_00000004.JPEG",
         f"annotated ({tmp_path / 'LOC_val_solution.csv'}, line 5) but the image file is missing"),
        (tmp_path / "holiday photo.jpg", "no annotation for holiday photo")]


def test_lookups(truth):
    ds = open_val_dir(SAMPLE)
    assert ds[0].image_id == "ILSVRC2012_val_00000001" and len(ds) == 32
    assert ds.find("ILSVRC2012_val_00000008").class_index == 415  # bakery
    assert [s.image_id for s in ds.by_class(259)] == ["ILSVRC2012_val_00000057"]  # Pomeranian
    assert ds.by_class(0) == [] and ds.find("nope") is None


def test_load_sample_and_corrupt_image(tmp_path, truth):
    for sample in open_val_dir(SAMPLE):  # every real val JPEG decodes at its annotated size
        xml = ET.parse(SAMPLE / "bbox_xml" / f"{sample.image_id}.xml").find("size")
        image = image_from_sample(sample).image
        assert image.mode == "RGB"
        assert image.size == (int(xml.findtext("width")), int(xml.findtext("height")))
    _copy(tmp_path, "LOC_val_solution.csv")
    (tmp_path / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"\xff\xd8\xff\xe0 broken")
    bad = open_val_dir(tmp_path)  # scanning never opens images
    assert len(bad) == 1
    with pytest.raises(ImageLoadError,
                       match="ILSVRC2012_val_00000001.JPEG: the JPEG data is truncated"):
        image_from_sample(bad[0])


def test_fifty_thousand_rows_scan_without_per_row_file_access(tmp_path, truth, monkeypatch):
    """A full ILSVRC2012 val CSV is read once and the folder listed once: the work does not grow
    with the rows (the seconds are in `python -m cam bench`)."""
    rows = [f"ILSVRC2012_val_{n:08d},{WNIDS[n % 1000]} 1 2 30 40 {WNIDS[n % 1000]} 5 6 70 80 "
            for n in range(1, 50_001)]
    (tmp_path / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows))
    (tmp_path / "ILSVRC2012_val_00000007.JPEG").symlink_to(SAMPLE / "ILSVRC2012_val_00000007.JPEG")
    calls = {"open": 0, "stat": 0, "scandir": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(io, "open", counting("open", io.open))
    monkeypatch.setattr(os, "stat", counting("stat", os.stat))
    monkeypatch.setattr(os, "scandir", counting("scandir", os.scandir))
    ds = open_val_dir(tmp_path)
    monkeypatch.undo()
    assert len(ds) == 1 and len(ds.skipped) == 49_999
    assert 1 <= calls["open"] <= 2 and 1 <= calls["scandir"] <= 5 and calls["stat"] <= 20, calls


# -- malformed annotation files name the file and the line ----------------------------------------

def _kaggle_with(tmp_path: Path, lineno: int, line: str) -> Path:
    csv_path = tmp_path / "LOC_val_solution.csv"
    lines = (SAMPLE / "LOC_val_solution.csv").read_text().splitlines()
    lines[lineno - 1] = line
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


@pytest.mark.parametrize("lineno, line, problem", [
    (1, "id,labels", "expected the header 'ImageId,PredictionString', got 'id,labels'"),
    (3, "ILSVRC2012_val_00000002,n09193705 45 49 499",
     "expected 'ImageId,wnid xmin ymin xmax ymax ...' (groups of 5 fields), "
     "got 'ILSVRC2012_val_00000002,n09193705 45 49 499'"),
    (3, "ILSVRC2012_val_00000002 n09193705 45 49 499 162",
     "expected 'ImageId,wnid xmin ymin xmax ymax ...' (groups of 5 fields), "
     "got 'ILSVRC2012_val_00000002 n09193705 45 49 499 162'"),
    (4, "ILSVRC2012_val_00000003,n99999999 38 19 385 373 ",
     "'n99999999' is not one of the 1000 ImageNet-1k wnids"),
    (5, "ILSVRC2012_val_00000004,n04263257 94 abc 441 284 ",
     "box coordinates must be 4 numbers, got ['94', 'abc', '441', '284']"),
    (5, "ILSVRC2012_val_00000004,n04263257 441 15 94 284 ",
     "box ['441', '15', '94', '284'] is not x1 <= x2, y1 <= y2 with non-negative coordinates"),
    (6, "ILSVRC2012_val_00000001,n01751748 111 108 441 193 ",
     "ILSVRC2012_val_00000001 is already annotated at {csv}, line 2"),
])
def test_malformed_kaggle_csv(tmp_path, truth, lineno, line, problem):
    csv_path = _kaggle_with(tmp_path, lineno, line)
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    assert str(info.value) == f"{csv_path}, line {lineno}: {problem.format(csv=csv_path)}"


def test_synset_mapping_must_be_sorted_imagenet_order(tmp_path, truth):
    _copy(tmp_path, "LOC_val_solution.csv")
    mapping = (SAMPLE / "LOC_synset_mapping.txt").read_text().splitlines()
    mapping[2], mapping[3] = mapping[3], mapping[2]
    (tmp_path / "LOC_synset_mapping.txt").write_text("\n".join(mapping) + "\n")
    with pytest.raises(AnnotationError, match=r"LOC_synset_mapping.txt, line 3: expected "
                                              r"n01484850 \(the ImageNet-1k classes"):
        open_val_dir(tmp_path)
    (tmp_path / "LOC_synset_mapping.txt").write_text("\n".join(sorted(mapping)[:999]) + "\n")
    with pytest.raises(AnnotationError, match="line 1000: expected 1000 classes, the file ends"):
        open_val_dir(tmp_path)


def test_non_utf8_csv(tmp_path, truth):
    (tmp_path / "LOC_val_solution.csv").write_bytes(b"ImageId,PredictionString\nx,\xff\xfe\n")
    with pytest.raises(AnnotationError, match=r"LOC_val_solution.csv, line 2: not UTF-8 text"):
        open_val_dir(tmp_path)


@pytest.mark.parametrize("old, new, line, problem", [
    ("<xmin>45</xmin>", "<xmin>4five</xmin>", 19,
     "box coordinates must be 4 numbers, got ['4five', '49', '499', '162']"),
    ("<name>n09193705</name>\n\t\t<pose>", "<name>n0919</name>\n\t\t<pose>", 14,
     "'n0919' is not one of the 1000 ImageNet-1k wnids"),
    ("</size>", "</sise>", 11, "not valid XML (mismatched tag: line 11, column 3)"),
])
def test_malformed_xml(tmp_path, truth, old, new, line, problem):
    _link_images(tmp_path)
    xml_dir = shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")
    xml = xml_dir / "ILSVRC2012_val_00000002.xml"
    text = xml.read_text()
    assert old in text
    xml.write_text(text.replace(old, new, 1))
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    assert str(info.value) == f"{xml}, line {line}: {problem}"


@pytest.mark.parametrize("value", ["abc", "1001", "0", "12 13"])
def test_malformed_ground_truth(tmp_path, truth, value):
    gt = _fake_devkit(tmp_path / "devkit", truth, lines=100)
    lines = gt.read_text().splitlines()
    lines[4] = value
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    assert str(info.value) == (f"{gt}, line 5: expected one ILSVRC2012_ID between 1 and 1000, "
                               f"got {value!r}")


def test_unknown_class_folder_and_non_imagenet_folder(tmp_path):
    (tmp_path / "n99999999").mkdir()
    with pytest.raises(AnnotationError, match=r"n99999999: 'n99999999' is not one of the 1000"):
        open_val_dir(tmp_path)
    (tmp_path / "n99999999").rmdir()
    with pytest.raises(AnnotationError, match="no ImageNet validation annotations found"):
        open_val_dir(tmp_path)
    with pytest.raises(AnnotationError, match="not a folder"):
        open_val_dir(tmp_path / "missing")


def repeated_names_folder(root: Path) -> Path:
    """An ImageFolder with numbered files: 0001.JPEG in two classes, 0003.png beside 0003.JPEG,
    and one file whose name no other file has."""
    photos = sorted(SAMPLE.glob("ILSVRC2012_val_*.JPEG"))[:5]
    if len(photos) < 5:
        pytest.skip(f"shared ImageNet sample not found at {SAMPLE}")
    layout = [("n02105855", "0001.JPEG"), ("n01751748", "0001.JPEG"),
              ("n01751748", "0003.JPEG"), ("n01751748", "0003.png"), ("n01751748", "0007.JPEG")]
    for photo, (wnid, name) in zip(photos, layout):
        (root / "val" / wnid).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, root / "val" / wnid / name)
    return root


def test_repeated_file_names_keep_one_unique_id_each(tmp_path):
    ds = open_val_dir(repeated_names_folder(tmp_path))
    assert sorted(s.image_id for s in ds.samples) == [
        "0007", "n01751748/0001.JPEG", "n01751748/0003.JPEG", "n01751748/0003.png",
        "n02105855/0001.JPEG"]
    assert ds.find("n02105855/0001.JPEG").wnid == "n02105855"
    assert not ds.skipped


def test_a_second_file_with_an_annotated_name_is_named_not_dropped(tmp_path):
    root = _copy(tmp_path, "ILSVRC2012_val_00000001.JPEG")
    shutil.copy(root / "ILSVRC2012_val_00000001.JPEG", root / "ILSVRC2012_val_00000001.png")
    for name in ("LOC_val_solution.csv", "LOC_synset_mapping.txt"):
        shutil.copy(SAMPLE / name, root / name)
    ds = open_val_dir(root)
    assert [s.image_id for s in ds.samples] == ["ILSVRC2012_val_00000001"]
    (path, reason), *_ = [s for s in ds.skipped if s[0].suffix == ".png"]
    assert "same name ILSVRC2012_val_00000001" in reason


def test_every_malformed_box_file_is_reported_at_once(tmp_path, truth):
    """Three broken files: a missing <bndbox> (named at its <object>, not at line 1), a box
    entirely outside its image, and invalid XML; one message lists all three."""
    _link_images(tmp_path)
    xml_dir = shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")

    def edit(number: int, old: str, new: str) -> Path:
        xml = xml_dir / f"ILSVRC2012_val_{number:08d}.xml"
        text = xml.read_text()
        start, end = (text.index(old), text.index(new) + len(new)) if old == "<bndbox>" \
            else (0, 0)
        xml.write_text(text[:start] + text[end:] if old == "<bndbox>"
                       else text.replace(old, new, 1))
        return xml

    no_box = edit(1, "<bndbox>", "</bndbox>")
    outside = edit(2, "<xmin>45</xmin>", "<xmin>4500</xmin>")
    outside.write_text(outside.read_text().replace("<xmax>499</xmax>", "<xmax>4999</xmax>", 1))
    broken = edit(3, "</size>", "</sise>")
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    message = str(info.value)
    assert message.startswith(f"3 box files in {xml_dir} are malformed:")
    assert f"{no_box}, line 14: the <object> of n01751748 has no <bndbox>" in message
    assert (f"{outside}, line 18: box ['4500', '49', '4999', '162'] reaches outside the 500×375 "
            "image its <size> declares") in message
    assert f"{broken}, line 11: not valid XML" in message


def _line_of_nth(text: str, tag: str, n: int) -> int:
    """The 1-based line of the n-th (0-based) occurrence of ``tag``, read off the file's lines."""
    lines = [number for number, line in enumerate(text.splitlines(), 1) if tag in line]
    return lines[n]


@pytest.mark.parametrize("n, edit, tag, problem", [
    (2, "no bndbox", "<name>", "the <object> of n04485082 has no <bndbox>"),
    (1, "empty ymin", "<bndbox>", "box coordinates must be 4 numbers"),
    (1, "negative xmin", "<bndbox>", "is not x1 <= x2, y1 <= y2 with non-negative"),
])
def test_a_bad_later_object_is_named_at_its_own_line(tmp_path, truth, n, edit, tag, problem):
    """#32 item 11: the line named for a bad second or third <object> was the first one's
    (every object names the same class, and an empty or valid-looking value is found first in
    the first object)."""
    _link_images(tmp_path)
    xml_dir = shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")
    xml = xml_dir / "ILSVRC2012_val_00000059.xml"  # three objects of n04485082
    text = xml.read_text()
    objects = text.split("<object>")  # [head, first, second, third]
    if edit == "no bndbox":
        body = objects[n + 1]
        objects[n + 1] = body[:body.index("<bndbox>")] + body[body.index("</bndbox>") + 9:]
    elif edit == "empty ymin":
        body = objects[n + 1]
        start, end = body.index("<ymin>") + 6, body.index("</ymin>")
        objects[n + 1] = body[:start] + body[end:]
    else:
        body = objects[n + 1]
        start, end = body.index("<xmin>") + 6, body.index("</xmin>")
        objects[n + 1] = body[:start] + "-5" + body[end:]
    xml.write_text("<object>".join(objects))
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    where = f"{xml}, line {_line_of_nth(text, tag, n)}: "
    assert str(info.value).startswith(where) and problem in str(info.value), (
        str(info.value), where)


def test_a_box_reaching_past_its_image_is_refused(tmp_path, truth):
    """#32 item 11: xmax=99999 in a 500 px image was accepted unclipped; the README says a box
    outside its image is refused. One ending on the image's size (ILSVRC's 1-based counting)
    stays."""
    _link_images(tmp_path)
    xml_dir = shutil.copytree(SAMPLE / "bbox_xml", tmp_path / "bbox_xml")
    xml = xml_dir / "ILSVRC2012_val_00000059.xml"  # 500×375, three objects
    text = xml.read_text()
    root = ET.fromstring(text)
    assert (root.findtext("size/width"), root.findtext("size/height")) == ("500", "375")
    second = root.findall("object")[1].find("bndbox/xmax").text
    edited = text.split("<xmax>")
    edited[2] = edited[2].replace(f"{second}</xmax>", "500</xmax>", 1)
    xml.write_text("<xmax>".join(edited))
    kept = next(s for s in open_val_dir(tmp_path) if s.image_id == "ILSVRC2012_val_00000059")
    assert kept.boxes[1].x2 == 500
    edited[2] = edited[2].replace("500</xmax>", "99999</xmax>", 1)
    xml.write_text("<xmax>".join(edited))
    with pytest.raises(AnnotationError) as info:
        open_val_dir(tmp_path)
    line = _line_of_nth(text, "<bndbox>", 1)
    assert str(info.value).startswith(f"{xml}, line {line}: box ")
    assert "99999" in str(info.value) and "outside the 500×375 image" in str(info.value)
