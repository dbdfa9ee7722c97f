"""scalecam in the browser: Figure 7 of the EfficientNet paper on your own images.

Only layout and widgets live here; loading, CAMs, rendering, metrics and parsing are the
``scaled_models`` and ``cam`` libraries, the same code as the command line.
"""
from __future__ import annotations

import io
import json
import os
import random
import time
from pathlib import Path

import streamlit as st

from app import inspect_view
from cam.data import AnnotationError, ValDataset, open_val_dir
from cam.engine import CamEngine, ModelRun
from cam.evaluate import evaluate_images, summarize, summary_markdown, summary_plot, write_csv
from cam.figure import make_figure
from cam.images import SUPPORTED_EXTENSIONS, ImageLoadError
from cam.inputs import CamImage, collect_images, image_from_bytes, image_from_path
from cam.methods import METHODS
from cam.paths import SAMPLE_IMAGES, PathNotAllowed, allowed_roots, resolve_under_roots
from cam.render import (
    COLORMAPS,
    NORMALISATIONS,
    PAPER_CAPTION,
    FigureSpec,
    RenderStyle,
    compose_grid,
    figure_bytes,
    manifest,
    panels_zip,
    render_panels,
)
from cam.targets import GROUND_TRUTH, PREDICTED, Target
from scaled_models.family import FAMILIES
from scaled_models.imagenet import CLASS_NAMES, WNIDS, class_index_of, class_label
from scaled_models.table7 import MODEL_KEYS
from scaled_models.weights import checkpoints_root
from scaled_models.zoo import device_label, load_zoo

PRESET_CLASSES = ("n02776631", "n03733281")  # Figure 7's rows: bakeshop, maze
UPLOAD_TYPES = [ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS]


@st.cache_resource(show_spinner="Loading the Table 7 models (once per server process)…",
                   max_entries=2)
def get_engine(family: str, checkpoints: str) -> CamEngine:
    """One engine per (family, checkpoints) for the whole server: models load once and stay
    on the device; every browser session shares them (the engine is thread-safe)."""
    return CamEngine(load_zoo(family, checkpoints or None))


@st.cache_resource(show_spinner=False, max_entries=64)
def decode_upload(data: bytes, name: str) -> CamImage:
    return image_from_bytes(data, name)


@st.cache_resource(show_spinner="Reading the validation directory…", max_entries=4)
def get_val_dir(path: str) -> ValDataset:
    return open_val_dir(path)


@st.cache_resource(show_spinner=False, max_entries=256)
def decode_val_image(path: str, mtime_ns: int) -> CamImage:
    """A val image decoded once per file version, not on every rerun."""
    del mtime_ns  # part of the cache key only
    return image_from_path(path)


@st.cache_resource(show_spinner=False)
def sample_images() -> list[CamImage]:
    return collect_images([SAMPLE_IMAGES]).images


def class_option(index: int) -> str:
    return f"{index} · {CLASS_NAMES[index]} ({WNIDS[index]})"


def sidebar() -> tuple[CamEngine | None, dict]:
    """Model and CAM controls; returns the engine and the user's choices."""
    st.sidebar.title("scalecam")
    family = st.sidebar.selectbox("Weight family", ["auto", *FAMILIES], key="family",
                                  help="auto: the paper's EfficientNet blocks when B0's "
                                       "weights are available, else the offline Lite stand-ins")
    checkpoints = st.sidebar.text_input("Checkpoints folder", key="checkpoints",
                                        value=str(checkpoints_root()))
    engine = None
    try:
        engine = get_engine(family, checkpoints)
    except Exception as exc:  # noqa: BLE001 - shown in place; the page keeps working
        st.sidebar.error(f"Could not load the models: {exc}")
    if engine is not None:
        st.sidebar.caption(f"Family **{engine.zoo.family.name}** — {engine.zoo.family_reason}. "
                           f"Device: **{device_label(engine.device)}**.")
    choices = {
        "models": st.sidebar.multiselect(
            "Models (paper order)", list(MODEL_KEYS), default=list(MODEL_KEYS), key="models"),
        "method": st.sidebar.selectbox("CAM method", list(METHODS), key="method",
                                       format_func=lambda m: METHODS[m].menu_label),
    }
    if METHODS[choices["method"]].slow:
        st.sidebar.warning("Score-CAM and Ablation-CAM run hundreds of forward passes per image: "
                           "expect minutes on a CPU.")
    mode = st.sidebar.radio("Target class", ["each model's prediction", "ground truth",
                                             "one class for all models"], key="target_mode")
    if mode == "one class for all models":
        index = st.sidebar.selectbox("Class (type to search)", range(len(CLASS_NAMES)),
                                     index=class_index_of(PRESET_CLASSES[0]),
                                     format_func=class_option, key="target_class")
        choices["target"] = Target.of_class(int(index))
    else:
        choices["target"] = GROUND_TRUTH if mode == "ground truth" else PREDICTED
    st.sidebar.subheader("Display")
    choices["style"] = RenderStyle(
        colormap=st.sidebar.selectbox("Colormap", list(COLORMAPS), key="colormap"),
        alpha=st.sidebar.slider("Map opacity (alpha)", 0.0, 1.0, 0.5, 0.05, key="alpha"),
        normalisation=st.sidebar.radio("Normalisation", NORMALISATIONS, key="normalisation",
                                       help="per-map: each map min-max scaled (the paper); "
                                            "shared: one scale across a row's models"),
        show_boxes=st.sidebar.checkbox("Show ground-truth boxes", True, key="boxes"),
        dpi=st.sidebar.select_slider("Export DPI", [100, 150, 200, 300, 600], 300, key="dpi"))
    return engine, choices


def models_panel(engine: CamEngine) -> None:
    with st.expander("Models: Table 7 beside what this build runs", expanded=False):
        rows = []
        for model in engine.zoo.models:
            s = model.summary()
            rows.append({
                "model": model.spec.label, "coefficients": s["coefficients"],
                "Table 7 res": s["resolution"], "runs at": s["run_resolution"],
                "MACs (measured)": f"{s['macs'] / 1e9:.2f}G", "paper FLOPs": s["paper_flops"],
                "run MACs": f"{s['run_macs'] / 1e9:.2f}G", "weights": s["weights_source"],
                "status": s["status"], "paper top-1": s["paper_top1"], "top-1 of weights": s["top1"],
                "notes / how to make available": "; ".join(
                    s["notes"] + ([f"{s['unavailable_reason']} → {s['make_available']}"]
                                  if not s["available"] else []))})
        st.dataframe(rows, hide_index=True, width="stretch")


def uploads_tab() -> list[CamImage]:
    files = st.file_uploader("Upload images", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key="uploads")
    images = []
    for file in files or []:
        try:
            images.append(decode_upload(file.getvalue(), file.name))
        except ImageLoadError as exc:
            st.error(f"Skipped {file.name}: {exc}")
    return images


def configured_val_dir() -> str:
    """``$SCALECAM_IMAGENET_VAL``, else ``imagenet_val`` in .streamlit/secrets.toml."""
    if os.environ.get("SCALECAM_IMAGENET_VAL"):
        return os.environ["SCALECAM_IMAGENET_VAL"]
    try:
        return str(st.secrets.get("imagenet_val", ""))
    except Exception:  # noqa: BLE001 - no secrets file is the normal case
        return ""


def val_tab() -> list[CamImage]:
    """Browse an ImageNet validation directory (only under allowed roots)."""
    default = configured_val_dir()
    roots = allowed_roots() + ([Path(default).expanduser().resolve()] if default else [])
    text = st.text_input("ImageNet validation folder", value=default, key="val_dir",
                         help="flat ILSVRC2012_val_* files with bbox XML or devkit labels, "
                              "Kaggle LOC_val_solution.csv, or val/<wnid>/ folders")
    preset = st.button("Figure 7 preset: bakeshop and maze", key="preset")
    if not text.strip():
        if preset:
            st.info("The preset picks validation images of 'bakery, bakeshop' (n02776631) and "
                    "'maze' (n03733281). Set SCALECAM_IMAGENET_VAL or type the path of an "
                    "ImageNet validation folder above.")
        return []
    try:
        dataset = get_val_dir(str(resolve_under_roots(text, roots)))
    except (PathNotAllowed, AnnotationError, OSError) as exc:
        st.error(str(exc))
        return []
    st.caption(f"{len(dataset)} images, {dataset.layout} layout"
               + (f"; {len(dataset.skipped)} files not usable" if dataset.skipped else ""))
    if preset:
        picked, missing = [], []
        for wnid in PRESET_CLASSES:
            found = dataset.by_class(class_index_of(wnid))
            if found:
                picked.append(found[0].image_id)
            else:
                missing.append(f"{class_label(class_index_of(wnid))} ({wnid})")
        st.session_state["val_selected"] = picked
        for key in [k for k in st.session_state if str(k).startswith("pick_")]:
            st.session_state[key] = key[len("pick_"):] in picked  # thumbnails follow the preset
        st.session_state["preset_missing"] = missing
        st.session_state["preset_used"] = True
    if st.session_state.get("preset_missing"):
        st.warning("Figure 7 preset: no image of "
                   + ", ".join(st.session_state["preset_missing"]) + " in this folder.")
    browse_controls(dataset)
    chosen = [dataset.find(i) for i in st.session_state.get("val_selected", [])]
    images = []
    for sample in [s for s in chosen if s is not None]:
        try:
            decoded = decode_val_image(str(sample.path), sample.path.stat().st_mtime_ns)
            images.append(CamImage(decoded.key, sample.image_id, decoded.image,
                                   sample.class_index, sample.boxes, str(sample.path)))
        except (ImageLoadError, OSError) as exc:
            st.error(f"Skipped {sample.image_id}: {exc}")
    return images


def browse_controls(dataset: ValDataset) -> None:
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
            st.error(f"{wanted.strip()} is not in this folder")
        candidates = [found] if found else []
    selected = list(st.session_state.get("val_selected", []))
    columns = st.columns(6)
    for i, sample in enumerate(candidates):
        with columns[i % 6]:
            try:
                st.image(str(sample.path), width="stretch")
            except Exception:  # noqa: BLE001 - a corrupt file is named, not fatal
                st.caption("(unreadable)")
            label = class_label(sample.class_index) if sample.class_index is not None else ""
            ticked = st.checkbox(f"{sample.image_id[-8:]} {label}", sample.image_id in selected,
                                 key=f"pick_{sample.image_id}")
            if ticked and sample.image_id not in selected:
                selected.append(sample.image_id)
            elif not ticked and sample.image_id in selected:
                selected.remove(sample.image_id)
    st.session_state["val_selected"] = selected


def choose_images() -> list[CamImage]:
    st.subheader("Images")
    samples, val, upload = st.tabs(["Sample photos", "ImageNet validation", "Upload"])
    with samples:
        available = sample_images()
        names = st.multiselect("Bundled photos (sample_images/)", [i.image_id for i in available],
                               default=[i.image_id for i in available], key="samples")
        chosen = [i for i in available if i.image_id in names]
    with val:
        chosen = val_tab() + chosen
    with upload:
        chosen = uploads_tab() + chosen
    unique = {image.key: image for image in chosen}
    return list(unique.values())


def compute_figure(engine: CamEngine, images: list[CamImage], choices: dict) -> FigureSpec | None:
    """All maps for the grid, with visible per-model progress; errors in place."""
    keys = [k for k in MODEL_KEYS if k in choices["models"]]
    with st.status("Computing class activation maps…", expanded=False) as status:
        runs: list[ModelRun] = []

        def progress(run: ModelRun) -> None:
            runs.append(run)
            status.write(f"{run.model_key}: {run.computed} computed, {run.cached} from cache, "
                         f"{run.elapsed_s:.2f} s")

        start = time.perf_counter()
        try:
            spec = make_figure(engine, images, choices["method"], choices["target"], keys,
                               progress)
        except Exception as exc:  # noqa: BLE001 - shown in place, page keeps working
            status.update(label="CAM computation failed", state="error")
            st.error(f"Could not compute the maps: {exc}")
            return None
        computed = sum(run.computed for run in runs)
        source = f"{computed} maps computed" if computed else "all maps from cache"
        status.update(label=f"Maps ready in {time.perf_counter() - start:.2f} s "
                            f"({len(images)} images × {len(spec.models)} models, {source})",
                      state="complete")
    notes = {n for row in spec.rows for r in row.results.values() for n in r.notes}
    for note in sorted(notes):
        st.info(note)
    return spec


def export_view(spec: FigureSpec, style: RenderStyle) -> None:
    """Downloads from the same renderer as `python -m cam figure`. High-DPI files are made on
    request, not on every rerun, and kept until the figure or its style changes."""
    record = manifest(spec, style)
    signature = json.dumps(record, sort_keys=True)
    if st.button(f"Prepare downloads ({style.dpi} DPI)", key="prepare_export"):
        with st.spinner("Rendering the figure for export…"):
            panels = render_panels(spec, style)
            grid = compose_grid(spec, style, panels)
            st.session_state["exports"] = (signature, {
                "png": figure_bytes(grid, "png", style.dpi),
                "pdf": figure_bytes(grid, "pdf", style.dpi),
                "zip": panels_zip(panels, spec),
                "json": json.dumps(record, indent=2)})
    saved = st.session_state.get("exports")
    if not saved or saved[0] != signature:
        st.caption("The grid as PNG and PDF, a zip of every panel, and the JSON manifest.")
        return
    files = saved[1]
    columns = st.columns(4)
    columns[0].download_button("Grid PNG", files["png"], "scalecam_figure7.png", "image/png",
                               key="dl_png")
    columns[1].download_button("Grid PDF", files["pdf"], "scalecam_figure7.pdf",
                               "application/pdf", key="dl_pdf")
    columns[2].download_button("Panels (zip of PNGs)", files["zip"], "scalecam_panels.zip",
                               "application/zip", key="dl_zip")
    columns[3].download_button("Manifest (JSON)", files["json"], "scalecam_figure7.json",
                               "application/json", key="dl_json")


def evaluate_view(engine: CamEngine, images: list[CamImage], choices: dict) -> None:
    labelled = [i for i in images if i.gt_class is not None and i.boxes]
    st.caption(f"{len(labelled)} of the selected images have ImageNet labels and boxes "
               "(pick validation images to measure more).")
    steps = st.slider("Deletion/insertion steps (0 skips them)", 0, 32, 8, key="eval_steps")
    if not labelled or not st.button("Compute metrics", key="run_eval"):
        return
    with st.spinner("Scoring every model's maps…"):
        rows = evaluate_images(engine, labelled, choices["method"], choices["models"], steps)
    summary = summarize(rows)
    st.session_state["eval_result"] = (rows, summary)


def show_evaluation() -> None:
    if "eval_result" not in st.session_state:
        return
    rows, summary = st.session_state["eval_result"]
    st.markdown(summary_markdown(summary))
    plot = summary_plot(summary)
    st.image(plot)
    buffer = io.StringIO()
    write_csv(buffer, rows)
    columns = st.columns(2)
    columns[0].download_button("Metrics CSV", buffer.getvalue(), "scalecam_metrics.csv",
                               "text/csv", key="dl_eval_csv")
    columns[1].download_button("Metrics plot PNG", plot, "scalecam_metrics.png", "image/png",
                               key="dl_eval_png")


def main() -> None:
    st.set_page_config(page_title="scalecam — Figure 7", layout="wide")
    engine, choices = sidebar()
    st.title("scalecam: where do scaled EfficientNets look?")
    st.caption("Class activation maps of the five Table 7 models of Tan & Le (ICML 2019), "
               "side by side: baseline, depth ×4, width ×2, resolution ×2 and compound scaling.")
    if engine is None:
        st.stop()
    models_panel(engine)
    images = choose_images()
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
    screen = RenderStyle(style.colormap, style.alpha, style.normalisation, style.show_boxes,
                         dpi=110)
    st.image(compose_grid(spec, screen), width="stretch")
    if st.session_state.get("preset_used"):
        st.caption(f"Paper: {PAPER_CAPTION}")
    inspect_tab, evaluate_tab, export_tab = st.tabs(["Inspect", "Evaluate", "Export"])
    with inspect_tab:
        inspect_view.render(spec, style)
    with evaluate_tab:
        evaluate_view(engine, images, choices)
        show_evaluation()
    with export_tab:
        export_view(spec, style)


main()
