"""Extra context for ghost text: a ring of chunks of code the user opened or edited recently.

The chunks sit at the head of every ghost-text prompt, so they must change rarely and by
whole chunks: offers are queued, and the queue enters the ring only when the user has paused
(`settle`; the ghost-text session does it in the background, with the new prompt computed
before the ring changes), oldest chunks leaving first. Eviction from the head and additions
at the tail are the two changes the runtime's cache reuse handles best (the chunks after them
are shifted, not recomputed). A chunk much like one already kept replaces it instead of joining it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SIMILAR = 0.9  # a new chunk this alike (share of equal lines) replaces the older one


@dataclass(frozen=True)
class Chunk:
    path: str  # relative to the workspace
    start: int  # first line, 0-based
    text: str

    @property
    def end(self) -> int:
        return self.start + self.text.count("\n") + (0 if self.text.endswith("\n") else 1)


def similarity(a: str, b: str) -> float:
    """Share of lines two chunks have in common (a multiset overlap, as llama.vim's)."""
    la, lb = a.splitlines(), b.splitlines()
    if not la or not lb:
        return 0.0
    pool: dict[str, int] = {}
    for line in lb:
        pool[line] = pool.get(line, 0) + 1
    common = 0
    for line in la:
        if pool.get(line, 0) > 0:
            pool[line] -= 1
            common += 1
    return 2 * common / (len(la) + len(lb))


def chunk_around(path: str, lines: Sequence[str], line: int, size: int) -> Chunk | None:
    """`size` lines of a file (its lines with their endings) centred on `line`; None when
    the file is blank there."""
    start = max(0, min(line - size // 2, len(lines) - size))
    text = "".join(lines[start : start + size])
    return Chunk(path, start, text) if text.strip() else None


class ExtraRing:
    """The kept chunks (oldest first) and the queue of offered ones."""

    def __init__(
        self, max_chunks: int = 8, chunk_lines: int = 32, max_tokens: int = 1024
    ) -> None:
        self.max_chunks = max_chunks
        self.chunk_lines = chunk_lines
        self.max_tokens = max_tokens
        self.ring: list[Chunk] = []
        self.queue: list[Chunk] = []
        self.changes = 0  # how often the ring changed (a benchmark reports it)

    def offer(self, chunk: Chunk | None) -> None:
        if chunk is None or any(chunk == c for c in (*self.ring, *self.queue)):
            return
        self.queue = [c for c in self.queue if similarity(c.text, chunk.text) < SIMILAR]
        self.queue.append(chunk)
        del self.queue[: -self.max_chunks]

    def settle(self, count_tokens: Callable[[Chunk], int]) -> bool:
        """Move the queue into the ring (a similar kept chunk is replaced, the oldest leave
        while the ring is over its size or token budget); whether the ring changed."""
        made = self.settled(count_tokens)
        return made is not None and self.commit(*made)

    def settled(
        self, count_tokens: Callable[[Chunk], int]
    ) -> tuple[list[Chunk], list[Chunk]] | None:
        """What `settle` would make of the ring, leaving it as it is: (the new ring, the
        offers it took in), or None with nothing queued. The ghost-text session computes the
        prompt for the new ring before it `commit`s it."""
        taken = list(self.queue)
        if not taken:
            return None
        ring = list(self.ring)
        for chunk in taken:
            ring = [c for c in ring if similarity(c.text, chunk.text) < SIMILAR]
            ring.append(chunk)
        del ring[: -self.max_chunks]
        sizes = [count_tokens(c) for c in ring]
        while ring and sum(sizes) > self.max_tokens:
            ring.pop(0)
            sizes.pop(0)
        return ring, taken

    def commit(self, ring: list[Chunk], taken: list[Chunk]) -> bool:
        """Adopt a ring `settled` made; offers that came after it stay queued. Whether the
        ring changed."""
        self.queue = [c for c in self.queue if c not in taken]
        changed = ring != self.ring
        self.ring = ring
        self.changes += changed
        return changed

    def chunks(self, path: str, window: tuple[int, int]) -> list[Chunk]:
        """The ring's chunks for a prompt about `path` whose windows cover lines `window`
        [first, last): a chunk of that file overlapping them would only repeat them."""
        return visible(self.ring, path, window)


def visible(ring: Sequence[Chunk], path: str, window: tuple[int, int]) -> list[Chunk]:
    """The chunks of `ring` a prompt about `path` with windows over lines `window` takes."""
    first, last = window
    return [c for c in ring if c.path != path or c.end <= first or c.start >= last]
