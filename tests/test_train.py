"""`python -m scaled_models.train` on a tiny ImageFolder: train, evaluate, checkpoint, resume,
use the checkpoint in `cam figure`, and a 2-process gloo run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from .conftest import REPO, SAMPLE_IMAGES

WNIDS = ("n01440764", "n01443537", "n01484850")


@pytest.fixture(scope="module")
def tiny_imagenet(tmp_path_factory) -> Path:
    """3 wnid classes, 8 train + 4 val 64 px images each, colour-coded by class."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("val", 4)):
        for k, wnid in enumerate(WNIDS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.zeros((64, 64, 3))
                pixels[..., k] = 200
                pixels += rng.normal(0, 30, pixels.shape)
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                    folder / f"{i}.jpg")
    return root


def _run(args, **extra_env):
    env = dict(os.environ, SCALECAM_OFFLINE="1", **extra_env)
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _train(data, out, *extra):
    return _run(["-m", "scaled_models.train", "--model", "width", "--family", "lite",
                 "--recipe", "distill", "--data", str(data), "--out", str(out),
                 "--image-size", "64", "--epochs", "2", "--batch-size", "8", "--workers", "0",
                 *extra])


def test_distill_trains_checkpoints_and_figure_uses_it(tiny_imagenet, tmp_path):
    out = tmp_path / "ckpt"
    proc = _train(tiny_imagenet, out)
    assert "epoch 2/2" in proc.stdout and "images/s" in proc.stdout
    meta = json.loads((out / "lite" / "width.json").read_text())
    assert meta["architecture"] == {"width": 2.0, "depth": 1.0} and meta["epoch"] == 2
    assert meta["recipe"] == "distill" and "Lite2" in meta["teacher"]
    assert 0.0 <= meta["val_top1"] <= 100.0 and "12 val images" in meta["data"]
    log = (out / "logs" / "lite-width" / "epochs.csv").read_text().splitlines()
    assert log[0].startswith("epoch,loss") and len(log) == 3

    fig = tmp_path / "fig.png"
    _run(["-m", "cam", "figure", "--family", "lite", "--checkpoints", str(out), "--images",
          str(SAMPLE_IMAGES / "chelsea.png"), "--out", str(fig)])
    manifest = json.loads(fig.with_suffix(".json").read_text())
    width = next(m for m in manifest["models"] if m["key"] == "width")
    assert width["available"] and width["trained_for_config"]
    assert width["top1"] == meta["val_top1"] and width["weights_source"].startswith("checkpoint")
    assert manifest["images"][0]["panels"]["width"]["available"]


def test_resume_mid_run_gives_the_same_weights(tiny_imagenet, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    _train(tiny_imagenet, straight)
    _train(tiny_imagenet, resumed, "--stop-after", "1")
    assert json.loads((resumed / "lite" / "width.json").read_text())["epoch"] == 1
    proc = _train(tiny_imagenet, resumed, "--resume")
    assert "resumed from" in proc.stdout
    a = load_file(str(straight / "lite" / "width.safetensors"))
    b = load_file(str(resumed / "lite" / "width.safetensors"))
    assert a.keys() == b.keys()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-6


def test_paper_recipe_smoke(tiny_imagenet, tmp_path):
    proc = _run(["-m", "scaled_models.train", "--model", "baseline", "--family", "lite",
                 "--recipe", "paper", "--data", str(tiny_imagenet), "--out", str(tmp_path),
                 "--image-size", "64", "--epochs", "1", "--batch-size", "8", "--workers", "0",
                 "--limit-steps", "2"])
    meta = json.loads((tmp_path / "lite" / "baseline.json").read_text())
    assert meta["recipe"] == "paper" and meta["ema"] and meta["init"].startswith("random init")
    assert "epoch 1/1" in proc.stdout


def test_two_process_gloo_run(tiny_imagenet, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    _train(tiny_imagenet, single, "--epochs", "1")
    _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
          "-m", "scaled_models.train", "--model", "width", "--family", "lite", "--recipe",
          "distill", "--data", str(tiny_imagenet), "--out", str(double), "--image-size", "64",
          "--epochs", "1", "--batch-size", "4", "--workers", "0"], OMP_NUM_THREADS="1")
    a = json.loads((single / "lite" / "width.json").read_text())
    b = json.loads((double / "lite" / "width.json").read_text())
    assert a.keys() == b.keys() and b["config"]["processes"] == 2
    assert b["config"]["batch_size"] == 8  # 2 processes × 4
