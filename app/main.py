"""`streamlit run app/main.py`: the server (Streamlit's ``st.App``), whose sessions run the page
(``app/session.py``), started from the checkout. While the first browser loads the page, the
server already imports the page's modules, loads the first screen's models and computes its
grid (``app.warm_up``).

Before anything imports torch, the server lets OpenMP's threads wait for work asleep
(``app.threads``): they share the cores with the visitor's browser and other sessions.

The app is an application, not an installed package (``pip install`` installs the libraries
only), and Streamlit puts this folder, not the checkout, on ``sys.path``; the checkout goes
first so that ``app``, ``cam``, ``scaled_models`` and ``safe_io`` are the ones beside this file.
"""
import sys
from pathlib import Path

CHECKOUT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [CHECKOUT]:
    sys.path.insert(0, CHECKOUT)

from app.threads import let_openmp_threads_sleep  # noqa: E402 - after the checkout is on sys.path

let_openmp_threads_sleep()  # before torch loads (the warm-up imports it)

import streamlit as st  # noqa: E402

from app.warm_up import warm_up  # noqa: E402

app = st.App("session.py", lifespan=warm_up)
