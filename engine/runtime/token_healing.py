"""Token healing: an answer that must start with given characters, spelt by whichever tokens
the model likes best.

A cursor inside a word (`self.replace_whitespac|`) ends the prompt on a token the tokenizer
would never have produced there: the model saw `whitespace` as whole tokens in training, not
`whites` + `pac`, and after such an ending it guesses badly (a lone letter). The cure, as in
guidance's token healing: the prompt ends before the word, and the answer's first tokens are
held to spelling the word's removed characters (`SpellingConstraint`); the caller strips them
off the answer. Every keystroke inside one word then sends the same prompt, so the KV cache
holds all of it.

The constraint works on bytes (a byte-level token may hold half a character). At each step
the allowed tokens are those whose bytes start with what is left to spell (they finish it),
or are a start of it (they spell part of it); `SpellingIndex` finds both without a pass over
the vocabulary: a sorted table for the first, a dictionary for the second.
"""

from __future__ import annotations

import bisect
import weakref
from typing import Any

import numpy as np

# The most characters healing leaves out: a longer run is not a word or an indentation (a
# minified line, a data blob), and spelling it back would cost a decoder pass a token.
MAX_HEAL_CHARS = 48


def heal_span(line_before: str) -> int:
    """How many characters at the end of `line_before` (the cursor line up to the cursor) the
    prompt leaves out for the answer to spell: a word the cursor is in or just after, with
    the one space before it (byte-level BPE spells " word" as one token), or else the run of
    spaces and tabs before the cursor: the space before a word yet to come, or the line's
    indentation, whose last space the tokenizer joins to the line's first word (after Enter,
    an unhealed prompt ending in 8 spaces got " if ..." where "if ..." was due). Nothing
    when that is more than MAX_HEAL_CHARS."""
    n = len(line_before)
    start = n
    floor = max(0, n - MAX_HEAL_CHARS - 1)  # no need to look further back than that
    while start > floor and (line_before[start - 1].isalnum() or line_before[start - 1] == "_"):
        start -= 1
    if start < n:
        if start > 0 and line_before[start - 1] == " ":
            start -= 1
    else:
        while start > floor and line_before[start - 1] in " \t":
            start -= 1
    return n - start if n - start <= MAX_HEAL_CHARS else 0


class SpellingIndex:
    """A tokenizer's tokens by the bytes they stand for; added tokens (markers, control
    tokens) are left out, as is anything that spells nothing."""

    def __init__(self, tokenizer: Any) -> None:
        added = set(getattr(tokenizer, "added_tokens", {}) or {})
        spelt: list[tuple[bytes, int]] = []
        for token_id in range(tokenizer.vocab_size):
            if token_id in added:
                continue
            try:
                data = tokenizer.token_bytes(token_id)
            except (ValueError, IndexError):
                continue
            if data:
                spelt.append((data, token_id))
        spelt.sort()
        self._sorted = [data for data, _ in spelt]
        self._ids = np.array([token_id for _, token_id in spelt], dtype=np.int64)
        self._exact: dict[bytes, list[int]] = {}
        for data, token_id in spelt:
            self._exact.setdefault(data, []).append(token_id)

    def allowed(self, rest: bytes) -> np.ndarray:
        """The ids of tokens that finish `rest` (start with it) or spell a start of it."""
        lo = bisect.bisect_left(self._sorted, rest)
        # Those that start with `rest` run up to the least string past all of them: `rest`
        # with its last byte below 0xff raised by one, the 0xff bytes after it dropped (a
        # single space starts 32K of SmolLM2's tokens: a scan took 9 ms a step).
        head = rest.rstrip(b"\xff")
        hi = (len(self._sorted) if not head
              else bisect.bisect_left(self._sorted, head[:-1] + bytes([head[-1] + 1]), lo))
        starts = [i for n in range(1, len(rest)) for i in self._exact.get(rest[:n], ())]
        return np.concatenate([self._ids[lo:hi], np.asarray(starts, dtype=np.int64)])


_INDEXES: weakref.WeakKeyDictionary[Any, SpellingIndex] = weakref.WeakKeyDictionary()


def spelling_index(tokenizer: Any) -> SpellingIndex:
    """The tokenizer's index, built once and kept while it lives (0.3 s for SmolLM2's 49K
    tokens, 0.7 s for Qwen2.5's 152K, on the first healed request)."""
    index = _INDEXES.get(tokenizer)
    if index is None:
        index = _INDEXES[tokenizer] = SpellingIndex(tokenizer)
    return index


class SpellingConstraint:
    """Holds an answer's first tokens to spelling `text` in the tokenizer's tokens: `mask` the
    logits before sampling, `advance` with the token chosen; `active` until the text is spelt."""

    def __init__(self, tokenizer: Any, text: str) -> None:
        self.index = spelling_index(tokenizer)
        self.tokenizer = tokenizer
        self.rest = text.encode("utf-8")

    @property
    def active(self) -> bool:
        return bool(self.rest)

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """`logits` with every token that breaks the spelling at -inf (a new array). Where
        no token fits (a vocabulary without single bytes), the constraint gives up and the
        logits pass unchanged."""
        allowed = self.index.allowed(self.rest)
        if allowed.size == 0:
            self.rest = b""
            return logits
        out = np.full_like(logits, -np.inf)
        out[allowed] = logits[allowed]
        return out

    def advance(self, token: int) -> None:
        data = self.tokenizer.token_bytes(token)
        self.rest = b"" if data.startswith(self.rest) else self.rest[len(data) :]
