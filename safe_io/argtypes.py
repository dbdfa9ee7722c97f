"""Argument types shared by every scalecam command line, so each refuses the same bad value with
the same message before anything is computed."""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable


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


def comma_separated(choices: Iterable[str], what: str) -> Callable[[str], list[str]]:
    """A type for "a,b,c" where each item is one of ``choices`` (at least one)."""
    allowed = tuple(choices)

    def parse(text: str) -> list[str]:
        chosen = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in chosen if item not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown {what}(s) {', '.join(unknown) or repr(text)}; choose from "
                f"{', '.join(allowed)}")
        return chosen
    return parse


def assignment(text: str) -> tuple[str, str]:
    """NAME=VALUE, as for an environment variable."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, got {text!r}")
    return name, value
