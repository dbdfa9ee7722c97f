"""`streamlit run app/main.py`: the server (Streamlit's ``st.App``), whose sessions run the page
(``app/session.py``), started from the checkout. While the first browser loads the page, the
server already imports the page's modules, loads the first screen's models and computes its
grid (``app.warm_up``).

The server shares this machine's cores with the visitor's browser (when both run here) and
with its other sessions, so OpenMP's threads wait for work asleep rather than spinning
(``OMP_WAIT_POLICY=PASSIVE``, unless the operator set it): a spinning thread holds a core the
browser or another session needed, and a thread preempted inside a parallel region leaves the
other spinning at its barrier. libgomp reads it once, when torch loads it, which happens after
this file runs. With the browser drawing the page beside it, the first screen's 18 maps took
2.0-2.1 s instead of 3.1-3.6 s (the process's CPU time 1.9-2.0 s instead of 3.6-4.3 s); a lone
computation with nothing beside it takes about 20 % longer asleep (the command line keeps
OpenMP's default).

The app is an application, not an installed package (``pip install`` installs the libraries
only), and Streamlit puts this folder, not the checkout, on ``sys.path``; the checkout goes
first so that ``app``, ``cam``, ``scaled_models`` and ``safe_io`` are the ones beside this file.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

CHECKOUT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [CHECKOUT]:
    sys.path.insert(0, CHECKOUT)

import streamlit as st  # noqa: E402 - the checkout must be on sys.path first

from app.warm_up import warm_up  # noqa: E402

app = st.App("session.py", lifespan=warm_up)
