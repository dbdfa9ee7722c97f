"""``python -m cam bench``: the engine against the two baselines users would otherwise have.

(a) scalecam's engine, exact CAM, uncached (after a warm-up) and from its cache, as the command
    line runs it, and uncached as the Streamlit server runs it (its allocator settings, no kept
    heap: ``app.memory``);
(b) the naive pytorch-grad-cam loop: one ``GradCAM`` per model per image;
(c) the bare forward passes of the same models on the same batches, written plainly (eager,
    default memory format, ``torch.inference_mode``) — what the exact CAM cannot avoid — with
    glibc's allocator as a script has it, and again inside the heap the engine keeps
    (``cam.engine.heap``), so the engine's gain from its heap is not mistaken for its own;
and a display change's redraw of the grid from cached maps. Each figure is the median of
``RUNS`` runs with their spread (lowest, highest): one run says little on a shared machine. The
engine uncached and the two plain forwards are timed in turn within each of ``PAIRED_RUNS``
rounds, so that their ratios compare code, not the machine's moments.
Roles without weights get random-init networks here (and the report says so): speed does not
depend on the weights' values.
"""
from __future__ import annotations

import copy
import os
import resource
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from cam.engine.engine import CamEngine
from cam.engine.figure import make_figure
from cam.engine.heap import retained_heap
from cam.engine.inputs import CamImage, collect_images
from cam.engine.methods import EXACT
from cam.engine.targets import PREDICTED
from cam.eval.agreement import EVAL_SIZE
from cam.render.grid import compose_grid
from cam.render.style import SCREEN_DPI, RenderStyle
from safe_io.paths import SAMPLE_IMAGES
from scaled_models.zoo import ModelZoo, device_label, measured_cost


def complete_zoo(zoo: ModelZoo) -> tuple[ModelZoo, list[str]]:
    """A copy of ``zoo`` where unavailable columns run random-init networks of their
    architecture (benchmarks only); a column no network stands for (the ResNet ladder's
    compound one) is left out."""
    models, random_init = [], []
    bindings = zoo.family.bindings(zoo.ladder)
    for model in zoo.models:
        if model.available:
            models.append(model)
            continue
        binding = bindings.get(model.key)
        if binding is None or (binding.weights is None and binding.column.spec is None):
            continue
        net = binding.arch.build().eval().requires_grad_(False).to(zoo.device)
        preprocessing = (binding.weights.preprocessing.at_resolution(binding.resolution)
                         if binding.weights is not None
                         else zoo.family.preprocessing(binding.resolution))
        provenance = replace(model.provenance, available=True, source="random init (benchmark)")
        models.append(replace(model, provenance=provenance, net=net,
                              preprocessing=preprocessing,
                              run_params=measured_cost(binding.arch, binding.resolution)[0],
                              run_macs=measured_cost(binding.arch, binding.resolution)[1]))
        random_init.append(model.key)
    return replace(zoo, models=models), random_init


def bench_images(count: int) -> list[CamImage]:
    """``count`` real photos: the bundled samples, repeated as needed but with distinct content
    hashes (a one-pixel change) so no cache can serve one from another."""
    base = collect_images([SAMPLE_IMAGES]).images
    images = []
    for i in range(count):
        src = base[i % len(base)]
        picture = src.image.copy()
        picture.putpixel((0, 0), (i % 256, (i // 256) % 256, 7))
        images.append(CamImage(f"{src.key}-{i}", f"{src.image_id}-{i}", picture))
    return images


RUNS = 3  # runs of each timing: the median is reported, with the spread
PAIRED_RUNS = 5  # rounds of the engine and the plain forwards, timed in turn
RERENDER_RUNS = 7  # a redraw is short: more runs for a steady median
DEFAULT_GRID_ROWS = 6  # the page's first grid: the six bundled photos


@dataclass(frozen=True)
class Spread:
    """Timings (seconds) of repeated runs, in order: their median, lowest and highest."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def text(self, unit: str = "s") -> str:
        """``1.493 s [1.410–1.620, 3 runs]``, or in milliseconds with ``unit="ms"``."""
        scale, digits = (1000, 1) if unit == "ms" else (1, 3)
        return (f"{self.median * scale:.{digits}f} {unit} [{min(self.seconds) * scale:.{digits}f}"
                f"–{max(self.seconds) * scale:.{digits}f}, {len(self.seconds)} runs]")

    def as_json(self) -> dict:
        return {"median": round(self.median, 5), "low": round(min(self.seconds), 5),
                "high": round(max(self.seconds), 5),
                "runs": [round(value, 5) for value in self.seconds]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[], object], device: torch.device, runs: int,
           before: Callable[[], object] = lambda: None) -> Spread:
    """``run`` timed ``runs`` times (``before`` each, untimed)."""
    seconds = []
    for _ in range(runs):
        before()
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return Spread(tuple(seconds))


def _engine_pass(engine: CamEngine, images: list[CamImage]) -> Callable[[], None]:
    def compute() -> None:
        engine.compute(images, EXACT, PREDICTED)

    return compute


def time_engine_cached(engine: CamEngine, images: list[CamImage], runs: int = RUNS) -> Spread:
    """The engine answering from its cache, after a pass that filled it (every column loaded
    and run once: the bench's peak memory is read after this)."""
    compute = _engine_pass(engine, images)
    compute()
    return _timed(compute, engine.device, runs)


def time_engine_as_served(engine: CamEngine, images: list[CamImage]) -> Spread:
    """The engine uncached under the server's allocator settings, which stay for the rest of
    the process (so this is timed last)."""
    from app.memory import configure_allocator

    configure_allocator()
    return _timed(_engine_pass(engine, images), engine.device, RUNS, before=engine.clear_cache)


def plain_forward(zoo: ModelZoo, images: list[CamImage], kept_heap: bool = False
                  ) -> Callable[[], None]:
    """Eager forward of private copies (default memory format), inputs prepared beforehand;
    with ``kept_heap`` inside ``retained_heap`` as each of the engine's computations is."""
    passes = []
    for model in zoo.models:
        net = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format)
        batch = torch.stack([model.preprocessing(i.image) for i in images]).to(zoo.device)
        passes.append((net, batch))

    def forward() -> None:
        with torch.inference_mode(), retained_heap() if kept_heap else nullcontext():
            for net, batch in passes:
                net(batch)

    return forward


def time_engine_against_forward(engine: CamEngine, zoo: ModelZoo, images: list[CamImage],
                                runs: int = PAIRED_RUNS) -> tuple[Spread, Spread, Spread]:
    """(the engine uncached, the plain forward, the plain forward in the kept heap), timed in
    turn within each of ``runs`` rounds, after a warm-up of each. This machine's speed drifts
    within minutes (the same forward took 3.5 s to 4.8 s over six rounds of one process), so
    figures timed one after the other would compare moments, not code; a ratio of figures from
    the same rounds compares code."""
    turns = [(_engine_pass(engine, images), engine.clear_cache),
             (plain_forward(zoo, images), lambda: None),
             (plain_forward(zoo, images, kept_heap=True), lambda: None)]
    for run, _ in turns:
        run()  # warm-up
    seconds: list[list[float]] = [[] for _ in turns]
    for _ in range(runs):
        for (run, before), timings in zip(turns, seconds):
            timings.extend(_timed(run, zoo.device, 1, before=before).seconds)
    engine_spread, forward, forward_kept_heap = (Spread(tuple(t)) for t in seconds)
    return engine_spread, forward, forward_kept_heap


def time_naive_gradcam(zoo: ModelZoo, images: list[CamImage], runs: int = RUNS) -> Spread:
    """What a typical script does: per model, per image, preprocess, build GradCAM, call it."""
    from pytorch_grad_cam import GradCAM

    nets = [(copy.deepcopy(m.net).to(memory_format=torch.contiguous_format).requires_grad_(True),
             m.preprocessing) for m in zoo.models]

    def naive() -> None:
        for net, preprocessing in nets:
            for image in images:
                x = preprocessing(image.image)[None].to(zoo.device)
                with GradCAM(model=net, target_layers=[net.features]) as cam:
                    cam(input_tensor=x, targets=None)

    return _timed(naive, zoo.device, runs)


def time_rerender(engine: CamEngine, images: list[CamImage], runs: int = RERENDER_RUNS
                  ) -> Spread:
    """A display change's redraw (alpha, colormap, normalisation) of a grid whose maps are
    cached, at the page's screen resolution: no model runs; the first drawing of the grid is
    not counted, as on the page."""
    make_figure(engine, images)
    compose_grid(make_figure(engine, images), RenderStyle(dpi=SCREEN_DPI))
    seconds = []
    for i in range(runs):
        style = RenderStyle(alpha=0.3 + 0.05 * i, colormap=("jet", "viridis")[i % 2],
                            normalisation=("per-map", "shared")[i % 2], dpi=SCREEN_DPI)
        start = time.perf_counter()
        compose_grid(make_figure(engine, images), style)
        seconds.append(time.perf_counter() - start)
    return Spread(tuple(seconds))


def time_val_scan(rows: int = 50_000) -> float:
    """Seconds to scan a full-size ILSVRC2012 val annotation file (Kaggle layout, ``rows``
    images with two boxes each): the app reads one when a visitor opens a folder."""
    import tempfile

    from safe_io.imagenet import WNIDS
    from safe_io.imagenet_val import KAGGLE_CSV, open_val_dir

    with tempfile.TemporaryDirectory() as folder:
        lines = [f"ILSVRC2012_val_{n:08d},{WNIDS[n % 1000]} 1 2 30 40 {WNIDS[n % 1000]} 5 6 70 80"
                 for n in range(1, rows + 1)]
        (Path(folder) / KAGGLE_CSV).write_text("ImageId,PredictionString\n" + "\n".join(lines))
        start = time.perf_counter()
        open_val_dir(folder)
        return time.perf_counter() - start


def time_maxboxacc(maps: int = 50) -> float:
    """Seconds for MaxBoxAccV2 over ``maps`` 224 px maps (the reference's 1000 thresholds each)."""
    import cv2
    import numpy as np

    from cam.eval.metrics import maxboxacc_v2

    rng = np.random.default_rng(0)
    cams = [cv2.resize(rng.random((7, 7)).astype(np.float32), (EVAL_SIZE, EVAL_SIZE))
            for _ in range(maps)]
    start = time.perf_counter()
    maxboxacc_v2(cams, [[(40, 50, 180, 200)]] * maps)
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class BenchResult:
    """What ``python -m cam bench`` measured, and on what."""

    device: str
    family: str
    ladder: str
    images: int
    models: list[str]
    random_init: list[str]  # columns timed on random-init networks (no weights here)
    threads: int
    omp_wait_policy: str  # OMP_WAIT_POLICY of this process ("" unset: OpenMP's default)
    engine: Spread
    engine_cached: Spread
    engine_as_served: Spread
    forward: Spread
    forward_kept_heap: Spread
    naive: Spread | None
    rerender: Spread
    peak_rss_mb: float
    val_scan_50k_s: float
    maxboxacc_50_maps_s: float
    first_grid: Spread | None = None  # server start → default grid in Chromium, per start
    first_grid_second: Spread | None = None  # … when the map cache holds a start's maps
    first_grid_skipped: str = ""  # why it was not measured

    @property
    def engine_over_forward(self) -> float:
        return self.engine.median / self.forward.median

    @property
    def engine_over_forward_kept_heap(self) -> float:
        return self.engine.median / self.forward_kept_heap.median

    @property
    def naive_over_engine(self) -> float | None:
        return None if self.naive is None else self.naive.median / self.engine.median

    def as_json(self) -> dict:
        out = {}
        for key, value in self.__dict__.items():
            out[key] = value.as_json() if isinstance(value, Spread) else value
        out["engine_over_forward"] = round(self.engine_over_forward, 3)
        out["engine_over_forward_kept_heap"] = round(self.engine_over_forward_kept_heap, 3)
        ratio = self.naive_over_engine
        out["naive_over_engine"] = None if ratio is None else round(ratio, 2)
        return out


def run_bench(zoo: ModelZoo, count: int = 8, naive: bool = True) -> BenchResult:
    """Every in-process measurement (the first grid is ``benchmarks.first_grid``'s)."""
    zoo, random_init = complete_zoo(zoo)
    images = bench_images(count)
    engine = CamEngine(zoo, batch_size=max(count, 1))
    cached = time_engine_cached(engine, images)
    rss_mb = peak_rss_mb()  # all five models loaded and run; before the baselines' own copies
    uncached, forward, forward_kept_heap = time_engine_against_forward(engine, zoo, images)
    naive_spread = time_naive_gradcam(zoo, images) if naive else None
    rerender = time_rerender(engine, images[:DEFAULT_GRID_ROWS])
    val_scan_s, maxboxacc_s = round(time_val_scan(), 3), round(time_maxboxacc(), 3)
    as_served = time_engine_as_served(engine, images)
    return BenchResult(device_label(zoo.device), zoo.family.name, zoo.ladder.name, count,
                       [m.key for m in zoo.models], random_init, torch.get_num_threads(),
                       os.environ.get("OMP_WAIT_POLICY", ""),
                       uncached, cached, as_served, forward, forward_kept_heap, naive_spread,
                       rerender, round(rss_mb, 1), val_scan_s, maxboxacc_s)


def _wait_policy(setting: str) -> str:
    """How this process's OpenMP threads waited, in words: the server lets them sleep
    (``app.threads``), so its engine is timed as served only under the server's policy."""
    from app.threads import SERVER_OMP_WAIT_POLICY as SERVER

    shown = {"": f"spin, then sleep (OpenMP's default; the server sets {SERVER})",
             SERVER: f"as the server has them ({SERVER})"}
    return shown.get(setting.upper(), f"OMP_WAIT_POLICY={setting}")


def format_report(result: BenchResult) -> str:
    """The report as printed: each timing's median with its spread, beside its target."""
    lines = [
        f"scalecam bench — {result.images} images × {len(result.models)} models "
        f"({result.family} family, {result.ladder} ladder) on {result.device}, "
        f"{result.threads} threads; median [lowest–highest] of the runs",
        f"  random-init (no weights here; speed is the same): "
        f"{', '.join(result.random_init) or 'none'}",
        f"  (a) engine, exact CAM, uncached : {result.engine.text()}",
        f"      engine, from cache          : {result.engine_cached.text('ms')}",
        f"      engine as the server runs it: {result.engine_as_served.text()}   "
        "(no kept heap, large blocks mmap'd; OpenMP's threads "
        f"{_wait_policy(result.omp_wait_policy)})",
        f"  (c) plain batched forward       : {result.forward.text()}",
        f"      … in the engine's kept heap : {result.forward_kept_heap.text()}",
    ]
    if result.naive is not None:
        lines.append(f"  (b) naive GradCAM per image     : {result.naive.text()}")
    lines.append(f"  engine / forward  = {result.engine_over_forward:.2f}   (target ≤ 0.4 on CPU); "
                 "against the forward in the kept heap: "
                 f"{result.engine_over_forward_kept_heap:.2f}")
    if result.naive_over_engine is not None:
        lines.append(f"  naive / engine    = {result.naive_over_engine:.1f}   (target ≥ 5)")
    lines += [
        f"  redraw after a display change ({min(result.images, DEFAULT_GRID_ROWS)}-row grid at "
        f"{SCREEN_DPI} DPI, maps cached): "
        f"{result.rerender.text('ms')}   (target ≤ 25 ms)",
        f"  peak RSS, every column loaded and run: {result.peak_rss_mb:.0f} MB   "
        "(target < 2048 on CPU)",
        f"  scan a 50,000-image val annotation file: {result.val_scan_50k_s:.2f} s",
        f"  MaxBoxAccV2 over 50 maps: {result.maxboxacc_50_maps_s:.2f} s",
    ]
    if result.first_grid is not None:
        runs = ", ".join(f"{value:.1f}" for value in result.first_grid.seconds)
        lines.append(f"  first grid, streamlit run → default grid in Chromium: "
                     f"{result.first_grid.text()} (each start: {runs} s)   (target ≤ 10 s)")
        if result.first_grid_second is not None:
            runs = ", ".join(f"{value:.1f}" for value in result.first_grid_second.seconds)
            lines.append(f"      on a second start (maps kept on disk): "
                         f"{result.first_grid_second.text()} (each start: {runs} s)")
    elif result.first_grid_skipped:
        lines.append(f"  first grid: not measured ({result.first_grid_skipped})")
    return "\n".join(lines)
