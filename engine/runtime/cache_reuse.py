"""Which cached rows a new prompt can keep: the common prefix, then unchanged runs after a change.

A ghost-text prompt changes in its middle: a keystroke at the end of the text before the cursor
with the text after it unchanged behind it, an extra-context chunk dropped from the head of a
ring buffer. Prefix reuse alone recomputes everything after the first changed token. Here runs
of at least `min_chunk` tokens of the new prompt that the cache holds beyond the prefix are
found (a k-gram index of the cached tokens, so planning is linear in the prompt) and kept: the
cache moves their rows to their new positions, keys re-rotated by the shift
(`KVCache.move_rows`), and only the gaps between them are computed (generate.prefill: each
query attends to the rows before it only, so a gap computed before a moved run does not see
it; a few tokens of gaps run with the last token in one pass, `Decoder.forward_at`).

Like llama-server's `--cache-reuse` (whose runs only move left, towards a deletion), but a run
may move either way: a character typed before an unchanged tail moves the tail right.

The result is an approximation, as llama.cpp's: a moved run's keys and values were computed
with the old context before it, and only its positions are corrected. They are exact at layer
0 (a function of the token and its position only); deeper layers keep what the old context
contributed. A plan with no moved run (prefix reuse only) is exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

# Shorter runs are recomputed: a few tokens cost little to run again, and a short match (an
# indentation, a common keyword) is more often a coincidence than the same text moved.
DEFAULT_MIN_CHUNK = 32
# The index's key length: long enough that most keys occur once in code, short enough that
# every run of min_chunk tokens contains one.
MAX_KEY = 16
# How many cached occurrences of a key are tried at one position (repetitive text, such as a
# run of blank lines, has many; the first ones after the last kept run are the likely ones).
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Reuse:
    """new[new_start : new_start + length] == old[old_start : old_start + length]: keep those
    cached rows, moved by new_start - old_start positions."""

    old_start: int
    new_start: int
    length: int

    @property
    def shift(self) -> int:
        return self.new_start - self.old_start


@dataclass(frozen=True)
class Compute:
    """new[new_start : new_start + length] is run by the decoder."""

    new_start: int
    length: int


@dataclass
class ReusePlan:
    """How to bring a cache of `old` tokens to a new prompt: keep old[:prefix] in place, then
    the segments, which tile new[prefix:] in order. The last segment is a Compute holding the
    prompt's last token (its logits are the prefill's result)."""

    prefix: int
    segments: list[Reuse | Compute] = field(default_factory=list)

    @property
    def reused(self) -> list[Reuse]:
        return [s for s in self.segments if isinstance(s, Reuse)]

    @property
    def shifted(self) -> int:
        """Tokens kept from the cache beyond the prefix."""
        return sum(s.length for s in self.reused)

    @property
    def computed(self) -> int:
        return sum(s.length for s in self.segments if isinstance(s, Compute))


@dataclass
class PrefillStats:
    """What a prefill did (`Decoder.last_prefill`): the prompt's tokens, those kept as the
    cached prefix, those kept from runs moved in the cache, those computed, and its time."""

    prompt: int
    prefix: int
    shifted: int
    computed: int
    seconds: float


def common_prefix(old: Sequence[int], new: Sequence[int]) -> int:
    n = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        n += 1
    return n


def plan_reuse(
    old: Sequence[int], new: Sequence[int], min_chunk: int | None = DEFAULT_MIN_CHUNK
) -> ReusePlan:
    """Plan the reuse of a cache holding `old` for the prompt `new` (at least one token).

    The prefix is the common prefix, less the last token of `new` if it covers all of it.
    Beyond it, walking `new` left to right, a run is kept where at least `min_chunk` tokens
    match the cache after the last kept run (runs keep their order, as the cache does; the
    longest of the candidates is taken); everything else is computed. `min_chunk` None or 0
    plans prefix reuse only."""
    if not new:
        raise ValueError("the prompt is empty: at least one token is needed")
    last = len(new) - 1  # new[last] is always computed
    prefix = min(common_prefix(old, new), last)
    plan = ReusePlan(prefix)
    runs = _find_runs(old, new, prefix, last, min_chunk) if min_chunk else []
    at = prefix
    for run in runs:
        if run.new_start > at:
            plan.segments.append(Compute(at, run.new_start - at))
        plan.segments.append(run)
        at = run.new_start + run.length
    plan.segments.append(Compute(at, len(new) - at))
    return plan


def _find_runs(
    old: Sequence[int], new: Sequence[int], prefix: int, end: int, min_chunk: int
) -> list[Reuse]:
    """Runs of >= min_chunk tokens of new[prefix:end] found in old[prefix:], both in order."""
    if min_chunk < 1:
        raise ValueError(f"min_chunk must be positive, got {min_chunk}")
    k = min(min_chunk, MAX_KEY)
    index: dict[tuple[int, ...], list[int]] = {}
    for i in range(prefix, len(old) - k + 1):  # ascending, so each list is sorted
        index.setdefault(tuple(old[i : i + k]), []).append(i)
    runs: list[Reuse] = []
    old_from, p = prefix, prefix  # the cache is searched from old_from on
    while p + min_chunk <= end:
        found = index.get(tuple(new[p : p + k]))
        best = Reuse(0, p, 0)
        if found:
            first = bisect_left(found, old_from)
            for c in found[first : first + MAX_CANDIDATES]:
                n = _match_length(old, new, c, p, end)
                if n > best.length:
                    best = Reuse(c, p, n)
        if best.length >= min_chunk:
            runs.append(best)
            p += best.length
            old_from = best.old_start + best.length
        else:
            p += 1
    return runs


def _match_length(old: Sequence[int], new: Sequence[int], c: int, p: int, end: int) -> int:
    """How many tokens from old[c] and new[p] on are equal, new's stopping before `end`."""
    n, limit = 0, min(len(old) - c, end - p)
    while n < limit and old[c + n] == new[p + n]:
        n += 1
    return n
