"""Ghost text for an editor session: what a stream of keystrokes needs around `GhostText`.

- Newest first: a request supersedes the one before it, which stops between two tokens.
- Bursts coalesce: a request that follows the previous one within `BURST_S` waits that long
  first, and is dropped if another arrives meanwhile.
- Answers without the model where one is known (`GhostText.cached`), on the event loop.
- After a suggestion from the model, the next one (the text with it accepted) is prefetched
  at low priority; any request of the user's stops the prefetch.
- Offered extra context enters the ring in the background too, once the user has paused
  `SETTLE_S` after an answer: the prompt with the new ring is computed into the KV cache first,
  and the ring changes only when that is done. So the head of the prompt never changes under a
  user who is typing (each change would cost its chunks' prefill), only while they read.
- Extra context: chunks of files the user opened, of the files most related to them (the
  context manager's ranking: imports, shared names) and of regions they edited before moving
  on are offered to the ring (`ghost_ring`), which takes them in when the user pauses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engine.runtime.prompt_window import window_start

from .context import MIN_SCORE, SourceFile, Target, rank
from .ghost import GhostCancelled, GhostRequest, GhostSettings, GhostText, Suggestion, accepted
from .ghost_ring import Chunk, ExtraRing, chunk_around, visible
from .model_service import ModelService

BURST_S = 0.03  # requests closer together than this are a burst of keystrokes
SETTLE_S = 1.0  # the ring takes in offered chunks after a pause this long
RELATED_FILES = 2  # files whose best window an opened file brings into the ring


@dataclass
class SessionStats:
    """What `cromwell.ghostStats` reports: counts, and each suggestion the model made for a
    request (its prompt size, the tokens it ran rather than took from the KV cache, ms)."""

    requests: int = 0
    from_model: int = 0
    from_cache: int = 0
    superseded: int = 0
    prefetched: int = 0
    model_requests: list[dict[str, float]] = field(default_factory=list)

    def record(self, s: Suggestion) -> None:
        self.from_model += 1
        if len(self.model_requests) < 100_000:
            self.model_requests.append({
                "prompt_tokens": s.prompt_tokens, "computed_tokens": s.computed_tokens,
                "generated_tokens": s.generated_tokens, "prefill_ms": round(s.prefill_ms, 2),
                "total_ms": round(s.total_ms, 2),
            })


class GhostSession:
    def __init__(self, models: ModelService) -> None:
        self.models = models
        self.ring = ExtraRing()
        self.stats = SessionStats()
        self._ghost: GhostText | None = None
        self._ghost_key: tuple[int, GhostSettings] | None = None
        self._latest = 0  # sequence number of the newest request
        self._last_at = 0.0  # when the newest request came
        self._flag: threading.Event | None = None  # the running request's stop flag
        self._edits: dict[str, tuple[int, str]] = {}  # path -> (line, text) of its last edit
        self._last_edited: str | None = None
        # A ring settled and computed in the background, adopted by the next request.
        self._settled: tuple[list[Chunk], list[Chunk]] | None = None

    # --- what the editor reports ----------------------------------------------------------
    def opened(self, path: str, text: str) -> None:
        """A file was opened: its head (imports, first definitions) is worth having around."""
        self.ring.offer(chunk_around(path, text.splitlines(True), 0, self.ring.chunk_lines))

    def related(self, target: Target, candidates: Sequence[SourceFile],
                recency: Mapping[str, int]) -> list[Chunk]:
        """The best windows of the workspace files most related to an opened file (its
        imports, shared names: the context manager's ranking), for `offer`. Touches no
        state of the session, so it may run off the event loop."""
        size, out = self.ring.chunk_lines, []
        for score in rank(target, candidates, recency)[:RELATED_FILES]:
            if score.score < MIN_SCORE:
                break
            text = next(c.text for c in candidates if c.path == score.path)
            middle = (score.window[0] + score.window[1]) // 2
            chunk = chunk_around(score.path, text.splitlines(True), middle, size)
            if chunk is not None:
                out.append(chunk)
        return out

    def offer(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            self.ring.offer(chunk)

    def edited(self, path: str, text: str, line: int) -> None:
        """An edit at `line` of `path`. The region of the last edit becomes extra context
        when the user moves on: to a place further than a chunk away, or to another file."""
        size = self.ring.chunk_lines
        left = self._last_edited
        if left is not None and left != path and left in self._edits:
            old_line, old_text = self._edits[left]
            self.ring.offer(chunk_around(left, old_text.splitlines(True), old_line, size))
        previous = self._edits.get(path)
        if previous is not None and abs(previous[0] - line) > size:
            self.ring.offer(chunk_around(path, previous[1].splitlines(True), previous[0], size))
        self._edits[path] = (line, text)
        self._last_edited = path

    # --- suggestions ----------------------------------------------------------------------
    def ghost(self, model: Any, settings: GhostSettings) -> GhostText:
        key = (id(model), settings)
        if self._ghost is None or self._ghost_key != key:
            self._ghost, self._ghost_key = GhostText(model, settings), key
        return self._ghost

    async def suggest(
        self, model: Any, settings: GhostSettings, path: str, text: str, line: int, column: int
    ) -> Suggestion | None:
        """The suggestion at (line, column), or None when a newer request superseded this
        one. Raises ValueError for a position outside the document."""
        self._latest += 1
        mine = self._latest
        now = time.monotonic()
        burst = now - self._last_at < BURST_S
        self._last_at = now
        self.stats.requests += 1
        if self._flag is not None:
            self._flag.set()  # the request before this one is answered by this one
        if burst:
            await asyncio.sleep(BURST_S)
            if self._latest != mine:
                self.stats.superseded += 1
                return None
        ghost = self.ghost(model, settings)
        settled, self._settled = self._settled, None
        if settled is not None:
            self.ring.commit(*settled)
        window = (window_start(line, settings.window), line + 1 + settings.window.suffix_lines)
        request = GhostRequest(path, text, line, column, tuple(self.ring.chunks(path, window)))
        hit = ghost.cached(request)
        if hit is not None:  # the background job running (a prefetch) goes on
            self.stats.from_cache += 1
            return hit
        flag = self._flag = threading.Event()
        try:
            suggestion = await self.models.run(lambda f: ghost.suggest(request, f), flag)
        except GhostCancelled:
            self.stats.superseded += 1
            return None
        finally:
            if self._flag is flag:
                self._flag = None
        self.stats.record(suggestion)
        shown = accepted(request, suggestion.text) if suggestion.text.strip() else None
        self._after_answer(ghost, request, window, shown)
        return suggestion

    def _after_answer(
        self,
        ghost: GhostText,
        request: GhostRequest,
        window: tuple[int, int],
        accept: GhostRequest | None,
    ) -> None:
        """The background job after an answer (one job: a second would stop the first):
        prefetch the suggestion after `accept`ing it, then, once the user has paused, settle
        the ring and compute the prompt it makes for this request, adopting the ring only if
        that finished. Any request of the user's stops it."""
        asked = self._last_at

        def job(flag: threading.Event) -> None:
            if accept is not None:
                ghost.suggest(accept, flag, prefetch=True)
                self.stats.prefetched += 1
            if not self.ring.queue:
                return
            idle = SETTLE_S - (time.monotonic() - asked)
            if idle > 0 and flag.wait(idle):
                return
            made = self.ring.settled(lambda c: len(ghost.chunk_ids(c)))
            if made is None:
                return
            extra = tuple(visible(made[0], request.path, window))
            if extra == request.extra or ghost.warm(replace(request, extra=extra), flag):
                self._settled = made

        self.models.background(job)
