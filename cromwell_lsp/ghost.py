"""Ghost text: the code the model would insert at the cursor, fast enough to show as you type.

Transport-free; the language server (inline completion, and completion items for clients
without it), the HTTP server (`/infill`) and the command line call `GhostText.suggest` on the
thread that owns the model. What keeps it fast:
- the prompt is laid out for reuse (engine.runtime.prompt_window: stable head, grid-anchored
  windows, block token cache) and the runtime reuses the KV cache of the previous prompt;
- a suggestion already made answers again at once: for the same text, and while the user
  types the suggestion's own characters (the rest of it is the answer) — `SuggestionCache`;
- the caller prefetches the next suggestion (after accepting this one) when the model is idle;
- a suggestion is short by construction: one line when text follows the cursor, else a few
  lines ending where the indentation closes the block, and generation has a time cap.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from engine.runtime.fim_format import chunk_header
from engine.runtime.prompt_window import BlockTokens, Cursor, WindowSettings, layout
from engine.runtime.token_healing import heal_span

from .ghost_ring import Chunk

if TYPE_CHECKING:
    from engine.runtime.fim_format import FimFormat


class GhostCancelled(RuntimeError):
    """The request was superseded before its suggestion was ready."""


@dataclass(frozen=True)
class GhostSettings:
    window: WindowSettings = field(default_factory=WindowSettings)
    max_tokens: int = 64
    """Most tokens one suggestion may generate."""
    max_lines: int = 8
    """Most lines of a suggestion made where no text follows the cursor."""
    max_ms: int = 1000
    """Generation stops this long after its first token; the lines complete by then are the
    suggestion."""
    fim: str | None = None
    """The prompt format: a family name, "none" (prefix only), or None to read it from the model."""
    repo: str = "workspace"
    """The repository name for models with repo-level markers."""
    reuse_min: int | None = 32
    """Cached runs of at least this many tokens are kept past a change in the prompt (their
    keys shifted to their new positions); None keeps to the exact common prefix."""
    heal: bool = True
    """Token healing: the prompt stops before the word at the cursor and the suggestion's
    first tokens spell it again (engine/runtime/token_healing.py)."""


@dataclass(frozen=True)
class GhostRequest:
    path: str  # relative to the workspace
    text: str
    line: int  # 0-based
    column: int  # 0-based, in code points
    extra: tuple[Chunk, ...] = ()

    @property
    def before(self) -> str:
        return _text_before(self.text, self.line, self.column)

    @property
    def after(self) -> str:
        return self.text[len(self.before) :]


@dataclass(frozen=True)
class Suggestion:
    text: str
    source: str  # "model", "cache" (the same text seen before) or "typed" (typed through)
    prompt_tokens: int = 0
    computed_tokens: int = 0  # prompt tokens the model ran (the rest came from its cache)
    generated_tokens: int = 0
    prefill_ms: float = 0.0
    total_ms: float = 0.0


def _text_before(text: str, line: int, column: int) -> str:
    offset = 0
    for _ in range(line):
        nl = text.find("\n", offset)
        if nl < 0:
            return text
        offset = nl + 1
    return text[: offset + column]


# What ghost text asks the model for: a file with weights tuned for infilling runs it on them
# (engine/runtime/model.py, decoder_for).
TASK = "infill"
CLOSERS = frozenset(")]}>\"'`;:,. \t")  # what may follow the cursor of a prefix-only suggestion


def closers_only(text: str) -> bool:
    """Whether `text` (the line after the cursor) is only closing brackets, quotes and
    punctuation: where a model that sees no suffix can still suggest (as Copilot does)."""
    return all(ch in CLOSERS for ch in text)


def indent_of(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


class Shaper:
    """Where a suggestion ends, given what surrounds the cursor."""

    def __init__(self, cursor: Cursor, max_lines: int) -> None:
        # One line while the cursor's line has code on it (finishing a statement); several
        # only from a blank line (after Enter: the start of a block or a statement), as
        # Copilot does. A long suggestion mid-typing costs time a newer keystroke throws away.
        self.single_line = bool(cursor.line_after.strip() or cursor.line_before.strip())
        self.max_lines = max_lines
        before = cursor.line_before
        # Lines of the suggestion after its first that start left of this end it: the block
        # the cursor is in has closed.
        self.base_indent = indent_of(before) if before.strip() else len(before.expandtabs(4))
        following = (ln.strip() for ln in cursor.lines[cursor.line + 1 :])
        self.next_line = next((ln for ln in following if ln), None)

    def cut(self, text: str) -> int | None:
        """Where `text` (the suggestion so far) must end, or None while it may go on."""
        if self.single_line:
            nl = text.find("\n")
            return nl if nl >= 0 else None
        lines = text.split("\n")  # lines[0] ends the cursor line; the last may be unfinished
        offset = len(lines[0])
        for i, line in enumerate(lines[1:], start=1):
            finished = i < len(lines) - 1
            if i >= self.max_lines:
                return offset
            if line.strip():
                # A line left of the cursor's block closes it; one equal to the document's
                # next line means the model is writing what is already there.
                if indent_of(line) < self.base_indent:
                    return offset
                if finished and line.strip() == self.next_line:
                    return offset
            elif finished:
                return offset  # a blank line ends the suggestion
            offset += 1 + len(line)
        return None

    def finish(self, text: str, complete: bool, line_after: str) -> str:
        """The suggestion as shown: cut, stripped of trailing blank lines; a stream stopped
        early keeps its complete lines only; mid-line, text repeating the line's rest is
        dropped."""
        cut = self.cut(text)
        if cut is not None:
            text = text[:cut]
        elif not complete and "\n" in text:
            text = text[: text.rfind("\n")]
        text = text.rstrip(" \t\n") if "\n" in text else text.rstrip("\n")
        rest = line_after.strip()
        if self.single_line and rest and text.rstrip().endswith(rest):
            text = text.rstrip()[: -len(rest)]
        return text


@dataclass
class _Cached:
    path: str
    before: str
    after: str
    text: str


class SuggestionCache:
    """Recent suggestions by the text around their cursor. A request whose text after the
    cursor is the same and whose text before it is a suggestion's `before` plus a start of
    that suggestion (the user typed it, or accepted part of it) gets the rest at once."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._entries: list[_Cached] = []

    def put(self, path: str, before: str, after: str, text: str) -> None:
        same = (path, before, after)
        self._entries = [e for e in self._entries if (e.path, e.before, e.after) != same]
        self._entries.append(_Cached(path, before, after, text))
        del self._entries[: -self.capacity]

    def get(self, path: str, before: str, after: str) -> Suggestion | None:
        for e in reversed(self._entries):
            if e.path != path or e.after != after or not before.startswith(e.before):
                continue
            typed = before[len(e.before) :]
            if not e.text.startswith(typed):
                continue
            rest = e.text[len(typed) :]
            if typed and not rest.strip():
                continue  # typed through to its end: nothing left to suggest
            return Suggestion(rest, "typed" if typed else "cache")
        return None


class GhostText:
    """Suggestions for one model: its prompt format, the token cache, recent suggestions."""

    def __init__(self, model: Any, settings: GhostSettings | None = None) -> None:
        self.model = model
        self.settings = settings or GhostSettings()
        self.fim: FimFormat = model.fim_format(self.settings.fim)
        self.blocks = BlockTokens(model.tokenizer)
        self.cache = SuggestionCache()
        self.stop_ids = frozenset(model.stop_ids) | self.fim.end_ids
        self._chunk_ids: dict[Chunk, tuple[int, ...]] = {}
        self._heads: dict[str, tuple[int, ...]] = {}  # repo and file headers, encoded
        # Called with each prompt the model ran and its suggestion (the typing benchmark
        # replays the prompts through a peer engine): set by $CROMWELL_GHOST_TRACE.
        self.trace: Callable[[list[int], Suggestion, bool], None] | None = trace_from_env()

    # --- the prompt ------------------------------------------------------------------------
    def chunk_ids(self, chunk: Chunk) -> tuple[int, ...]:
        ids = self._chunk_ids.get(chunk)
        if ids is None:
            if len(self._chunk_ids) > 256:
                self._chunk_ids.clear()
            ids = tuple(self.fim.chunk_ids(self.model.tokenizer, chunk.path, chunk.text))
            self._chunk_ids[chunk] = ids
        return ids

    def _encoded(self, key: str, make: Callable[[], list[int]]) -> tuple[int, ...]:
        ids = self._heads.get(key)
        if ids is None:
            ids = self._heads[key] = tuple(make())
        return ids

    def prompt(self, request: GhostRequest, cursor: Cursor) -> list[int]:
        """[bos] repo marker, extra chunks, the file's own header, then the FIM windows."""
        tok, fim = self.model.tokenizer, self.fim
        head = [self._encoded("\0repo", lambda: fim.repo_head(tok, self.settings.repo))]
        chunks = head + [self.chunk_ids(c) for c in request.extra]
        if fim.file_sep is not None:
            header = self._encoded(request.path, lambda: fim.file_head(tok, request.path))
        elif request.extra:  # name the file after the snippets, as they are named
            header = self._encoded(
                "\0plain" + request.path,
                lambda: tok.encode(chunk_header(request.path), parse_special=False),
            )
        else:
            header = ()
        bos = tok.bos_id if getattr(tok, "add_bos", False) else None
        return layout(fim, cursor, chunks, header, self.settings.window, self.blocks, bos).ids

    def healed(self, request: GhostRequest) -> tuple[Cursor, Cursor, str]:
        """The request's cursor, the cursor the prompt is laid out at, and the characters
        between them that the suggestion spells first (token healing; none when it is off)."""
        cursor = Cursor.at(request.text, request.line, request.column)
        n = heal_span(cursor.line_before) if self.settings.heal else 0
        if cursor.line == 0 and n == cursor.column:
            n = 0  # the document's first word: healed, the prompt would hold none of the file
        return cursor, cursor.cut_before(n), cursor.line_before[len(cursor.line_before) - n :]

    def _prompt_ids(self, request: GhostRequest, cursor: Cursor) -> list[int]:
        ids = self.prompt(request, cursor)
        room = self.model.n_ctx - self.settings.max_tokens - 1
        return ids[-room:] if len(ids) > room else ids  # only a budget below the windows cuts

    def warm(self, request: GhostRequest, cancel: threading.Event | None = None) -> bool:
        """Run the request's prompt into the model's KV cache and suggest nothing: a later
        prompt with the same head starts from it. False when `cancel` stopped it first (what
        its prefill computed stays cached)."""
        _, healed, spell = self.healed(request)
        ids = self._prompt_ids(request, healed)
        if ids:
            for _ in self.model.stream_tokens(
                ids, max_tokens=1, stop_ids=self.stop_ids, cancel=cancel,
                reuse_min=self.settings.reuse_min, task=TASK, spell=spell,
            ):
                pass
        return not (cancel is not None and cancel.is_set())

    # --- suggestions -----------------------------------------------------------------------
    def cached(self, request: GhostRequest) -> Suggestion | None:
        return self.cache.get(request.path, request.before, request.after)

    def suggest(
        self,
        request: GhostRequest,
        cancel: threading.Event | None = None,
        on_piece: Callable[[str], None] | None = None,
        prefetch: bool = False,
    ) -> Suggestion:
        """The suggestion at the request's cursor (from the cache when it has one); raises
        GhostCancelled when `cancel` is set before it is ready, ValueError for a cursor
        outside the document. `on_piece` sees the text as it is generated; `prefetch` marks
        a suggestion made ahead of its request (for the trace)."""
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():  # superseded while it waited its turn
            raise GhostCancelled("superseded by a newer request")
        hit = self.cached(request)
        if hit is not None:
            return replace(hit, total_ms=(time.perf_counter() - started) * 1000)
        cursor, healed, spell = self.healed(request)
        if not self.fim.fills and not closers_only(cursor.line_after):
            # A model that cannot see the text after the cursor would write over it.
            return Suggestion("", "model", total_ms=(time.perf_counter() - started) * 1000)
        ids = self._prompt_ids(request, healed)
        if not ids or not (request.text.strip() or request.extra):
            # An empty document, and nothing to condition on: nothing to suggest (a FIM
            # prompt is never empty, its markers alone would get the model's idle guess).
            return Suggestion("", "model", total_ms=(time.perf_counter() - started) * 1000)
        shaper = Shaper(cursor, self.settings.max_lines)
        text, generated, complete, prefill_ms = self._generate(
            ids, shaper, cancel, started, on_piece, spell
        )
        if cancel is not None and cancel.is_set():
            raise GhostCancelled("superseded by a newer request")
        text = shaper.finish(text, complete, cursor.line_after)
        stats = getattr(self.model.decoder_for(TASK), "last_prefill", None)
        computed = getattr(stats, "computed", len(ids))
        self.cache.put(request.path, request.before, request.after, text)
        suggestion = Suggestion(
            text, "model", len(ids), computed, generated, prefill_ms,
            (time.perf_counter() - started) * 1000,
        )
        if self.trace is not None:
            self.trace(ids, suggestion, prefetch)
        return suggestion

    def _generate(
        self,
        ids: list[int],
        shaper: Shaper,
        cancel: threading.Event | None,
        started: float,
        on_piece: Callable[[str], None] | None,
        spell: str = "",
    ) -> tuple[str, int, bool, float]:
        """Stream the suggestion; (text, tokens generated, whether it ended by itself, ms
        until the first token). The stream starts by spelling `spell` (the characters token
        healing left out of the prompt, already in the document): they are not part of it."""
        from engine.runtime.generate import stream_text  # the runtime loads with the model

        s = self.settings
        counted: list[int] = []
        first_at: list[float] = []

        def count(tokens: Iterator[int]) -> Iterator[int]:
            for t in tokens:
                if not first_at:
                    first_at.append(time.perf_counter())
                counted.append(t)
                yield t

        tokens = self.model.stream_tokens(
            ids, max_tokens=s.max_tokens, stop_ids=self.stop_ids, cancel=cancel,
            reuse_min=s.reuse_min, task=TASK, spell=spell,
        )
        decode = self.model.tokenizer.decode
        pieces = stream_text(
            lambda t: decode(t, skip_special=True), count(tokens),
            ["\n"] if shaper.single_line else [],
        )
        text, spelt, complete = "", "", True
        try:
            for piece in pieces:
                if len(spelt) < len(spell):
                    spelt += piece
                    piece = spelt[len(spell) :]
                    if not piece:
                        continue
                text += piece
                if on_piece is not None:
                    on_piece(piece)
                if shaper.cut(text) is not None:
                    break
                if first_at and time.perf_counter() > first_at[0] + s.max_ms / 1000:
                    complete = False
                    break
        finally:
            pieces.close()
        prefill_ms = (first_at[0] - started) * 1000 if first_at else 0.0
        return text, len(counted), complete, prefill_ms


def trace_from_env() -> Callable[[list[int], Suggestion, bool], None] | None:
    """A writer of one JSON line per model prompt to the file $CROMWELL_GHOST_TRACE names."""
    path = os.environ.get("CROMWELL_GHOST_TRACE")
    if not path:
        return None

    def write(ids: list[int], s: Suggestion, prefetch: bool) -> None:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"ids": ids, "prefetch": prefetch,
                                  "generated_tokens": s.generated_tokens,
                                  "computed_tokens": s.computed_tokens,
                                  "total_ms": round(s.total_ms, 2)}) + "\n")

    return write


_GHOSTS: weakref.WeakKeyDictionary[Any, dict[GhostSettings, GhostText]] = (
    weakref.WeakKeyDictionary()
)


def ghost_for(model: Any, settings: GhostSettings) -> GhostText:
    """The model's GhostText for these settings, kept while the model lives, so that doors
    that hold a model for many requests (HTTP, the Python API) keep its caches. A few
    settings are kept at once (a client keeps to its own)."""
    kept = _GHOSTS.setdefault(model, {})
    ghost = kept.get(settings)
    if ghost is None:
        if len(kept) >= 4:
            kept.pop(next(iter(kept)))
        ghost = kept[settings] = GhostText(model, settings)
    return ghost


def cursor_after(prefix: str) -> tuple[int, int]:
    """The (line, column) at the end of `prefix`, 0-based, the column in code points."""
    return prefix.count("\n"), len(prefix) - (prefix.rfind("\n") + 1)


def accepted(request: GhostRequest, suggestion: str) -> GhostRequest:
    """The request the user makes after accepting `suggestion`: the document with it
    inserted, the cursor at its end (what a prefetch asks for)."""
    before = request.before + suggestion
    line, column = cursor_after(before)
    return replace(request, text=before + request.after, line=line, column=column)
