"""The maps: what the models are (Table 7 beside this build), why a column is unavailable, what
a slow method will cost, and computing the grid with visible per-model progress."""
from __future__ import annotations

import time
from collections.abc import Sequence

import streamlit as st

from app import labels
from app.memory import release_memory
from app.resources import seconds_per_image
from app.sidebar import Choices
from app.text import plain
from cam.engine.engine import CamEngine, ModelRun
from cam.engine.figure import FigureSpec, make_figure
from cam.engine.inputs import CamImage
from cam.engine.methods import EXACT, CamMethod
from scaled_models.provenance import (
    SHA256_HEADER,
    provenance_cells,
    provenance_headers,
    provenance_rows,
)


def slow_method_wait(engine: CamEngine, keys: list[str], images: int, method: CamMethod
                     ) -> str:
    """What a slow method will cost, said before it starts: it runs each model once per
    feature channel, so about channels × (one exact CAM) per image."""
    models = [m for m in engine.zoo.models if m.key in keys and m.available]
    passes = {m.key: engine.forward_passes(method, m.key) for m in models}
    measured = seconds_per_image()
    known = [(m.key, measured.get((engine.zoo.family.name, m.key))) for m in models]
    text = (f"{method.label} runs each model once per feature channel of its last layer "
            f"({', '.join(f'{k}: {n:,}' for k, n in passes.items())} forward passes per image)")
    if known and all(seconds is not None for _, seconds in known):
        total = sum(images * passes[k] * seconds for k, seconds in known)
        return text + (f": about {total / 60:.0f} min for {images} images on this server, "
                       "estimated from its CAM timings (less for maps already cached).")
    return text + ": minutes per image on a CPU."


def models_panel(engine: CamEngine) -> None:
    """The paper beside what runs: the report's provenance rows and the models' top-1, as a
    Markdown table (a dataframe would import pandas and pyarrow, a second the first page would
    wait for)."""
    ladder = engine.zoo.ladder
    title = ("Models: Table 7 beside what this build runs" if ladder.name == "table7"
             else f"Models: the {ladder.name} ladder beside the paper's rows")
    with st.expander(title, expanded=False):
        all_headers = provenance_headers(ladder)
        shown = [i for i, h in enumerate(all_headers) if h != SHA256_HEADER]
        headers = [*(all_headers[i] for i in shown), "paper top-1", "top-1 of these weights"]
        lines = ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|"]
        for row in provenance_rows(engine.zoo):
            report_cells = provenance_cells(row, ladder)
            cells = [*(report_cells[i] for i in shown), row.paper_top1_text, row.top1_text]
            lines.append("| " + " | ".join(plain(c) for c in cells) + " |")
        st.markdown("\n".join(lines))


def unavailable_notice(engine: CamEngine, keys: Sequence[str]) -> None:
    """Above the grid, once per unavailable column: why, and the command that fills it."""
    for model in engine.zoo.models:
        if model.key in keys and not model.available:
            prov = model.provenance
            if prov.make_available:
                st.markdown(f"**{model.column.short_label}** is unavailable: "
                            f"{plain(prov.unavailable_reason)}. To make it:")
                st.code(prov.make_available, language="bash")
            else:
                st.markdown(f"**{model.column.short_label}** is unavailable: "
                            f"{plain(prov.unavailable_reason)}.")


def compute_figure(engine: CamEngine, images: list[CamImage], choices: Choices
                   ) -> FigureSpec | None:
    """All maps for the grid, with visible per-model progress; errors in place."""
    keys = list(choices.models)
    if choices.method.slow:
        st.info(plain(slow_method_wait(engine, keys, len(images), choices.method)))
    with st.status("Computing class activation maps…", expanded=False) as status:
        runs: list[ModelRun] = []

        def progress(run: ModelRun) -> None:
            runs.append(run)
            if choices.method == EXACT and run.computed:
                seconds_per_image()[(engine.zoo.family.name, run.model_key)] = \
                    run.elapsed_s / run.computed
            disk = f" ({run.from_disk} of them from disk)" if run.from_disk else ""
            status.write(f"{run.model_key}: {run.computed} computed, {run.cached} from cache"
                         f"{disk}, {run.elapsed_s:.2f} s")

        start = time.perf_counter()
        try:
            spec = make_figure(engine, images, choices.method, choices.target, keys,
                               progress)
        except Exception as exc:  # noqa: BLE001 - shown in place, page keeps working
            status.update(label=labels.MAPS_FAILED, state="error")
            st.error(f"Could not compute the maps: {plain(exc)}")
            return None
        finally:
            if choices.method.library_class is not None:
                release_memory()  # gradient methods leave large freed buffers behind
        ran = [run.model_key for run in runs]
        skipped = [k for k in keys if k not in ran]
        computed = sum(run.computed for run in runs)
        from_disk = sum(run.from_disk for run in runs)
        if ran:
            source = f"{computed} maps computed" if computed else "all maps from cache"
            if from_disk:
                source += f", {from_disk} read from the disk cache"
            label = labels.maps_ready_label(time.perf_counter() - start, len(images), ran,
                                            source)
            if skipped:
                label += f" — not run: {', '.join(skipped)} (unavailable)"
        else:  # nothing ran: no time, no count, no cache to speak of
            label = labels.no_model_ran_label(engine.zoo.family.name, skipped)
        status.update(label=label, state="complete" if ran else "error")
    notes = {n for row in spec.rows for r in row.results.values() for n in r.notes}
    for note in sorted(notes):
        st.info(plain(note))
    return spec
