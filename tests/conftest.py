"""Shared fixtures: the real ImageNet val sample beside the checkout, and models loaded once."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCALECAM_SHARED", REPO.parent / "shared"))
VAL_SAMPLE = SHARED / "imagenet_val_sample"
SAMPLE_IMAGES = REPO / "sample_images"

# Tests never try the network: torchvision weights count only if already in the hub cache.
os.environ.setdefault("SCALECAM_OFFLINE", "1")
# No test writes computed maps into the home folder; the tests of that store give it a folder.
os.environ.setdefault("SCALECAM_MAP_CACHE", "off")


@pytest.fixture(scope="session")
def val_sample() -> Path:
    if not (VAL_SAMPLE / "labels.csv").is_file():
        pytest.skip(f"shared ImageNet sample not found at {VAL_SAMPLE}")
    return VAL_SAMPLE


@pytest.fixture(scope="session")
def lite_zoo(tmp_path_factory):
    """The offline Lite family with an empty checkpoints root (so nothing local leaks in)."""
    from scaled_models import get_family, load_zoo

    return load_zoo(get_family("lite"), tmp_path_factory.mktemp("no-checkpoints"), device="cpu")


@pytest.fixture(scope="session")
def lite_engine(lite_zoo):
    from cam.engine.engine import CamEngine

    return CamEngine(lite_zoo)


def heavy_step_held_elsewhere() -> bool:
    """Whether another thread holds ``safe_io.heavy.HEAVY_STEP`` now: what a heavy step about to
    start would find (asked from a fresh thread, since the lock is reentrant)."""
    from safe_io.heavy import HEAVY_STEP

    taken: list[bool] = []

    def probe() -> None:
        got = HEAVY_STEP.acquire(blocking=False)
        if got:
            HEAVY_STEP.release()
        taken.append(not got)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return taken[0]
