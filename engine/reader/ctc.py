"""Decoding the reader's per-column scores (CTC): the best path, and a prefix beam search that
returns several hypotheses so a caller can prefer one that parses.

Both keep, for every character, the column where it was read: the layout uses those columns to
measure the character width and to find where code starts after a gutter.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from engine.reader.charset import BLANK, decode


@dataclass(frozen=True)
class Hypothesis:
    text: str
    columns: tuple[int, ...]  # the column each character was read at
    log_prob: float


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def greedy(logits: np.ndarray) -> Hypothesis:
    """The best class per column, repeats merged, blanks dropped. logits (T, classes)."""
    if logits.shape[0] == 0:
        return Hypothesis("", (), 0.0)
    lp = log_softmax(logits)
    best = lp.argmax(-1)
    ids, cols = [], []
    previous = BLANK
    for t, c in enumerate(best.tolist()):
        if c != BLANK and c != previous:
            ids.append(c)
            cols.append(t)
        previous = c
    return Hypothesis(decode(ids), tuple(cols), float(lp[np.arange(len(best)), best].sum()))


def _add(beams: dict[tuple[int, ...], list], prefix: tuple[int, ...], b: float, nb: float,
         cols: tuple[int, ...]) -> None:
    """Add the blank-ending and last-character-ending probabilities of one way to `prefix`."""
    entry = beams.get(prefix)
    if entry is None:
        beams[prefix] = [b, nb, cols]
    else:
        entry[0] = np.logaddexp(entry[0], b)
        entry[1] = np.logaddexp(entry[1], nb)


def beam(logits: np.ndarray, width: int = 8, prune: float = -7.0) -> list[Hypothesis]:
    """CTC prefix beam search: up to `width` hypotheses, best first. Classes scoring below
    `prune` (log-probability) in a column are not extended, which keeps it fast on confident
    columns (most of them)."""
    if logits.shape[0] == 0:
        return [Hypothesis("", (), 0.0)]
    lp = log_softmax(logits)
    # prefix (ids) -> (log p ending in blank, log p ending in its last id), columns
    beams: dict[tuple[int, ...], tuple[float, float, tuple[int, ...]]] = {
        (): (0.0, -math.inf, ())}
    certain = lp.max(-1) > math.log(0.999)
    best = lp.argmax(-1)
    for t in range(lp.shape[0]):
        row = lp[t]
        if certain[t] and best[t] == BLANK:
            # A sure blank: every prefix stays as it is (most columns, once trained).
            beams = {k: (float(np.logaddexp(b, nb)) + float(row[BLANK]), -math.inf, cols)
                     for k, (b, nb, cols) in beams.items()}
            continue
        candidates = [int(c) for c in np.flatnonzero(row > prune)]
        nxt: dict[tuple[int, ...], list] = {}
        add = functools.partial(_add, nxt)
        for prefix, (pb, pnb, cols) in beams.items():
            total = np.logaddexp(pb, pnb)
            for c in candidates:
                p = row[c]
                if c == BLANK:
                    add(prefix, total + p, -math.inf, cols)
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (c,)
                if c == last:
                    add(prefix, -math.inf, pnb + p, cols)  # the same character, held
                    add(extended, -math.inf, pb + p, cols + (t,))  # a second one after a blank
                else:
                    add(extended, -math.inf, total + p, cols + (t,))
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(kv[1][0], kv[1][1]))
        beams = {k: (v[0], v[1], v[2]) for k, v in ranked[:width]}
    out = [Hypothesis(decode(list(k)), v[2], float(np.logaddexp(v[0], v[1])))
           for k, v in beams.items()]
    return sorted(out, key=lambda h: -h.log_prob)
