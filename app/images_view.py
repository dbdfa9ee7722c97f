"""Choosing the images: the bundled photos, an ImageNet validation folder (by class, at random,
by id, the Figure 7 preset; only under allowed roots) and uploads; each picture once, bad files
named and skipped."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import streamlit as st

from app import labels
from app.resources import cached_file, get_val_dir, image_cache, sample_images, thumbnail_cache
from app.settings import Settings
from app.text import class_option, plain
from cam.engine.figure import FIGURE7_WNIDS, figure7_preset
from cam.engine.inputs import CamImage, image_from_bytes, image_from_path, with_unique_ids
from safe_io.imagenet import CLASS_NAMES, class_index_of, class_label
from safe_io.imagenet_val import AnnotationError, ValDataset, folder_signature
from safe_io.images import SUPPORTED_EXTENSIONS, ImageLoadError, image_id_for, load_thumbnail
from safe_io.paths import (
    PathNotAllowed,
    allowed_roots,
    resolve_under_roots,
)

UPLOAD_TYPES = [ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS]


def skipped(name: str, exc: Exception) -> str:
    """"Skipped photo.jpg: the file is empty" — the file named once, whether or not the error's
    own message already names it (the decoder's and the path checks' do)."""
    text = str(exc)
    return plain(f"Skipped {text}" if name in text else f"Skipped {name}: {text}")


def decoded(data: bytes, name: str) -> CamImage:
    """An upload decoded once per content for the whole server, shown under its own name."""
    cached = image_cache().get(image_id_for(data))
    if cached is None:
        cached = image_from_bytes(data, name)
        image_cache().put(cached.key, cached)
    return dataclasses.replace(cached, image_id=Path(name).stem, source=name)


def uploads_tab() -> list[CamImage]:
    files = st.file_uploader(labels.UPLOADS.label, type=UPLOAD_TYPES, accept_multiple_files=True,
                             key=labels.UPLOADS.key)
    images = []
    for file in files or []:
        try:
            images.append(decoded(file.getvalue(), file.name))
        except ImageLoadError as exc:
            st.error(skipped(file.name, exc))
    return images


def val_tab(settings: Settings) -> list[CamImage]:
    """Browse an ImageNet validation directory (only under allowed roots)."""
    default = settings.imagenet_val
    roots = allowed_roots(default)
    text = st.text_input("ImageNet validation folder", value=default, key="val_dir",
                         help="flat ILSVRC2012_val_* files with bbox XML or devkit labels, "
                              "Kaggle LOC_val_solution.csv, or val/<wnid>/ folders")
    preset = st.button("Figure 7 preset: bakeshop and maze", key="preset")
    if not text.strip():
        if preset:
            classes = " and ".join(f"'{CLASS_NAMES[class_index_of(w)]}' ({w})"
                                   for w in FIGURE7_WNIDS)
            st.info(f"The preset picks validation images of {classes}. Set "
                    "SCALECAM_IMAGENET_VAL or type the path of an ImageNet validation folder "
                    "above.")
        return []
    try:
        folder = resolve_under_roots(text, roots)
        dataset = get_val_dir(str(folder), folder_signature(folder))
    except (PathNotAllowed, AnnotationError, OSError) as exc:
        st.error(plain(exc))
        return []
    st.caption(f"{len(dataset)} images, {dataset.layout} layout"
               + (f"; {len(dataset.skipped)} files not usable" if dataset.skipped else ""))
    if preset:
        samples, missing = figure7_preset(dataset)
        picked = [s.image_id for s in samples]
        st.session_state["val_selected"] = picked
        for key in [k for k in st.session_state if str(k).startswith("pick_")]:
            st.session_state[key] = key[len("pick_"):] in picked  # thumbnails follow the preset
        st.session_state["preset_missing"] = missing
        st.session_state["preset_used"] = True
    if st.session_state.get("preset_missing"):
        st.warning("Figure 7 preset: no image of "
                   + ", ".join(st.session_state["preset_missing"]) + " in this folder.")
    browse_controls(dataset, roots)
    chosen = [dataset.find(i) for i in st.session_state.get("val_selected", [])]
    images = []
    for sample in [s for s in chosen if s is not None]:
        try:
            image = cached_file(image_cache(), sample.path, roots, image_from_path)
            images.append(dataclasses.replace(image, image_id=sample.image_id,
                                              gt_class=sample.class_index, boxes=sample.boxes,
                                              source=str(sample.path)))
        except (ImageLoadError, PathNotAllowed, OSError) as exc:
            st.error(skipped(sample.image_id, exc))
    return images


def browse_controls(dataset: ValDataset, roots: list[Path]) -> None:
    """By class, at random or by id; candidates as thumbnails to tick."""
    mode = st.radio("Browse", ["by class", "at random", "by image id"], horizontal=True,
                    key="browse_mode")
    present = sorted({s.class_index for s in dataset.samples if s.class_index is not None})
    if mode == "by class" and present:
        index = st.selectbox("Class (type a name or wnid)", present, format_func=class_option,
                             key="browse_class")
        candidates = dataset.by_class(index)[:12]
    elif mode == "at random":
        if st.button("New random pick", key="reroll"):
            st.session_state["seed"] = random.randrange(1 << 30)
        rng = random.Random(st.session_state.get("seed", 0))
        candidates = rng.sample(dataset.samples, min(8, len(dataset)))
    else:
        wanted = st.text_input("Image id (e.g. ILSVRC2012_val_00000008)", key="browse_id")
        found = dataset.find(wanted.strip()) if wanted.strip() else None
        if wanted.strip() and found is None:
            st.error(f"{plain(wanted.strip())} is not in this folder")
        candidates = [found] if found else []
    selected = list(st.session_state.get("val_selected", []))
    columns = st.columns(6)
    for i, sample in enumerate(candidates):
        with columns[i % 6]:
            try:
                st.image(cached_file(thumbnail_cache(), sample.path, roots, load_thumbnail),
                         width="stretch")
            except (ImageLoadError, PathNotAllowed, OSError) as exc:
                st.caption(f"(not shown: {plain(exc)})")
            label = class_label(sample.class_index) if sample.class_index is not None else ""
            shown_id = sample.image_id.removeprefix("ILSVRC2012_val_")
            ticked = st.checkbox(plain(f"{shown_id} {label}"),
                                 sample.image_id in selected, key=f"pick_{sample.image_id}")
            if ticked and sample.image_id not in selected:
                selected.append(sample.image_id)
            elif not ticked and sample.image_id in selected:
                selected.remove(sample.image_id)
    st.session_state["val_selected"] = selected


def choose_images(settings: Settings) -> list[CamImage]:
    st.subheader("Images")
    samples, val, upload = st.tabs(list(labels.IMAGE_TABS))
    with samples:
        available = sample_images()
        names = st.multiselect(labels.PHOTOS.label, [i.image_id for i in available],
                               default=[i.image_id for i in available], key=labels.PHOTOS.key)
        chosen = [i for i in available if i.image_id in names]
    with val:
        chosen = val_tab(settings) + chosen
    with upload:
        chosen = uploads_tab() + chosen
    unique = once_each(chosen)
    if len(unique) > settings.max_grid_images:
        st.warning(f"{len(unique)} images are selected; this server draws at most "
                   f"{settings.max_grid_images} per grid ({labels.MAX_GRID_ENV}), so the "
                   f"first {settings.max_grid_images} are shown.")
        unique = unique[:settings.max_grid_images]
    return with_unique_ids(unique)


def once_each(images: list[CamImage]) -> list[CamImage]:
    """Each picture once (by content), under the first name it was given; a picture chosen
    under several names is said so, not silently merged."""
    first: dict[str, CamImage] = {}
    names: dict[str, list[str]] = {}
    for image in images:
        first.setdefault(image.key, image)
        names.setdefault(image.key, []).append(image.image_id)
    for key, given in names.items():
        if len(given) > 1:
            st.info(plain(f"{', '.join(given)} are the same picture (identical bytes): shown "
                          f"once, as {first[key].image_id}."))
    return list(first.values())
