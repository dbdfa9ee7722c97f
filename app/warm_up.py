"""Prepare the first page while the browser loads it: a server started with
``streamlit run app/main.py`` imports the page's modules (torch among them: about 2.5 s here),
loads the first screen's models and computes its grid's maps in a background thread at
start-up, so a visitor's first session finds them ready, or waits only for what remains (the
engine makes a session asking for maps being computed wait for them rather than compute them
twice).

Nothing here is the page's own: the first screen is what the page shows before any choice (the
sidebar's ``auto`` family on the default ladder, nothing brought, the exact CAM of the predicted
class; the bundled photos), with the operator's settings, and the engine and its map cache are
the ones every session shares (``resources``); a failure is logged and left for the page, which
reports it in place."""
from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def prepare_first_screen() -> None:
    """Import, load and compute what the first page needs (``warm_up`` runs it in a thread)."""
    try:
        from app.memory import preparing_first_screen

        with preparing_first_screen():  # its maps keep the heap, whoever connects meanwhile
            import app.page  # noqa: F401 - every module the page imports, torch among them
            from app.resources import sample_images
            from app.sidebar import first_screen_engine

            first_screen_engine().compute(sample_images())
    except Exception:  # noqa: BLE001 - the page loads it again and shows what went wrong
        logging.getLogger(__name__).exception("could not prepare the first screen")


THREAD = "scalecam-warm-up"


def _not_from_warm_up(record: logging.LogRecord) -> bool:
    """Streamlit warns of a cache used outside a page ("missing ScriptRunContext"); here that
    is by design."""
    return threading.current_thread().name != THREAD


@asynccontextmanager
async def warm_up(_app: Any) -> AsyncIterator[None]:
    """``st.App``'s lifespan: start preparing the first page, and serve at once."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        _not_from_warm_up)
    threading.Thread(target=prepare_first_screen, name=THREAD, daemon=True).start()
    yield
