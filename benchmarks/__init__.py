"""Measurements, not library: they print seconds and bytes of this machine and assert nothing.

- ``engine``: ``python -m cam bench``: maps per second of the CAM engine, a bare forward pass,
  MaxBoxAccV2's speed;
- ``serve``: ``python -m cam bench --serve``: the Streamlit server's memory under concurrent
  browser sessions;
- ``launch``: the real app in a subprocess and headless Chromium, shared by ``serve`` and
  tests/test_browser.py.
"""
