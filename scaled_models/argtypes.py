"""Argument types shared by every scalecam command line, so each refuses the same bad value with
the same message before anything is computed."""
from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A whole number of at least 1 (images, steps, sessions, batch sizes)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of at least 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text!r}")
    return value


def assignment(text: str) -> tuple[str, str]:
    """NAME=VALUE, as for an environment variable."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, got {text!r}")
    return name, value
