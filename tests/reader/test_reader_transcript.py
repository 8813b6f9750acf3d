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
