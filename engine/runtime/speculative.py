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

    def restart(self) -> None:
        """Drafting resumes after plain steps: the length the text last earned is stale (a
        16-token draft at the first token after a copied span ended, the usual case, costs
        most of 16 steps for one token)."""
        self.n = FIRST_DRAFT


# Prompt lookup is judged over phases of this many tokens, drafting or not.
PHASE_TOKENS = 16
MAX_PAUSE_PHASES = 16  # the longest run of plain phases before drafting is tried again
REFRESH_EVERY = 8  # while drafting pays, one phase in this many runs plain (a fresh baseline)


class LookupPayoff:
    """Whether drafting pays on this machine, model and text. A verification pass of a d-token
    draft costs between one decode step (a model streamed from memory reads its weights once
    for all d + 1 rows: the case prompt lookup is for) and d + 1 steps (a small model computing
    from cache, as the default model does on a CPU with a large L3), and yields the accepted
    tokens plus one; what it leaves in the caches slows the steps after it too. So generation
    runs in phases of PHASE_TOKENS tokens, drafting or plain, each timed by its forward calls
    alone (a slow reader of the stream does not count), and the faster kind wins: drafting
    goes on while its phases yield tokens at least as fast as the latest plain phase (with a
    plain phase now and then for a fresh baseline); when a drafting phase is slower, drafting
    pauses for a run of plain phases that doubles each time a probe loses (up to
    MAX_PAUSE_PHASES) and resets when one wins. Output never depends on it: only when drafts
    are tried. A decoder keeps one across generations (what the machine and model cost does
    not change between requests); `start` marks a new one."""

    def __init__(self) -> None:
        self.timed = False  # the first forward after a prefill runs slow: not counted
        self.draft_mode = True  # the first phase drafts: lookup is the default
        self.tokens = 0  # tokens and forward seconds of the current phase
        self.seconds = 0.0
        self.rates: dict[bool, float] = {}  # tokens per second of the latest phase of each kind
        self.pause = 1  # plain phases the next losing probe is followed by
        self.plain_left = 0  # plain phases still to run before the next probe
        self.draft_phases = 0  # drafting phases that paid, in a row

    def start(self) -> None:
        """A new generation: its first forward comes after a prefill, so is not timed."""
        self.timed = False

    def drafting(self) -> bool:
        """Whether to look for a draft for the next token."""
        return self.draft_mode

    def record(self, seconds: float, tokens: int) -> None:
        """A forward call (a plain step, or a verification pass) took `seconds` and yielded
        `tokens` tokens."""
        if not self.timed:
            self.timed = True
            return
        self.tokens += tokens
        self.seconds += seconds
        if self.tokens < PHASE_TOKENS:
            return
        self.rates[self.draft_mode] = self.tokens / max(self.seconds, 1e-9)
        self.tokens, self.seconds = 0, 0.0
        self.draft_mode = self._next_phase_drafts(finished_draft=self.draft_mode)

    def _next_phase_drafts(self, finished_draft: bool) -> bool:
        draft, plain = self.rates.get(True), self.rates.get(False)
        if plain is None:
            return False  # a baseline first
        if draft is None:
            return True
        if finished_draft:
            if draft >= plain:
                self.pause = 1
                self.draft_phases += 1
                return self.draft_phases % REFRESH_EVERY != 0
            self.draft_phases = 0
            self.plain_left = self.pause
            self.pause = min(2 * self.pause, MAX_PAUSE_PHASES)
            return False
        self.plain_left = max(0, self.plain_left - 1)
        return self.plain_left == 0


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
