"""What every plotly chart of the app needs first."""
from __future__ import annotations


def pandas_ready() -> None:
    """Import pandas before plotly needs it. plotly never imports pandas but takes it from
    ``sys.modules`` when it is there, even half-imported by another session's thread, and then
    fails with "partially initialized module 'pandas'" (seen with 8 concurrent sessions). The
    gradient CAM methods import it: pytorch_grad_cam imports sklearn, which imports pandas. A
    real import waits for the other thread to finish; checking ``sys.modules`` first would not,
    as the other import can start while the chart is being built. Not done at start-up: the
    first grid does not need pandas."""
    import pandas  # noqa: F401
