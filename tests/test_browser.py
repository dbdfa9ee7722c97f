"""One real browser: `streamlit run app/main.py` driven by headless Chromium (selenium), started
by the serve benchmark's launcher and found by the words the app exports (app/labels.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image

from app import labels
from benchmarks.launch import browser_available, chromium, streamlit_server
from benchmarks.serve import maps_ready, page_error, status_text, upload_files, wait_until

from .conftest import SAMPLE_IMAGES

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    not browser_available(),
    reason="Debian chromium + chromium-driver are not installed (.ci/run installs them)")]


@pytest.fixture
def server(tmp_path):
    with streamlit_server(tmp_path) as running:
        yield running.url


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path / "chrome") as driver:
        yield driver


def _screenshot(driver, path: Path) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1600, max(2400, min(int(height) + 200, 8000)))
    time.sleep(1)
    driver.save_screenshot(str(path))


def test_grid_then_upload_in_a_real_browser(server, browser, tmp_path):
    shots = Path(os.environ.get("SCALECAM_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser.get(server)
    wait_until(lambda: maps_ready(browser), 240, "the default grid")
    _screenshot(browser, shots / "01_default_grid.png")

    photo = tmp_path / "my photo — chat.jpg"  # spaces and unicode in the name, new content
    Image.open(SAMPLE_IMAGES / "chelsea.png").convert("RGB").transpose(
        Image.Transpose.FLIP_LEFT_RIGHT).save(photo, quality=90)
    bundled = len([p for p in SAMPLE_IMAGES.iterdir() if p.suffix in (".png", ".jpg")])
    upload_files(browser, [photo])
    wait_until(lambda: maps_ready(browser)
               and labels.images_shown(bundled + 1) in status_text(browser), 240,
               "the grid with the upload")
    assert page_error(browser) is None
    _screenshot(browser, shots / "02_after_upload.png")
