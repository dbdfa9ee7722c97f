"""Which device a model runs on, checked where it is named (``--device``, ``compare(device=)``)
so that a device this machine lacks is a message before any model loads, not a driver's
traceback from inside the first ``.to()``."""
from __future__ import annotations

import torch


def usable_device(requested: str) -> torch.device:
    """The device ``requested`` names, if this machine has it: ``cpu``, ``cuda``, ``cuda:N``
    or ``mps``. Raises ``ValueError`` saying which devices exist otherwise, before any model
    loads (torch would fail later, inside a model's first ``.to()``)."""
    text = str(requested).strip()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {text!r} is not one of cpu, cuda, cuda:N, mps")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ValueError(f"device {text!r}: this machine has no CUDA GPU that torch can "
                             "use; use cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {text!r}: this machine has {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                     and torch.backends.mps.is_available()):
        raise ValueError(f"device {text!r}: Apple's MPS is not available here; use cpu")
    return device
