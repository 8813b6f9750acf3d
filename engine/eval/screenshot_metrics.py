"""The two scores of `cromwell eval screenshot`, on texts as a picture can show them.

- character error rate: Levenshtein distance / target length, clipped at 1.0 (an empty
  transcript scores exactly 1.0; a longer wrong one cannot score worse than saying nothing);
- exact-line rate: the share of the target's non-blank lines that the transcript reproduces
  exactly at the same line number (aligned by position: a dropped line shifts, and fails,
  every line after it; blank lines are free to guess and are not counted).

What a picture cannot show does not count: trailing spaces on a line, trailing blank lines, and
where column 0 is. A cropped editor window whose lines are all indented shows the indentation
relative to its leftmost line only, so both texts are dedented (`textwrap.dedent`: the margin
every non-blank line shares is removed) before either score; indentation between lines still
counts.
"""

from __future__ import annotations

import textwrap

import numpy as np


def normalise(text: str) -> str:
    """The text as a picture shows it: dedented, no trailing spaces on a line, no trailing
    blank lines."""
    lines = [line.rstrip() for line in textwrap.dedent(text).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each), exact.

    The dynamic programme row by row, each row in numpy: deletions and substitutions come from
    the previous row elementwise; insertions chain along the row, D[j] = min_k<=j (T[k] + j - k),
    which is a running minimum of T[k] - k plus j. Shared prefix and suffix are cut first (they
    cost nothing), so near-identical texts are cheap."""
    if len(a) < len(b):
        a, b = b, a
    start = 0
    while start < len(b) and a[start] == b[start]:
        start += 1
    end = 0
    while end < len(b) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    if not b:
        return len(a)
    x, y = _codes(a), _codes(b)
    cols = np.arange(len(y) + 1, dtype=np.int64)
    previous = cols.copy()
    current = np.empty_like(previous)
    for i, ca in enumerate(x, 1):
        current[0] = i
        # from above (delete a[i-1]) or diagonally (keep or substitute it)
        np.minimum(previous[1:] + 1, previous[:-1] + (y != ca), out=current[1:])
        # from the left (insert b[j-1]): a running minimum along the row
        current[:] = np.minimum.accumulate(current - cols) + cols
        previous, current = current, previous
    return int(previous[-1])


def char_error_rate(transcript: str, target: str, clip: bool = True) -> float:
    """Levenshtein(transcript, target) / len(target), both normalised, clipped to [0, 1]
    unless `clip` is False; an empty target is read perfectly only by an empty transcript."""
    hyp, ref = normalise(transcript), normalise(target)
    if not ref:
        return 0.0 if not hyp else 1.0
    rate = levenshtein(hyp, ref) / len(ref)
    return min(1.0, rate) if clip else rate


def exact_line_rate(transcript: str, target: str) -> float:
    """Share of the target's non-blank lines equal to the transcript's line at the same index
    (both normalised); 1.0 for a target with no non-blank line."""
    hyp = normalise(transcript).split("\n")
    ref = normalise(target).split("\n")
    counted = [i for i, line in enumerate(ref) if line.strip()]
    if not counted:
        return 1.0
    hits = sum(1 for i in counted if i < len(hyp) and hyp[i] == ref[i])
    return hits / len(counted)
