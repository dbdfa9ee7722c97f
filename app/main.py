"""`streamlit run app/main.py`: the page (``app.page``), run from the checkout.

The app is an application, not an installed package (``pip install`` installs the libraries
only), and Streamlit puts this folder, not the checkout, on ``sys.path``; the checkout goes
first so that ``app``, ``cam``, ``scaled_models`` and ``safe_io`` are the ones beside this file.
"""
import sys
from pathlib import Path

CHECKOUT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [CHECKOUT]:
    sys.path.insert(0, CHECKOUT)

from app.page import main  # noqa: E402 - the checkout must be on sys.path first

main()
