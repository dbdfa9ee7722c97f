"""`streamlit run app/main.py`: the server (Streamlit's ``st.App``), whose sessions run the page
(``app/session.py``), started from the checkout. While the first browser loads the page, the
server already imports the page's modules, loads the first screen's models and computes its
grid (``app.warm_up``).

The app is an application, not an installed package (``pip install`` installs the libraries
only), and Streamlit puts this folder, not the checkout, on ``sys.path``; the checkout goes
first so that ``app``, ``cam``, ``scaled_models`` and ``safe_io`` are the ones beside this file.
"""
import sys
from pathlib import Path

CHECKOUT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [CHECKOUT]:
    sys.path.insert(0, CHECKOUT)

import streamlit as st  # noqa: E402 - the checkout must be on sys.path first

from app.warm_up import warm_up  # noqa: E402

app = st.App("session.py", lifespan=warm_up)
