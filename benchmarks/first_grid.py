"""The seconds a visitor waits for the first grid: from ``streamlit run app/main.py`` (through
the project's own launcher, as the serve benchmark and the browser test start it) to the default
grid on the page in headless Chromium, once per fresh server.

The browser is started before the clock (a visitor's is already open) and kept between starts,
as a visitor's would be; each start is a new server process, so nothing the previous one loaded
or computed in memory is reused.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.engine import Spread
from benchmarks.launch import browser_available, chromium, streamlit_server
from benchmarks.serve import maps_ready, page_error, wait_until

FIRST_GRID_TIMEOUT_S = 300


def time_first_grid(starts: int = 3, server_env: dict[str, str] | None = None) -> Spread:
    """Seconds from the server's start to the default grid, for each of ``starts`` fresh
    servers (RuntimeError naming what the page showed if it failed)."""
    if not browser_available():
        raise RuntimeError("Chromium and chromedriver are not installed "
                           "(apt-get install chromium chromium-driver)")
    seconds = []
    with tempfile.TemporaryDirectory(prefix="scalecam-first-grid-") as folder:
        work = Path(folder)
        with chromium(work / "chrome") as driver:
            for _ in range(starts):
                began = time.monotonic()
                with streamlit_server(work, server_env) as server:
                    driver.get(server.url)
                    wait_until(lambda: page_error(driver) or maps_ready(driver),
                               FIRST_GRID_TIMEOUT_S, "the first grid")
                    error = page_error(driver)
                    if error:
                        raise RuntimeError(f"the page failed: {error}\n{server.log_tail()}")
                    seconds.append(time.monotonic() - began)
    return Spread(tuple(seconds))
