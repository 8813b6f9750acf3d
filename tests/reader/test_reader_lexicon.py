"""The reader's lexicon repair: a word misread through a lookalike glyph is respelled where the
reader's own scores allow it, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from engine.reader import lexicon
from engine.reader.charset import BLANK, encode, n_classes

WORDS = frozenset({"lineno", "val", "children", "suffix", "blank", "line", "some", "version"})


def scores(text: str, doubts: dict[int, tuple[str, float]]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Log-probabilities of a line reading `text`, one character every other column with
    blanks between; at character i in `doubts` the other glyph gets log-probability `lp`
    (the read one keeps the rest of the mass)."""
    n = n_classes()
    cols = tuple(2 * i + 1 for i in range(len(text)))
    lp = np.full((2 * len(text) + 1, n), -30.0)
    lp[:, BLANK] = 0.0
    for i, ch in enumerate(text):
        t = cols[i]
        lp[t, BLANK] = -30.0
        (read,) = encode(ch)
        lp[t, read] = 0.0
        if i in doubts:
            other, other_lp = doubts[i]
            (alt,) = encode(other)
            lp[t, alt] = other_lp
            lp[t, read] = np.log1p(-np.exp(other_lp))
    return lp, cols


@pytest.mark.parametrize(("read", "doubts", "meant"), [
    ("if 1ineno:", {3: ("l", -1.0)}, "if lineno:"),  # a digit opening a word
    ("va1 = 2", {2: ("l", -1.5)}, "val = 2"),
    ("x.chi1dren", {5: ("l", -2.0)}, "x.children"),  # a digit between letters
    ("B1ankLine", {1: ("l", -1.0), 5: ("i", -1.0)}, "BlankLine"),
    ("Name_5uffix", {5: ("S", -2.0)}, "Name_Suffix"),
])
def test_a_lookalike_the_reader_doubts_is_respelled(read: str, doubts: dict, meant: str) -> None:
    lp, cols = scores(read, doubts)
    assert lexicon.repair(read, cols, lp, WORDS) == meant


@pytest.mark.parametrize("read", ["if 1ineno:", "va1 = 2"])
def test_a_glyph_the_reader_is_sure_of_stays(read: str) -> None:
    lp, cols = scores(read, {})  # the other glyph at -30 nats: far too dear
    assert lexicon.repair(read, cols, lp, WORDS) == read


@pytest.mark.parametrize("read", ["x = 0x00B3", "utf8 = md5", "n = 10", "x1 = 2nd", "sha256"])
def test_numbers_and_usual_digit_words_stay(read: str) -> None:
    doubts = {i: (lexicon.LOOKALIKES[ch][0], -0.5) for i, ch in enumerate(read)
              if ch in lexicon.LOOKALIKES}
    lp, cols = scores(read, doubts)
    assert lexicon.repair(read, cols, lp, WORDS) == read


def test_without_a_lexicon_nothing_changes() -> None:
    lp, cols = scores("1ineno", {0: ("l", -0.5)})
    assert lexicon.repair("1ineno", cols, lp, frozenset()) == "1ineno"


def test_the_shipped_lexicon_holds_the_words_of_code() -> None:
    words = lexicon.shipped_lexicon()
    assert {"lineno", "children", "suffix", "self", "return"} <= words
    assert all(len(w) >= lexicon.MIN_PIECE and w.isalpha() and w.islower() for w in words)


def test_pieces_split_identifiers_as_code_writes_them() -> None:
    assert lexicon.pieces("BlankLine2") == ["Blank", "Line", "2"]
    assert lexicon.pieces("HTTPServer") == ["HTTP", "Server"]
    assert lexicon.pieces("lineno") == ["lineno"]
