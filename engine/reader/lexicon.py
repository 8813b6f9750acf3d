"""The words code is written in, and the repair of words misread through a lookalike glyph.

Some fonts draw a few characters almost alike: in a pixel font at 15 px an "l" and a "1" differ
by a pixel, an "S" and a "5" by a corner. The line reader then reads "lineno" as "1ineno" or
"val" as "va1" and is nearly as sure of either. What tells them apart is the word: code is
written in a vocabulary ("lineno", "children", "Suffix"), and an identifier rarely opens with a
digit or hides one between letters.

The lexicon is the identifier and comment words (pieces of three letters or more: `lineno`,
`blank` and `line` of `BlankLine`) of the training split of the standard library, the files the
reader learned from (`scripts/build_reader_lexicon.py` builds engine/assets/code-words.txt.gz;
no held-out file is read). A word is changed only into a likelier spelling that swaps
lookalikes one for one, so every character keeps the column it was read at, and only where the
reader's own scores make the swap cheap: its cost is what the reader's best path loses at those
columns, and a swap must cost less than KNOWN_PIECE nats for each step it gains.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.reader.charset import encode

ASSET = Path(__file__).resolve().parents[1] / "assets" / "code-words.txt.gz"
# The glyphs each glyph is mistaken for, in the fonts the reader is weakest on.
LOOKALIKES = {"1": "lIi", "l": "1I", "I": "l1", "i": "1", "5": "S", "S": "5", "0": "O", "O": "0",
              "8": "B", "B": "8", "6": "G", "G": "6"}
MAX_SWAPS = 4  # lookalike positions tried in one word (3^4 spellings at most)
MIN_PIECE = 3  # shorter pieces ("os", "x") say nothing about a spelling
MIN_COUNT = 3  # a piece seen fewer times in the corpus is no evidence
KNOWN_PIECE = 4.0  # nats: what one step of plausibility is worth against the reader's scores
ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
# A number literal: its lookalikes are digits ("0x00B3" is hex, not "0xOOB3").
NUMBER = re.compile(r"^(0[xXbBoO][0-9A-Fa-f_]*|\d+[eEjJ]?\d*)$")
# Words that open with a digit and are still words: ordinals, sizes, hex and binary literals.
DIGIT_FIRST_OK = re.compile(r"^(\d+(st|nd|rd|th|[kKmMgG][bB]?|bit|d|px|x\d*|s|ms)|0[xXbBoO]\w*)$")


def pieces(word: str) -> list[str]:
    """A word's pieces: lower-case runs (with their capital), capital runs, digit runs
    ("BlankLine2" -> Blank, Line, 2)."""
    return PIECE.findall(word)


def corpus_pieces(texts: Iterable[str]) -> Counter[str]:
    """How often each lower-cased letter piece of MIN_PIECE+ letters occurs in `texts`."""
    counts: Counter[str] = Counter()
    for text in texts:
        for run in ALNUM_RUN.findall(text):
            counts.update(p.lower() for p in pieces(run)
                          if len(p) >= MIN_PIECE and p.isalpha())
    return counts


@functools.cache
def shipped_lexicon() -> frozenset[str]:
    """The lexicon the package ships (empty when it is missing: nothing is repaired)."""
    if not ASSET.is_file():
        return frozenset()
    with gzip.open(ASSET, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def plausibility(word: str, lexicon: frozenset[str]) -> int:
    """How much a spelling looks like code: +1 for each known piece, -1 for each unknown
    one, -1 for a digit run between letters ("chi1dren") and for a word that opens with
    digits then letters ("1ineno") unless such words are usual ("2nd", "0x1f", "64bit")."""
    score = 0
    parts = pieces(word)
    for i, p in enumerate(parts):
        if p.isdigit():
            between = 0 < i < len(parts) - 1 and parts[i - 1].isalpha() \
                and parts[i + 1].isalpha()
            score -= between
        elif len(p) >= MIN_PIECE:
            score += 1 if p.lower() in lexicon else -1
    if word[0].isdigit() and not word.isdigit() and not DIGIT_FIRST_OK.match(word):
        score -= 1
    return score


def repair(text: str, columns: tuple[int, ...], log_probs: np.ndarray,
           lexicon: frozenset[str]) -> str:
    """`text` (read at `columns` of a line whose per-column log-probabilities are
    `log_probs`, (T, classes)) with each word respelled where a lookalike swap makes it more
    plausible and costs the reader less than KNOWN_PIECE nats a step gained."""
    if not lexicon or len(columns) != len(text):
        return text
    out = list(text)
    for m in ALNUM_RUN.finditer(text):
        word = m.group(0)
        spots = [i for i, ch in enumerate(word) if ch in LOOKALIKES][:MAX_SWAPS]
        if not spots or not any(c.isalpha() for c in word) or NUMBER.match(word):
            continue
        base = plausibility(word, lexicon)
        best, best_key = word, (0, 0.0)
        for choice in itertools.product(*[(word[i], *LOOKALIKES[word[i]]) for i in spots]):
            spelling = list(word)
            for i, ch in zip(spots, choice, strict=True):
                spelling[i] = ch
            candidate = "".join(spelling)
            if candidate == word:
                continue
            gain = plausibility(candidate, lexicon) - base
            if gain <= 0:
                continue
            cost = sum(_swap_cost(log_probs, columns[m.start() + i], word[i], candidate[i])
                       for i in spots if word[i] != candidate[i])
            if cost < KNOWN_PIECE * gain and (gain, -cost) > best_key:
                best, best_key = candidate, (gain, -cost)
        out[m.start():m.end()] = best
    return "".join(out)


def _swap_cost(log_probs: np.ndarray, column: int, was: str, now: str) -> float:
    """What the reader's best path loses reading `now` instead of `was` at `column` (the
    best of the column and its two neighbours: a glyph's peak may sit one column over)."""
    (old_id,), (new_id,) = encode(was), encode(now)
    lo, hi = max(0, column - 1), min(log_probs.shape[0], column + 2)
    return float(log_probs[column, old_id] - log_probs[lo:hi, new_id].max())
