"""scalecam in the browser: Figure 7 of the EfficientNet paper on your own images.

Only layout and widgets live here; loading, CAMs, rendering, metrics, statistics and reports are
the ``scaled_models`` and ``cam`` libraries, the same code as the command line.
"""
from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import streamlit as st

from app import evaluate_view, export_view, inspect_view, labels
from app.settings import Settings, load_settings
from app.text import plain
from cam.cache import BoundedCache
from cam.engine import LOW_CONFIDENCE, CamEngine, ModelRun
from cam.figure import FIGURE7_WNIDS, PAPER_CAPTION, FigureSpec, figure7_preset, make_figure
from cam.grid import LOW_CONFIDENCE_MARK, compose_grid
from cam.inputs import CamImage, collect_images, image_from_bytes, image_from_path, with_unique_ids
from cam.memory import configure_allocator, release_memory
from cam.methods import EXACT, METHODS, CamMethod, forward_passes_per_image
from cam.report import PROVENANCE_HEADERS, SHA256_HEADER, provenance_cells
from cam.style import COLORMAPS, DEFAULT_STYLE, EXPORT_DPIS, NORMALISATIONS, RenderStyle
from cam.targets import GROUND_TRUTH, PREDICTED, Target
from safe_io.imagenet import CLASS_NAMES, WNIDS, class_index_of, class_label
from safe_io.imagenet_val import AnnotationError, ValDataset, folder_signature, open_val_dir
from safe_io.images import SUPPORTED_EXTENSIONS, ImageLoadError, image_id_for, load_thumbnail
from safe_io.paths import (
    SAMPLE_IMAGES,
    PathNotAllowed,
    allowed_roots,
    check_file_under_roots,
    resolve_under_roots,
)
from scaled_models.family import FAMILIES, WeightFamily
from scaled_models.provenance import provenance_rows
from scaled_models.table7 import MODEL_KEYS
from scaled_models.weights import resolve_family
from scaled_models.zoo import device_label, load_zoo

UPLOAD_TYPES = [ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS]
SCREEN_DPI = 110
IMAGE_CACHE_MB = 512  # decoded photos shared by every session
THUMBNAIL_CACHE_MB = 64


@st.cache_resource(show_spinner="Loading the Table 7 models (once per server process)…",
                   max_entries=len(FAMILIES),
                   hash_funcs={type(f): lambda family: family.name for f in FAMILIES.values()})
def get_engine(family: WeightFamily, checkpoints: str) -> CamEngine:
    """One engine per concrete family for the whole server (the checkpoints folder is the
    operator's, so no visitor can load a second set): models load once and stay on the device;
    every session shares them (the engine is thread-safe). A family is cached by its name."""
    return CamEngine(load_zoo(family, checkpoints))


@st.cache_resource(show_spinner=False)
def image_cache() -> BoundedCache:
    """Decoded photos (uploads by content, validation images by file version), shared by every
    session within a fixed budget."""
    return BoundedCache(IMAGE_CACHE_MB << 20,
                        lambda image: image.image.width * image.image.height * 3)


@st.cache_resource(show_spinner=False)
def thumbnail_cache() -> BoundedCache:
    return BoundedCache(THUMBNAIL_CACHE_MB << 20, lambda image: image.width * image.height * 3)


@st.cache_resource(show_spinner="Reading the validation directory…", max_entries=4)
def get_val_dir(path: str, signature: tuple) -> ValDataset:
    """A folder's listing, read again whenever the folder changes (``signature``)."""
    del signature  # part of the cache key only
    return open_val_dir(path)


@st.cache_resource(show_spinner=False)
def seconds_per_image() -> dict[tuple[str, str], float]:
    """(family, model) → seconds one image's exact CAM took on this server when last computed:
    what the wait of a slow method is estimated from, before it starts."""
    return {}


def slow_method_wait(engine: CamEngine, keys: list[str], images: int, method: CamMethod
                     ) -> str:
    """What a slow method will cost, said before it starts: it runs each model once per
    feature channel, so about channels × (one exact CAM) per image."""
    models = [m for m in engine.zoo.models if m.key in keys and m.available]
    passes = {m.key: forward_passes_per_image(method, m.net) for m in models}
    measured = seconds_per_image()
    known = [(m.key, measured.get((engine.zoo.family.name, m.key))) for m in models]
    text = (f"{method.label} runs each model once per feature channel of its last layer "
            f"({', '.join(f'{k}: {n:,}' for k, n in passes.items())} forward passes per image)")
    if known and all(seconds is not None for _, seconds in known):
        total = sum(images * passes[k] * seconds for k, seconds in known)
        return text + (f": about {total / 60:.0f} min for {images} images on this server, "
                       "estimated from its CAM timings (less for maps already cached).")
    return text + ": minutes per image on a CPU."


@st.cache_resource(show_spinner=False)
def sample_images() -> list[CamImage]:
    return collect_images([SAMPLE_IMAGES]).images


def class_option(index: int) -> str:
    return f"{index} · {CLASS_NAMES[index]} ({WNIDS[index]})"


def sidebar(settings: Settings) -> tuple[CamEngine | None, dict]:
    """Model and CAM controls; returns the engine and the visitor's choices."""
    st.sidebar.title("scalecam")
    requested = st.sidebar.selectbox(
        labels.FAMILY.label, ["auto", *FAMILIES], key=labels.FAMILY.key,
        help="auto: the paper's EfficientNet blocks when B0's weights are available, else the "
             "offline Lite stand-ins")
    engine = None
    try:
        family, reason = resolve_family(requested)
        engine = get_engine(family, str(settings.checkpoints))
        st.sidebar.caption(f"{labels.FAMILY_CAPTION} **{family.name}** — {plain(reason)}. "
                           f"Device: **{device_label(engine.device)}**. Checkpoints: "
                           f"{plain(settings.checkpoints)} (set by the operator).")
    except Exception as exc:  # noqa: BLE001 - shown in place; the page keeps working
        st.sidebar.error(f"Could not load the models: {plain(exc)}")
    choices = {
        "models": st.sidebar.multiselect(
            labels.MODELS.label, list(MODEL_KEYS), default=list(MODEL_KEYS),
            key=labels.MODELS.key),
        "method": st.sidebar.selectbox(labels.METHOD.label, list(METHODS.values()),
                                       key=labels.METHOD.key,
                                       format_func=lambda m: m.menu_label),
    }
    method = choices["method"]
    if method.slow:
        st.sidebar.warning(f"{method.label} runs hundreds of forward passes per image: expect "
                           "minutes on a CPU.")
    mode = st.sidebar.radio(labels.TARGET_MODE.label, [labels.PREDICTED_MODE,
                                                       labels.GROUND_TRUTH_MODE,
                                                       labels.ONE_CLASS_MODE],
                            key=labels.TARGET_MODE.key)
    if mode == labels.ONE_CLASS_MODE:
        index = st.sidebar.selectbox(labels.TARGET_CLASS.label, range(len(CLASS_NAMES)),
                                     index=class_index_of(FIGURE7_WNIDS[0]),
                                     format_func=class_option, key=labels.TARGET_CLASS.key)
        choices["target"] = Target.of_class(int(index))
    else:
        choices["target"] = GROUND_TRUTH if mode == labels.GROUND_TRUTH_MODE else PREDICTED
    st.sidebar.subheader("Display")
    choices["style"] = RenderStyle(
        colormap=st.sidebar.selectbox("Colormap", list(COLORMAPS), key="colormap"),
        alpha=st.sidebar.slider("Map opacity (alpha)", 0.0, 1.0, DEFAULT_STYLE.alpha, 0.05,
                                key="alpha"),
        normalisation=st.sidebar.radio("Normalisation", NORMALISATIONS, key="normalisation",
                                       help="per-map: each map min-max scaled (the paper); "
                                            "shared: one scale across a row's models"),
        show_boxes=st.sidebar.checkbox("Show ground-truth boxes", True, key="boxes"),
        dpi=st.sidebar.select_slider(labels.DPI.label, EXPORT_DPIS, DEFAULT_STYLE.dpi,
                                     key=labels.DPI.key,
                                     help="the same default as python -m cam figure"))
    return engine, choices


def models_panel(engine: CamEngine) -> None:
    """Table 7 beside what runs: the report's provenance rows and the models' top-1, as a
    Markdown table (a dataframe would import pandas and pyarrow, a second the first page would
    wait for)."""
    with st.expander("Models: Table 7 beside what this build runs", expanded=False):
        shown = [i for i, h in enumerate(PROVENANCE_HEADERS) if h != SHA256_HEADER]
        headers = [*(PROVENANCE_HEADERS[i] for i in shown), "paper top-1",
                   "top-1 of these weights"]
        lines = ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
        for row in provenance_rows(engine.zoo):
            report_cells = provenance_cells(row)
            cells = [*(report_cells[i] for i in shown), f"{row.spec.paper_top1:.1f}",
                     row.top1_text]
            lines.append("| " + " | ".join(plain(c) for c in cells) + " |")
        st.markdown("\n".join(lines))


def unavailable_notice(engine: CamEngine, keys: list[str]) -> None:
    """Above the grid, once per unavailable column: why, and the command that fills it."""
    for model in engine.zoo.models:
        if model.key in keys and not model.available:
            prov = model.provenance
            st.markdown(f"**{model.spec.short_label}** is unavailable: "
                        f"{plain(prov.unavailable_reason)}. To make it:")
            st.code(prov.make_available, language="bash")


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


def cached_file(cache: BoundedCache, path: Path, roots: list[Path], load):
    """``load(real path)`` of a file under the allowed roots, cached per file version (so an
    edited file is read again)."""
    real = check_file_under_roots(path, roots)
    stat = real.stat()
    version = (str(real), stat.st_size, stat.st_mtime_ns)
    value = cache.get(version)
    if value is None:
        value = load(real)
        cache.put(version, value)
    return value


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
                   f"{settings.max_grid_images} per grid (SCALECAM_MAX_GRID_IMAGES), so the "
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


def compute_figure(engine: CamEngine, images: list[CamImage], choices: dict) -> FigureSpec | None:
    """All maps for the grid, with visible per-model progress; errors in place."""
    keys = [k for k in MODEL_KEYS if k in choices["models"]]
    if choices["method"].slow:
        st.info(plain(slow_method_wait(engine, keys, len(images), choices["method"])))
    with st.status("Computing class activation maps…", expanded=False) as status:
        runs: list[ModelRun] = []

        def progress(run: ModelRun) -> None:
            runs.append(run)
            if choices["method"] == EXACT and run.computed:
                seconds_per_image()[(engine.zoo.family.name, run.model_key)] = \
                    run.elapsed_s / run.computed
            status.write(f"{run.model_key}: {run.computed} computed, {run.cached} from cache, "
                         f"{run.elapsed_s:.2f} s")

        start = time.perf_counter()
        try:
            spec = make_figure(engine, images, choices["method"], choices["target"], keys,
                               progress)
        except Exception as exc:  # noqa: BLE001 - shown in place, page keeps working
            status.update(label=labels.MAPS_FAILED, state="error")
            st.error(f"Could not compute the maps: {plain(exc)}")
            return None
        finally:
            if choices["method"].library_class is not None:
                release_memory()  # gradient methods leave large freed buffers behind
        ran = [run.model_key for run in runs]
        skipped = [k for k in keys if k not in ran]
        computed = sum(run.computed for run in runs)
        source = f"{computed} maps computed" if computed else "all maps from cache"
        label = labels.maps_ready_label(time.perf_counter() - start, len(images), ran, source)
        if skipped:
            label += f" — not run: {', '.join(skipped)} (unavailable)"
        status.update(label=label, state="complete")
    notes = {n for row in spec.rows for r in row.results.values() for n in r.notes}
    for note in sorted(notes):
        st.info(plain(note))
    return spec


def main() -> None:
    st.set_page_config(page_title="scalecam — Figure 7", layout="wide")
    configure_allocator()
    settings = load_settings()
    engine, choices = sidebar(settings)
    st.title("scalecam: where do scaled EfficientNets look?")
    st.caption("Class activation maps of the five Table 7 models of Tan & Le (ICML 2019), "
               "side by side: baseline, depth ×4, width ×2, resolution ×2 and compound scaling.")
    if engine is None:
        st.stop()
    models_panel(engine)
    images = choose_images(settings)
    if not images:
        st.info("Select or upload at least one image.")
        return
    if not choices["models"]:
        st.info("Select at least one model in the sidebar.")
        return
    spec = compute_figure(engine, images, choices)
    if spec is None:
        return
    style = choices["style"]
    unavailable_notice(engine, choices["models"])
    screen = dataclasses.replace(style, dpi=SCREEN_DPI)
    st.image(compose_grid(spec, screen), width="stretch")
    st.caption(f"{LOW_CONFIDENCE_MARK}: top-1 probability below {LOW_CONFIDENCE:.0%} — a "
               "prediction nobody should trust. ✓/✗: the prediction against the image's label.")
    if st.session_state.get("preset_used"):
        st.caption(f"Paper: {PAPER_CAPTION}")
    inspect_tab, evaluate_tab, export_tab = st.tabs(list(labels.RESULT_TABS))
    with inspect_tab:
        inspect_view.render(spec, style)
    with evaluate_tab:
        evaluate_view.render(engine, images, choices)
    with export_tab:
        export_view.render(engine, spec, style, settings, choices)


main()
