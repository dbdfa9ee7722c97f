"""An export's file is made as the server's one heavy step (#31): a 36-photo grid at print DPI
takes hundreds of megabytes while drawn, so it must not add up with a gradient batch or a
ladder's load running for another visitor."""
from __future__ import annotations

import threading

import pytest

from app.export_view import _released
from safe_io.heavy import HEAVY_STEP


def _free_for_another_thread() -> bool:
    result = []

    def probe() -> None:
        got = HEAVY_STEP.acquire(blocking=False)
        result.append(got)
        if got:
            HEAVY_STEP.release()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result[0]


def test_a_download_is_made_holding_the_heavy_step_and_lets_it_go_even_when_it_fails():
    seen = []
    assert _released(lambda: seen.append(_free_for_another_thread()) or b"png")() == b"png"
    assert seen == [False] and _free_for_another_thread()

    def fails() -> bytes:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _released(fails)()
    assert _free_for_another_thread()
