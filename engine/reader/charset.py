"""The reader's output classes: CTC blank, an "unreadable" class for glyphs outside the set, and
the characters a screenshot of code shows: printable ASCII, Latin-1, Greek, common symbols and
box drawing.

The order is part of the trained weights: append, never reorder.
"""

from __future__ import annotations

import functools

BLANK = 0  # CTC's "no character here"
UNREADABLE = 1  # a glyph the set does not cover; shown as UNREADABLE_CHAR in a transcript
UNREADABLE_CHAR = "\ufffd"

_ASCII = "".join(chr(c) for c in range(32, 127))
_LATIN1 = "".join(chr(c) for c in range(0xA1, 0x100) if c != 0xAD)  # no soft hyphen: invisible
_GREEK = "".join(chr(c) for c in range(0x391, 0x3AA) if c != 0x3A2) + "".join(
    chr(c) for c in range(0x3B1, 0x3CA)
)
_SYMBOLS = (
    "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\u2020\u2021\u2030\u20ac\u2122"
    "\u2190\u2191\u2192\u2193\u2194\u21d0\u21d2\u21d4"
    "\u2200\u2203\u2208\u2209\u2211\u221a\u221e\u2227\u2228\u2229\u222a\u2248\u2260\u2261"
    "\u2264\u2265\u2282\u2283\u2286\u2287\u22c5\u2713\u2717\u25b2\u25bc\u25cf\u25cb\u25a0\u25a1"
)
_BOX = "".join(chr(c) for c in range(0x2500, 0x2580)) + "".join(
    chr(c) for c in range(0x2580, 0x25A0)
)  # box drawing and block elements

CHARACTERS: str = _ASCII + _LATIN1 + _GREEK + _SYMBOLS + _BOX


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, int]:
    return {ch: i + 2 for i, ch in enumerate(CHARACTERS)}


def n_classes() -> int:
    return len(CHARACTERS) + 2


def encode(text: str) -> list[int]:
    """Class ids of `text`; characters outside the set become UNREADABLE."""
    index = _index()
    return [index.get(ch, UNREADABLE) for ch in text]


def decode(ids: list[int]) -> str:
    """Text of class ids (no CTC collapsing here: ids are already one per character)."""
    out = []
    for i in ids:
        if i == BLANK:
            continue
        out.append(UNREADABLE_CHAR if i == UNREADABLE else CHARACTERS[i - 2])
    return "".join(out)


def covered(ch: str) -> bool:
    return ch in _index()
