"""Argument types shared by every scalecam command line (``python -m cam``, ``python -m
scaled_models``, the trainer, the benchmarks), so each refuses the same bad value with the same
message before anything is computed: a number out of its range, NaN or infinity, a word where a
number belongs, an empty value. ``checked`` turns a library's own check (a ``ValueError``) into
one: the libraries know no argparse."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def checked(check: Callable[[str], T], name: str) -> Callable[[str], T]:
    """An argument type from a library function that raises ``ValueError`` on a bad value."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name
    return parse


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """A type for a whole number from ``low`` to ``high`` (``None``: no upper bound)."""
    span = (f"a whole number from {low} to {high}" if high is not None
            else f"a whole number of at least {low}")

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {span}, got {text!r}")
        return value
    parse.__name__ = span
    return parse


def finite_number(low: float, high: float | None = None, *, low_open: bool = False,
                  high_open: bool = False) -> Callable[[str], float]:
    """A type for a finite number between ``low`` and ``high`` (``None``: no upper bound);
    ``low_open``/``high_open`` leave that end out. ``nan`` and ``inf`` are refused: Python's
    ``float`` reads them, and one of them in a learning rate turns every weight into NaN."""
    if high is None:
        span = f"a number {'greater than' if low_open else 'of at least'} {low:g}"
    else:
        span = f"a number from {low:g} to {high:g}"
        excluded = [f"{end:g}" for end, open_end in ((low, low_open), (high, high_open))
                    if open_end]
        if excluded:
            span += f" ({' and '.join(excluded)} excluded)"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (math.isfinite(value)
                  and (value > low if low_open else value >= low)
                  and (high is None or (value < high if high_open else value <= high)))
        if not inside:
            raise argparse.ArgumentTypeError(f"must be {span}, got {text!r}")
        return value
    parse.__name__ = span
    return parse


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


def non_empty(text: str) -> str:
    """Any text but an empty (or blank) one, which would otherwise mean "the default" or "the
    current folder" without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


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
