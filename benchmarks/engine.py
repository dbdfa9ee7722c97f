"""``python -m cam bench``: the engine against the two baselines users would otherwise have.

(a) scalecam's engine, exact CAM, uncached (after a warm-up) and from its cache;
(b) the naive pytorch-grad-cam loop: one ``GradCAM`` per model per image;
(c) the bare forward passes of the same models on the same batches, written plainly (eager,
    default memory format, ``torch.inference_mode``) — what the exact CAM cannot avoid.
Roles without weights get random-init networks here (and the report says so): speed does not
depend on the weights' values.
"""
from __future__ import annotations

import copy
import resource
import time
from dataclasses import replace
from pathlib import Path

import torch

from cam.engine.engine import CamEngine
from cam.engine.figure import make_figure
from cam.engine.inputs import CamImage, collect_images
from cam.engine.methods import EXACT
from cam.engine.targets import PREDICTED
from cam.eval.agreement import EVAL_SIZE
from cam.render.grid import compose_grid
from cam.render.style import RenderStyle
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_engine(engine: CamEngine, images: list[CamImage]) -> tuple[float, float]:
    """(uncached seconds after a warm-up pass, cached seconds)."""
    engine.compute(images, EXACT, PREDICTED)
    engine.clear_cache()
    _sync(engine.device)
    start = time.perf_counter()
    engine.compute(images, EXACT, PREDICTED)
    _sync(engine.device)
    uncached = time.perf_counter() - start
    start = time.perf_counter()
    engine.compute(images, EXACT, PREDICTED)
    return uncached, time.perf_counter() - start


def time_plain_forward(zoo: ModelZoo, images: list[CamImage]) -> float:
    """Eager forward of private copies (default memory format), inputs prepared beforehand."""
    runs = []
    for model in zoo.models:
        net = copy.deepcopy(model.net).to(memory_format=torch.contiguous_format)
        batch = torch.stack([model.preprocessing(i.image) for i in images]).to(zoo.device)
        runs.append((net, batch))
    with torch.inference_mode():
        for net, batch in runs:  # warm-up
            net(batch)
        _sync(zoo.device)
        start = time.perf_counter()
        for net, batch in runs:
            net(batch)
        _sync(zoo.device)
    return time.perf_counter() - start


def time_naive_gradcam(zoo: ModelZoo, images: list[CamImage]) -> float:
    """What a typical script does: per model, per image, preprocess, build GradCAM, call it."""
    from pytorch_grad_cam import GradCAM

    nets = [(copy.deepcopy(m.net).to(memory_format=torch.contiguous_format).requires_grad_(True),
             m.preprocessing) for m in zoo.models]
    start = time.perf_counter()
    for net, preprocessing in nets:
        for image in images:
            x = preprocessing(image.image)[None].to(zoo.device)
            with GradCAM(model=net, target_layers=[net.features]) as cam:
                cam(input_tensor=x, targets=None)
    _sync(zoo.device)
    return time.perf_counter() - start


def time_rerender(engine: CamEngine, images: list[CamImage], repeats: int = 5) -> float:
    """Milliseconds to redraw a grid from cached maps (new alpha/colormap): no model runs."""
    make_figure(engine, images)
    best = float("inf")
    for i in range(repeats):
        style = RenderStyle(alpha=0.3 + 0.1 * i, colormap=("jet", "viridis")[i % 2], dpi=100)
        start = time.perf_counter()
        compose_grid(make_figure(engine, images), style)
        best = min(best, time.perf_counter() - start)
    return best * 1000


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


def run_bench(zoo: ModelZoo, count: int = 8, naive: bool = True) -> dict:
    """All measurements in one dict (the ``--json`` output)."""
    zoo, random_init = complete_zoo(zoo)
    images = bench_images(count)
    engine = CamEngine(zoo, batch_size=max(count, 1))
    engine_s, cached_s = time_engine(engine, images)
    rss_mb = peak_rss_mb()  # all five models loaded and run; before the baselines' own copies
    forward_s = time_plain_forward(zoo, images)
    naive_s = time_naive_gradcam(zoo, images) if naive else None
    rerender_ms = time_rerender(engine, images[:4])
    scan_s, maxbox_s = time_val_scan(), time_maxboxacc()
    return {
        "device": device_label(zoo.device), "family": zoo.family.name, "images": count,
        "models": [m.key for m in zoo.models], "random_init": random_init,
        "threads": torch.get_num_threads(),
        "engine_s": round(engine_s, 4), "engine_cached_s": round(cached_s, 5),
        "forward_s": round(forward_s, 4),
        "naive_s": round(naive_s, 4) if naive_s is not None else None,
        "engine_over_forward": round(engine_s / forward_s, 3),
        "naive_over_engine": round(naive_s / engine_s, 2) if naive_s is not None else None,
        "rerender_ms": round(rerender_ms, 2), "peak_rss_mb": round(rss_mb, 1),
        "val_scan_50k_s": round(scan_s, 3), "maxboxacc_50_maps_s": round(maxbox_s, 3),
    }


def format_report(result: dict) -> str:
    lines = [
        f"scalecam bench — {result['images']} images × {len(result['models'])} models "
        f"({result['family']} family) on {result['device']}, {result['threads']} threads",
        f"  random-init (no weights here; speed is the same): "
        f"{', '.join(result['random_init']) or 'none'}",
        f"  (a) engine, exact CAM, uncached : {result['engine_s']:.3f} s",
        f"      engine, from cache          : {result['engine_cached_s'] * 1000:.2f} ms",
        f"  (c) plain batched forward       : {result['forward_s']:.3f} s",
    ]
    if result["naive_s"] is not None:
        lines.append(f"  (b) naive GradCAM per image     : {result['naive_s']:.3f} s")
    lines += [
        f"  engine / forward  = {result['engine_over_forward']:.2f}   (target ≤ 0.7 on CPU)",
    ]
    if result["naive_over_engine"] is not None:
        lines.append(f"  naive / engine    = {result['naive_over_engine']:.1f}   (target ≥ 5)")
    lines += [
        f"  re-render 5×4 grid from cache: {result['rerender_ms']:.1f} ms   (target < 50)",
        f"  peak RSS, five models loaded and run: {result['peak_rss_mb']:.0f} MB   "
        "(target < 2048 on CPU)",
        f"  scan a 50,000-image val annotation file: {result['val_scan_50k_s']:.2f} s",
        f"  MaxBoxAccV2 over 50 maps: {result['maxboxacc_50_maps_s']:.2f} s",
    ]
    return "\n".join(lines)
