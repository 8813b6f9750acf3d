"""A recorded editing session for the ghost-text benchmark: what a user does to a file.

The session is made from the file itself with a fixed seed, so the same file always gives
the same session: at a few places (a pair of code lines inside a definition) the user moves
the cursor there, deletes the two lines' code and types it again, a character at a time,
with a typo corrected now and then, pressing Enter between the lines, and accepting the
suggestion whenever it is what they were about to type. Keys are paced as a person types:
faster inside a word, slower after punctuation, a pause before each new place, and a pause to
read the two lines (and the suggestion after them) before moving on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TYPO_RATE = 0.04  # share of keystrokes that are a wrong character, deleted at once
READ_S = 1.5  # the pause after retyping a spot's two lines, before the next move


@dataclass(frozen=True)
class Step:
    """One thing the user does, then waits `pause_s` before the next."""

    kind: str  # "move" (cursor to line/column), "type" (text at the cursor), "typo" (a wrong
    # key, deleted by the next step), "delete" (backspace), "clear" (the lines [line, line +
    # count) emptied to their indentation), "accept" (the suggestion on screen, taken if it
    # is what the user means to type: `text`, the rest of the line), "pause" (nothing)
    pause_s: float
    line: int = 0
    column: int = 0
    text: str = ""
    count: int = 0


@dataclass(frozen=True)
class Spot:
    line: int  # the first of two lines retyped
    first: str  # their code (without indentation)
    second: str
    indent: str  # the first line's indentation
    second_indent: str


def pick_spots(lines: list[str], n: int, rng: random.Random) -> list[Spot]:
    """`n` pairs of consecutive code lines, spread over the file, each indented (inside a
    definition), 12-70 characters of code, not comments or strings."""

    def usable(s: str) -> bool:
        code = s.strip()
        return (s.startswith((" ", "\t")) and 12 <= len(code) <= 70
                and not code.startswith(("#", '"', "'", "@")))

    candidates = [i for i in range(len(lines) - 1) if usable(lines[i]) and usable(lines[i + 1])]
    if not candidates:
        raise ValueError("the file has no indented code lines to retype")
    stride = max(1, len(candidates) // n)
    chosen = sorted(rng.choice(candidates[k : k + stride])
                    for k in range(0, len(candidates), stride))[:n]
    rng.shuffle(chosen)  # the user jumps around the file, not top to bottom
    spots = []
    for i in chosen:
        a, b = lines[i], lines[i + 1]
        spots.append(Spot(i, a.strip(), b.strip(), a[: len(a) - len(a.lstrip())],
                          b[: len(b) - len(b.lstrip())]))
    return spots


def key_pause(ch: str, rng: random.Random) -> float:
    base = 0.18 if ch in " ,.()[]{}:=" else 0.09
    return base * rng.uniform(0.7, 1.4)


def make_session(text: str, spots: int = 8, seed: int = 0) -> list[Step]:
    rng = random.Random(seed)
    lines = text.split("\n")
    steps: list[Step] = []
    for spot in pick_spots(lines, spots, rng):
        steps.append(Step("move", 1.0, line=spot.line, column=len(lines[spot.line])))
        steps.append(Step("clear", 0.4, line=spot.line, count=2))
        steps.append(Step("move", 0.3, line=spot.line, column=len(spot.indent)))
        _type_line(steps, spot.first, rng)
        steps.append(Step("type", 0.3, text="\n" + spot.second_indent))
        _type_line(steps, spot.second, rng)
        steps.append(Step("pause", READ_S))
    return steps


def _type_line(steps: list[Step], code: str, rng: random.Random) -> None:
    for k, ch in enumerate(code):
        if rng.random() < TYPO_RATE:
            steps.append(Step("typo", 0.12, text=rng.choice("qxzjk")))
            steps.append(Step("delete", 0.15))
        steps.append(Step("type", key_pause(ch, rng), text=ch))
        steps.append(Step("accept", 0.0, text=code[k + 1 :]))
