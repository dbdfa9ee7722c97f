"""Text in a fixed number of pixels: the font every drawn figure uses, and wrapping, breaking
and shortening lines so that no label, caption or command is cut off at a panel's edge."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageDraw, ImageFont


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (shipped with matplotlib, so every machine has it) for ✓/✗ and labels; its
    monospaced cut for commands. Found without importing matplotlib (the first grid waits)."""
    import importlib.util

    name = ("DejaVuSansMono.ttf" if mono else
            "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    package = Path(importlib.util.find_spec("matplotlib").origin).parent
    path = package / "mpl-data" / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), size)


def fit(text: str, fnt: ImageFont.FreeTypeFont, width: float, draw: ImageDraw.ImageDraw) -> str:
    """``text`` shortened with an ellipsis until it is at most ``width`` pixels wide."""
    while text and draw.textlength(text, font=fnt) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def wrap_words(text: str, fnt: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Lines of at most ``width`` pixels; words longer than a line (paths, commands) are split."""
    lines, line = [], ""
    for word in _break_long(text.split(), fnt, width * 0.96):
        trial = f"{line} {word}".strip()
        if fnt.getlength(trial) > width * 0.96 and line:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def join_words(words: list[tuple[str, ImageFont.FreeTypeFont]], width: float
               ) -> list[tuple[str, ImageFont.FreeTypeFont]]:
    """Words of the same font joined into lines of at most ``width`` pixels."""
    lines: list[tuple[str, ImageFont.FreeTypeFont]] = []
    for word, fnt in words:
        if lines and lines[-1][1] is fnt and fnt.getlength(f"{lines[-1][0]} {word}") <= width:
            lines[-1] = (f"{lines[-1][0]} {word}", fnt)
        else:
            lines.append((word, fnt))
    return lines


def _break_long(words: list[str], fnt: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Split words wider than a line (file paths) at '/' or, failing that, anywhere."""
    out = []
    for word in words:
        while fnt.getlength(word) > width:
            cut = max(i for i in range(1, len(word)) if fnt.getlength(word[:i]) <= width)
            slash = word.rfind("/", 0, cut)
            cut = slash + 1 if slash > 0 else cut
            out.append(word[:cut])
            word = word[cut:]
        out.append(word)
    return out
