"""Text the app shows. Nothing a visitor typed or uploaded is rendered as markup: file names,
image ids and the messages that quote them are escaped before any Markdown element shows them
(a file named ``![x](http://host/t.png).jpg`` would otherwise make every viewer's browser fetch
that URL)."""
from __future__ import annotations

import re

from safe_io.imagenet import CLASS_NAMES, WNIDS

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def plain(text: object) -> str:
    """``text`` with every Markdown (and Streamlit directive) character backslash-escaped."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def class_option(index: int) -> str:
    """A class in a picker: "415 · bakery, bakeshop, bakehouse (n02776631)"."""
    return f"{index} · {CLASS_NAMES[index]} ({WNIDS[index]})"
