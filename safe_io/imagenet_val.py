"""ImageNet ILSVRC2012 validation folders, in whichever layout they were unpacked.

One reader serves the app's val browser and ``python -m cam evaluate`` so both agree on labels and
boxes. ``open_val_dir`` detects, in this order:

* ``kaggle``: ``LOC_val_solution.csv`` (+ ``LOC_synset_mapping.txt``), images beside it or under
  ``ILSVRC/Data/CLS-LOC/val/``. One file holds every label and box, so it is preferred.
* ``folders``: ``<root>/<wnid>/*.JPEG`` or ``<root>/val/<wnid>/*.JPEG``; boxes if a bbox XML
  folder is also found.
* ``flat-devkit``: flat ``ILSVRC2012_val_*.JPEG`` with the devkit's
  ``ILSVRC2012_validation_ground_truth.txt`` and ``meta.mat``; boxes (checked against the
  labels) if a bbox XML folder is also found.
* ``flat-xml``: flat images with the ``ILSVRC2012_bbox_val_v3`` VOC XML folder, which carries
  wnid and boxes (in the root or one folder down, e.g. ``bbox_xml/``, ``val/``, ``Annotations/``).

Malformed annotations raise ``AnnotationError`` naming file and line; images without annotations
and annotations without images are listed in ``skipped``. Images are not opened while scanning
(50,000 must scan in seconds): the decoder (``safe_io.images``) opens one when it is used,
raising ``ImageLoadError`` for a corrupt file.
"""
from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .imagenet import WNIDS, class_index_of, is_wnid
from .images import SUPPORTED_EXTENSIONS

KAGGLE_CSV = "LOC_val_solution.csv"
KAGGLE_SYNSETS = "LOC_synset_mapping.txt"
KAGGLE_IMAGES = Path("ILSVRC", "Data", "CLS-LOC", "val")
DEVKIT_GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
_VAL_ID = re.compile(r"ILSVRC2012_val_\d{8}")
_PROBLEMS_SHOWN = 10  # malformed annotation files listed in one message
_WNID_LIKE = re.compile(r"n\d{8}")


@dataclass(frozen=True)
class Box:
    """Original-pixel box, 0-based and inclusive as in the ILSVRC annotations."""

    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class ValSample:
    image_id: str  # e.g. 'ILSVRC2012_val_00000001'
    path: Path
    wnid: str | None
    class_index: int | None  # sorted-wnid order 0..999
    boxes: tuple[Box, ...]


class AnnotationError(ValueError):
    """A malformed or inconsistent annotation file; the message names the file and the line."""


@dataclass(eq=False)
class ValDataset:
    layout: str  # 'flat-devkit' | 'flat-xml' | 'kaggle' | 'folders'
    root: Path
    samples: list[ValSample]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.samples = sorted(self.samples, key=lambda s: s.image_id)
        self.skipped = sorted(self.skipped)
        self._by_id = {s.image_id: s for s in self.samples}
        self._by_class: dict[int | None, list[ValSample]] = defaultdict(list)
        for sample in self.samples:
            self._by_class[sample.class_index].append(sample)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> ValSample:
        return self.samples[index]

    def by_class(self, class_index: int) -> list[ValSample]:
        return list(self._by_class.get(class_index, ()))

    def find(self, image_id: str) -> ValSample | None:
        return self._by_id.get(image_id)


def folder_signature(root: str | Path) -> tuple:
    """What changes when a validation folder gains or loses images or annotations: the
    (name, size, mtime) of the folder, its immediate entries and the entries of the folders
    every layout keeps images in (``val/``, Kaggle's ``ILSVRC/Data/CLS-LOC/val/``). A class
    folder's mtime changes when a photo is added to or removed from it, so a listing cached
    under this key is read again when any layout's images or annotation files change (an
    annotation edited in place with the same size in the same second would not be seen)."""
    root = Path(root)
    folders = [root] + [d for d in (root / "val", root / KAGGLE_IMAGES) if d.is_dir()]
    entries = []
    for folder in folders:
        stat = folder.stat()
        entries.append((str(folder), stat.st_mtime_ns))
        with os.scandir(folder) as listing:
            for entry in listing:
                info = entry.stat(follow_symlinks=False)
                entries.append((entry.path, info.st_size, info.st_mtime_ns))
    return tuple(sorted(entries))


def open_val_dir(root: str | Path) -> ValDataset:
    """Scan an ImageNet validation folder (layout detected, see module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"{root}: not a folder")
    if (root / KAGGLE_CSV).is_file():
        return _read_kaggle(root)
    wnid_root = next((d for d in (root, root / "val") if d.is_dir() and _class_dirs(d)), None)
    if wnid_root is not None:
        return _read_folders(root, wnid_root)
    xml_dir = _find_xml_dir(root)
    ground_truth = _find_ground_truth(root)
    meta = _find_meta_mat(ground_truth) if ground_truth else None
    if ground_truth and meta:
        return _read_flat_devkit(root, ground_truth, meta, xml_dir)
    if xml_dir:
        return _assemble("flat-xml", root, _images_in(root), _read_xml_dir(xml_dir), xml_dir)
    if ground_truth:
        raise AnnotationError(
            f"{ground_truth}: found the devkit ground truth but not the devkit's meta.mat (looked "
            f"beside it and in a data/ folder next to it), and no bbox XML folder. The file lists "
            f"ILSVRC2012_IDs, which are not class indices; meta.mat maps them to wnids. Add "
            f"ILSVRC2012_devkit_t12/data/meta.mat or the ILSVRC2012_bbox_val_v3 XML folder.")
    raise AnnotationError(
        f"{root}: no ImageNet validation annotations found. Expected {KAGGLE_CSV}, val/<wnid>/ "
        f"class folders, a folder of ILSVRC2012_val_*.xml box files, or {DEVKIT_GROUND_TRUTH} "
        f"with the devkit's meta.mat.")


# -- layouts ---------------------------------------------------------------------------------

# image_id -> (wnid, boxes, where) with ``where`` = "file, line n" for messages
_Labels = dict[str, tuple[str, tuple[Box, ...], str]]


def _read_kaggle(root: Path) -> ValDataset:
    if (root / KAGGLE_SYNSETS).is_file():
        _check_synset_mapping(root / KAGGLE_SYNSETS)
    image_dir = root / KAGGLE_IMAGES if (root / KAGGLE_IMAGES).is_dir() else root
    csv_path = root / KAGGLE_CSV
    labels: _Labels = {}
    for lineno, line in enumerate(_read_lines(csv_path), 1):
        where = f"{csv_path}, line {lineno}"
        if lineno == 1:
            if line.replace(" ", "") != "ImageId,PredictionString":
                raise AnnotationError(f"{where}: expected the header 'ImageId,PredictionString', "
                                      f"got {line[:80]!r}")
            continue
        if not line.strip():
            continue
        image_id, comma, prediction = line.partition(",")
        tokens = prediction.split()
        if not comma or not image_id or not tokens or len(tokens) % 5:
            raise AnnotationError(f"{where}: expected 'ImageId,wnid xmin ymin xmax ymax ...' "
                                  f"(groups of 5 fields), got {line[:80]!r}")
        wnids = set(tokens[0::5])
        if len(wnids) != 1:
            raise AnnotationError(f"{where}: boxes name several classes {sorted(wnids)}")
        wnid = _known_wnid(tokens[0], where)
        boxes = tuple(_box(tokens[i + 1:i + 5], where) for i in range(0, len(tokens), 5))
        _add_label(labels, image_id.strip(), (wnid, boxes, where))
    return _assemble("kaggle", root, _images_in(image_dir), labels, image_dir)


def _read_folders(root: Path, wnid_root: Path) -> ValDataset:
    xml_dir = _find_xml_dir(root) or (_find_xml_dir(wnid_root) if wnid_root != root else None)
    xml_labels = _read_xml_dir(xml_dir) if xml_dir else {}
    folders = _class_dirs(wnid_root)
    for name, folder in folders.items():
        _known_wnid(name, str(folder))
    files = [(name, stem, path) for name, folder in folders.items()
             for stem, path in _image_files(folder)]
    stems = Counter(stem for _, stem, _ in files)
    samples = []
    for name, stem, path in files:
        index = class_index_of(name)
        wnid, boxes, where = xml_labels.get(stem, (name, (), ""))
        if wnid != name:
            raise AnnotationError(f"{where}: class {wnid} disagrees with the image's folder "
                                  f"{path.parent}")
        # an image's id is unique in its dataset: the file stem (an ILSVRC id, as the
        # annotations name it) where no other file has it, else its path in the class folders
        image_id = stem if stems[stem] == 1 else path.relative_to(wnid_root).as_posix()
        samples.append(ValSample(image_id, path, name, index, boxes))
    skipped = [(path, "outside the <wnid> class folders, so its class is unknown")
               for _, path in _image_files(wnid_root)]
    return ValDataset("folders", root, samples, skipped)


def _read_flat_devkit(root: Path, ground_truth: Path, meta: Path,
                      xml_dir: Path | None) -> ValDataset:
    id_to_wnid = _read_meta_mat(meta)
    xml_labels = _read_xml_dir(xml_dir) if xml_dir else {}
    labels: _Labels = {}
    lines = _read_lines(ground_truth)
    while lines and not lines[-1].strip():
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        where = f"{ground_truth}, line {lineno}"
        text = line.strip()
        if not text.isdigit() or int(text) not in id_to_wnid:
            raise AnnotationError(f"{where}: expected one ILSVRC2012_ID between 1 and 1000, "
                                  f"got {line[:80]!r}")
        image_id, wnid = f"ILSVRC2012_val_{lineno:08d}", id_to_wnid[int(text)]
        xml_wnid, boxes, xml_where = xml_labels.get(image_id, (wnid, (), ""))
        if xml_wnid != wnid:
            raise AnnotationError(f"{where}: ILSVRC2012_ID {text} is {wnid} (per {meta}), but "
                                  f"{xml_where} says {xml_wnid}")
        labels[image_id] = (wnid, boxes, where)
    return _assemble("flat-devkit", root, _images_in(root), labels, root)


def _assemble(layout: str, root: Path, found: tuple[dict[str, Path], list[tuple[Path, str]]],
              labels: _Labels, image_dir: Path) -> ValDataset:
    """Join images found on disk with annotations; either side alone goes to ``skipped``, and
    so does a second file with an annotated name."""
    images, repeated = found
    samples, skipped = [], list(repeated)
    for image_id, path in images.items():
        if image_id in labels:
            wnid, boxes, _ = labels[image_id]
            samples.append(ValSample(image_id, path, wnid, class_index_of(wnid), boxes))
        else:
            skipped.append((path, f"no annotation for {image_id}"))
    skipped += [(image_dir / f"{image_id}.JPEG",
                 f"annotated ({where}) but the image file is missing")
                for image_id, (_, _, where) in labels.items() if image_id not in images]
    return ValDataset(layout, root, samples, skipped)


# -- annotation files ------------------------------------------------------------------------

def _read_xml_dir(xml_dir: Path) -> _Labels:
    """Every box file of the folder; the bad ones are all reported at once, so a user fixes
    them in one pass rather than one per run."""
    labels: _Labels = {}
    problems = []
    for entry in sorted(os.scandir(xml_dir), key=lambda e: e.name):
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() == ".xml" and _VAL_ID.fullmatch(stem):
            try:
                labels[stem] = _read_xml(Path(entry.path))
            except AnnotationError as exc:
                problems.append(str(exc))
    if len(problems) == 1:
        raise AnnotationError(problems[0])
    if problems:
        shown = problems[:_PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        raise AnnotationError(f"{len(problems)} box files in {xml_dir} are malformed:\n- "
                              + "\n- ".join(shown) + (f"\n- and {more} more" if more else ""))
    return labels


def _read_xml(path: Path) -> tuple[str, tuple[Box, ...], str]:
    """One ILSVRC2012_bbox_val_v3 VOC file: the class and every box."""
    data = path.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise AnnotationError(f"{path}, line {exc.position[0]}: not valid XML ({exc})") from None
    wnids, boxes = set(), []
    width, height = root.findtext("size/width"), root.findtext("size/height")
    size = ((float(width), float(height)) if width and height and _is_number(width)
            and _is_number(height) else None)
    # where each <object> starts, so that a message about the second one names its own line
    starts = [m.start() for m in re.finditer(rb"<object[\s>]", data)]
    for number, obj in enumerate(root.iter("object")):
        start = starts[number] if number < len(starts) else 0
        name = (obj.findtext("name") or "").strip()
        where = f"{path}, line {_line_of(data, '<name>', name, start)}"
        wnids.add(_known_wnid(name, where))
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise AnnotationError(f"{where}: the <object> of {name} has no <bndbox>")
        values = [bndbox.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        bad = next((v for v in values if v is None or not _is_number(v)), "")
        box_where = f"{path}, line {_line_of(data, '<bndbox>', bad or '', start)}"
        box = _box(values, box_where)
        # Boxes are inclusive pixel boxes (0 .. size - 1); one that ends on ``size`` itself is
        # ILSVRC's 1-based counting and is kept, one that reaches further is not this image's
        if size is not None and (box.x1 >= size[0] or box.y1 >= size[1]
                                 or box.x2 > size[0] or box.y2 > size[1]):
            raise AnnotationError(f"{box_where}: box {values} reaches outside the "
                                  f"{size[0]:g}×{size[1]:g} image its <size> declares")
        boxes.append(box)
    if len(wnids) != 1:
        problem = (f"objects of several classes {sorted(wnids)}" if wnids
                   else "no <object> element")
        raise AnnotationError(f"{path}: {problem}")
    return wnids.pop(), tuple(boxes), str(path)


def _read_meta_mat(path: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid for the 1000 leaf synsets (num_children == 0) of the devkit."""
    import scipy.io  # only this layout needs scipy

    try:
        synsets = scipy.io.loadmat(path, squeeze_me=True)["synsets"]
        rows = zip(synsets["ILSVRC2012_ID"], synsets["WNID"], synsets["num_children"])
        id_to_wnid = {int(i): str(w) for i, w, n in rows if int(n) == 0}
    except Exception as exc:  # scipy raises many types for a bad .mat; all mean "unreadable"
        raise AnnotationError(f"{path}: not a readable ILSVRC2012 devkit meta.mat "
                              f"({type(exc).__name__}: {exc})") from None
    if sorted(id_to_wnid) != list(range(1, 1001)) or set(id_to_wnid.values()) != set(WNIDS):
        raise AnnotationError(f"{path}: expected 1000 leaf synsets with ILSVRC2012_ID 1..1000 and "
                              f"the ImageNet-1k wnids, found {len(id_to_wnid)} leaves")
    return id_to_wnid


def _check_synset_mapping(path: Path) -> None:
    """Class indices come from safe_io.imagenet; refuse a mapping in any other order."""
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        wnid = line.split(" ", 1)[0].strip()
        expected = WNIDS[lineno - 1] if lineno <= len(WNIDS) else None
        if wnid != expected:
            raise AnnotationError(
                f"{path}, line {lineno}: expected {expected or 'no more lines'} (the ImageNet-1k "
                f"classes in sorted-wnid order), got {line[:80]!r}")
    if len(lines) != len(WNIDS):
        raise AnnotationError(f"{path}, line {len(lines) + 1}: expected {len(WNIDS)} classes, "
                              f"the file ends after {len(lines)}")


# -- helpers ---------------------------------------------------------------------------------

def _read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise AnnotationError(f"{path}, line {line}: not UTF-8 text") from None


def _line_of(data: bytes, after: str, needle: str, start: int = 0) -> int:
    """Line number of ``needle`` at or after the first ``after`` from byte ``start`` (the
    element the message is about): XML errors point at a line although ElementTree keeps no
    line numbers."""
    found = data.find(after.encode(), start)
    position = data.find(needle.encode(), max(found, 0)) if needle else found
    return data.count(b"\n", 0, max(position, 0)) + 1


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _box(values: list[str | None], where: str) -> Box:
    if not all(v is not None and _is_number(v) for v in values):
        raise AnnotationError(f"{where}: box coordinates must be 4 numbers, got {values}")
    x1, y1, x2, y2 = (float(v) for v in values)
    if x2 < x1 or y2 < y1 or min(x1, y1) < 0:
        raise AnnotationError(f"{where}: box {values} is not x1 <= x2, y1 <= y2 with "
                              f"non-negative coordinates")
    return Box(x1, y1, x2, y2)


def _known_wnid(wnid: str, where: str) -> str:
    if not is_wnid(wnid):
        raise AnnotationError(f"{where}: {wnid!r} is not one of the 1000 ImageNet-1k wnids")
    return wnid


def _add_label(labels: _Labels, image_id: str, label: tuple[str, tuple[Box, ...], str]) -> None:
    if image_id in labels:
        raise AnnotationError(f"{label[2]}: {image_id} is already annotated at "
                              f"{labels[image_id][2]}")
    labels[image_id] = label


def _image_files(folder: Path) -> list[tuple[str, Path]]:
    """(file stem, path) of every image file directly inside ``folder``, by name; two files
    may share a stem (``0003.png`` beside ``0003.JPEG``)."""
    return [(os.path.splitext(entry.name)[0], Path(entry.path))
            for entry in sorted(os.scandir(folder), key=lambda e: e.name)
            if os.path.splitext(entry.name)[1].lower() in SUPPORTED_EXTENSIONS and entry.is_file()]


def _images_in(folder: Path) -> tuple[dict[str, Path], list[tuple[Path, str]]]:
    """image_id (file stem, an ILSVRC id in the flat layouts) -> path, and the files whose stem
    another file already has (named, never silently dropped)."""
    images: dict[str, Path] = {}
    repeated = []
    for stem, path in _image_files(folder):
        if stem in images:
            repeated.append((path, f"another file, {images[stem].name}, has the same name "
                                   f"{stem}, which annotations refer to"))
        else:
            images[stem] = path
    return images, repeated


def _class_dirs(folder: Path) -> dict[str, Path]:
    """Sub-folders named like wnids (``n`` + 8 digits); unknown ones are checked by callers."""
    return {e.name: Path(e.path) for e in sorted(os.scandir(folder), key=lambda e: e.name)
            if _WNID_LIKE.fullmatch(e.name) and e.is_dir()}


def _find_xml_dir(root: Path) -> Path | None:
    """``root`` or the first non-class sub-folder holding ILSVRC2012_val_*.xml files."""
    candidates = [root] + sorted(Path(e.path) for e in os.scandir(root)
                                 if e.is_dir() and not _WNID_LIKE.fullmatch(e.name))
    for folder in candidates:
        with os.scandir(folder) as entries:
            if any(e.name.startswith("ILSVRC2012_val_") and e.name.lower().endswith(".xml")
                   for e in entries):
                return folder
    return None


def _find_ground_truth(root: Path) -> Path | None:
    subdirs = sorted(Path(e.path) for e in os.scandir(root) if e.is_dir())
    candidates = [root] + subdirs + [d / "data" for d in subdirs]
    found = (d / DEVKIT_GROUND_TRUTH for d in candidates)
    return next((path for path in found if path.is_file()), None)


def _find_meta_mat(ground_truth: Path) -> Path | None:
    here = ground_truth.parent
    return next((d / "meta.mat" for d in (here, here / "data", here.parent / "data")
                 if (d / "meta.mat").is_file()), None)
