"""The transcript's geometry on a reading: runs of spaces and underscores sized by the cells
between the characters around them, and line numbers read with lookalike letters."""

from __future__ import annotations

import numpy as np

from engine.reader.transcript import _line_number, regap

CELL = 10.0


def at(cells: list[float]) -> np.ndarray:
    """Character x positions from their cell numbers (the centre of each cell)."""
    return (np.asarray(cells, np.float64) + 0.5) * CELL


def read_at(text: str, real: str) -> np.ndarray:
    """Where each character of a reading `text` of `real` sits: at the cell of the first
    character of `real` it can be, in order (a run read short sits at its first cell)."""
    positions, k = [], 0
    for ch in text:
        while real[k] != ch:
            k += 1
        positions.append(k)
        k += 1
    return at(positions)


def test_a_dunder_read_as_one_underscore_gets_its_cells_back() -> None:
    real = "import __hello__ as x"
    assert regap("import _hello_ as x", read_at("import _hello_ as x", real), CELL) == real
    assert regap("f(_x_)", read_at("f(_x_)", "f(__x__)"), CELL) == "f(__x__)"


def test_long_runs_of_spaces_are_counted_short_ones_trusted() -> None:
    real = "x = 1    # aligned"
    assert regap("x = 1 # aligned", read_at("x = 1 # aligned", real), CELL) == real
    # One space read where the picture shows two: left alone (a dropped character would
    # come back as a space).
    assert regap("a b", at([0, 1, 3]), CELL) == "a b"


def test_a_gap_that_is_no_whole_number_of_cells_changes_nothing() -> None:
    assert regap("f(a,   b)", at([0, 1, 2, 3, 4, 5, 6, 7.5, 8.5]), CELL) == "f(a,   b)"
    assert regap("ab", at([0, 1]), CELL) == "ab"
    assert regap("a _b", at([0, 1]), CELL) == "a _b"  # positions do not match: as read


def test_line_numbers_with_lookalike_letters() -> None:
    assert _line_number("146    for x in y:") == 146
    assert _line_number("lS0  spec = 1") == 150
    assert _line_number("l5l") == 151
    assert _line_number("lol = 3") is None  # no real digit: a word, not a number
    assert _line_number("0x004d, # M") is None
    assert _line_number("    x = 1") is None


def test_an_unsure_line_takes_the_reading_whose_words_the_picture_repeats() -> None:
    from engine.reader.transcript import ReadLine, prefer_known_words

    lines = [ReadLine(k, f"H{k} = HANDLE", 0, (), 1.0) for k in range(4)]
    unsure = ReadLine(4, "HDC = HANOLE", 0, ("HDC = HANDLE", "HDC = HAN0LE"), 0.6, (1.0, 2.5))
    chosen = prefer_known_words([*lines, unsure], "python")[-1]
    assert chosen.code == "HDC = HANDLE" and "HDC = HANOLE" in chosen.alternatives
    # A reading the reader was far surer of stands, known words or not.
    sure = ReadLine(4, "HDC = HANOLE", 0, ("HDC = HANDLE",), 0.9, (9.0,))
    assert prefer_known_words([*lines, sure], "python")[-1].code == "HDC = HANOLE"
    # Keywords and builtins count for Python only.
    alone = ReadLine(0, "retum lem(x)", 0, ("return len(x)",), 0.6, (2.0,))
    assert prefer_known_words([alone], "python")[0].code == "return len(x)"
    assert prefer_known_words([alone], None)[0].code == "retum lem(x)"


def test_code_starts_after_a_guide_or_cursor_that_fills_the_band() -> None:
    from engine.reader.layout import TextLine
    from engine.reader.transcript import _code_start

    ink = np.zeros((40, 120), np.float32)
    line = TextLine(0, 10.0, 5, 100)  # band rows 10-29 (pitch 20)
    ink[10:30, 12] = 0.6  # a one-line indent guide: the whole band
    ink[10:30, 13] = 0.2  # its anti-aliased edge
    ink[14:26, 40:44] = 0.9  # the first glyph: part of the band only
    ink[12:28, 60:62] = 0.9  # a tall glyph later on ("|")
    assert _code_start(ink, line, 20.0, 5) == 40.0
    ink[10:30, 12:14] = 0
    assert _code_start(ink, line, 20.0, 5) == 40.0
    ink[14:26, 40:44] = 0
    assert _code_start(ink, line, 20.0, 5) == 60.0  # a tall glyph is no guide
