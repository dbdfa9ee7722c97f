"""What every plotly chart of the app needs first."""
from __future__ import annotations


def pandas_ready() -> None:
    """Import pandas before plotly needs it. plotly takes pandas from ``sys.modules`` when it is
    there, even half-imported by another session's thread, and then fails with "partially
    initialized module 'pandas'" (seen with 8 concurrent sessions); a real import waits for the
    other thread to finish. Not done at start-up: the first grid does not need pandas."""
    import pandas  # noqa: F401
