"""One real browser: `streamlit run app/main.py` driven by headless Chromium (selenium)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from .conftest import REPO, SAMPLE_IMAGES

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Debian chromium + chromium-driver are not installed (.ci/run installs them)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, SCALECAM_OFFLINE="1", SCALECAM_CHECKPOINTS=str(tmp_path / "none"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1600,2400",
                 f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for the page")


def _status_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR,
                                                         "[data-testid='stExpander']"))


def _screenshot(driver, path: Path) -> None:
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1600, max(2400, min(int(height) + 200, 8000)))
    time.sleep(1)
    driver.save_screenshot(str(path))


def test_grid_then_upload_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("SCALECAM_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser.get(server)
    grid = "[data-testid='stImage'] img"
    _wait(browser, lambda: "Maps ready" in _status_text(browser)
          and browser.find_elements(By.CSS_SELECTOR, grid))
    _screenshot(browser, shots / "01_default_grid.png")

    browser.find_element(By.XPATH, "//*[@role='tab'][normalize-space()='Upload']").click()
    photo = tmp_path / "my photo — chat.jpg"  # spaces and unicode in the name, new content
    Image.open(SAMPLE_IMAGES / "chelsea.png").convert("RGB").transpose(
        Image.Transpose.FLIP_LEFT_RIGHT).save(photo, quality=90)
    browser.find_element(By.CSS_SELECTOR, "input[type='file']").send_keys(str(photo))
    _wait(browser, lambda: "7 images" in _status_text(browser)
          and browser.find_elements(By.CSS_SELECTOR, grid))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    _screenshot(browser, shots / "02_after_upload.png")
