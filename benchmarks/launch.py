"""The real app in a subprocess and a headless Chromium to drive it: one launcher for the serve
benchmark and tests/test_browser.py, so both see the server a visitor would (offline, an empty
checkpoints folder, headless, bound to 127.0.0.1) and the same browser flags."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # selenium is imported late: the module imports without it
    from selenium.webdriver.remote.webdriver import WebDriver

REPO = Path(__file__).resolve().parents[1]


def browser_available() -> bool:
    """Debian's chromium and chromium-driver are installed (.ci/run installs them)."""
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def streamlit_server(workdir: Path, extra_env: dict[str, str] | None = None,
                     start_timeout: float = 180) -> Iterator[Server]:
    """`streamlit run app/main.py` as a fresh visitor meets it: offline, an empty checkpoints
    folder (only the shipped weights), no configured validation folder, an empty map cache of
    its own, headless, on 127.0.0.1 only, not watching the checkout (an edit made while a
    benchmark runs must not reload its modules); ``extra_env`` is added to its environment.
    Output goes to a file (a pipe nobody reads would block the server once full). The server
    gets its own process group, and the whole group is ended on exit, whatever happened."""
    port = free_port()
    env = {**os.environ, "SCALECAM_OFFLINE": "1", "SCALECAM_CHECKPOINTS": str(workdir / "none"),
           "SCALECAM_IMAGENET_VAL": "", "SCALECAM_MAP_CACHE": str(workdir / f"maps-{port}"),
           **(extra_env or {})}  # extra_env may override these
    log = workdir / f"streamlit-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n"
                                   f"{server.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit not healthy after {start_timeout:.0f} s")
            try:
                with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield server
    finally:
        _end_group(proc)


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group, SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    """One headless Chromium with its profile in ``profile``. Background windows are not
    throttled: every session window must keep its websocket busy. Each window is a separate
    Streamlit session; quitting closes them all. Downloads land in ``profile/downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.add_experimental_option("prefs", {
        "download.default_directory": str(profile / "downloads"),
        "download.prompt_for_download": False,
        # without this Chromium lets a page's first download through and silently blocks the
        # next ones (its "download multiple files" prompt, which headless never shows)
        "profile.default_content_setting_values.automatic_downloads": 1})
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1600,2400",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        except Exception:  # noqa: BLE001 - the browser may already be gone; stop the driver
            driver.service.stop()


