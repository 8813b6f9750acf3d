"""Prompt-lookup drafting: an edit mostly copies its input, so the tokens that followed the
latest earlier occurrence of the last few tokens are a good guess of what comes next. The
decoder verifies a draft in one batched pass; no second model and no training are needed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_NGRAM = 4  # longest suffix looked up first: longer matches draft more reliably
MIN_NGRAM = 3  # code repeats short n-grams ("):\n    ") everywhere: they draft badly
MAX_DRAFT = 16
FIRST_DRAFT = 4


class DraftLength:
    """How many tokens to draft next. A verification pass costs one decode step per drafted
    token when the kernels are compute-bound, so drafts grow while they are accepted whole and
    shrink to what was accepted when they are not (additive growth would react too slowly to
    a long copied span, a fixed length wastes rows after a divergence)."""

    def __init__(self) -> None:
        self.n = FIRST_DRAFT

    def update(self, drafted: int, accepted: int) -> None:
        if accepted == drafted:
            self.n = min(2 * self.n, MAX_DRAFT)
        else:
            self.n = max(1, accepted)


def draft_tokens(
    history: Sequence[int],
    max_draft: int = MAX_DRAFT,
    max_ngram: int = MAX_NGRAM,
    min_ngram: int = MIN_NGRAM,
) -> list[int]:
    """Up to `max_draft` tokens that followed the most recent earlier occurrence of the
    longest suffix of `history` (between `max_ngram` and `min_ngram` tokens long) found in it."""
    if max_draft <= 0:
        return []
    seq = np.asarray(history, dtype=np.int64)
    n_hist = seq.size
    for n in range(min(max_ngram, n_hist - 1), min_ngram - 1, -1):
        suffix = seq[n_hist - n :]
        # Candidate starts: every window of length n that ends before the suffix itself does.
        n_starts = n_hist - n
        if n_starts <= 0:
            continue
        match = seq[:n_starts] == suffix[0]
        for j in range(1, n):
            match &= seq[j : n_starts + j] == suffix[j]
        starts = np.flatnonzero(match)
        if starts.size:
            begin = int(starts[-1]) + n  # the token after the most recent match
            return [int(t) for t in seq[begin : begin + max_draft]]
    return []
