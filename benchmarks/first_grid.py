"""The seconds a visitor waits for the first grid: from ``streamlit run app/main.py`` (through
the project's own launcher, as the serve benchmark and the browser test start it) to the default
grid on the page in headless Chromium, once per fresh server.

The browser is started before the clock (a visitor's is already open) and kept between starts,
as a visitor's would be; each start is a new server process, so nothing the previous one loaded
or computed in memory is reused. Two kinds of start are timed: a first start, with an empty map
cache on disk (``SCALECAM_MAP_CACHE``: a folder of its own per start), and a second start, whose
map cache holds what a first start computed (the server restarted).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.engine import Spread
from benchmarks.launch import browser_available, chromium, streamlit_server
from benchmarks.serve import maps_ready, page_error, wait_until

FIRST_GRID_TIMEOUT_S = 300


@dataclass(frozen=True)
class FirstGrid:
    """Seconds from a fresh server's start to the default grid, per start."""

    first_start: Spread  # empty map cache
    second_start: Spread  # the map cache a first start left


def time_first_grid(starts: int = 3, server_env: dict[str, str] | None = None) -> FirstGrid:
    """``starts`` first starts, then ``starts`` second starts (RuntimeError naming what the
    page showed if one failed)."""
    if not browser_available():
        raise RuntimeError("Chromium and chromedriver are not installed "
                           "(apt-get install chromium chromium-driver)")
    with tempfile.TemporaryDirectory(prefix="scalecam-first-grid-") as folder:
        work = Path(folder)
        with chromium(work / "chrome") as driver:
            def start(maps: Path) -> float:
                began = time.monotonic()
                env = {**(server_env or {}), "SCALECAM_MAP_CACHE": str(maps)}
                with streamlit_server(work, env) as server:
                    driver.get(server.url)
                    wait_until(lambda: page_error(driver) or maps_ready(driver),
                               FIRST_GRID_TIMEOUT_S, "the first grid")
                    error = page_error(driver)
                    if error:
                        raise RuntimeError(f"the page failed: {error}\n{server.log_tail()}")
                    return time.monotonic() - began

            first = [start(work / f"maps-{n}") for n in range(starts)]
            second = [start(work / "maps-0") for _ in range(starts)]
    return FirstGrid(Spread(tuple(first)), Spread(tuple(second)))
