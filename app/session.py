"""What every browser session runs: the page (``app.page``), served by ``app/main.py``'s
``st.App`` (``AppTest`` runs this file too)."""
from app.page import main

main()
