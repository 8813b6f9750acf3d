"""The completion prompt at a cursor (fill-in-the-middle, or the prefix alone), laid out so
that a keystroke changes as little of it as possible.

The model's KV cache keeps the previous prompt; the next request reuses its longest common
prefix (and, in the runtime, unchanged chunks further on). So the prompt's head must stay put
while the user types:

    [bos] extra-context chunks | file header | prefix window | (FIM) suffix window

- The prefix window starts on a grid line (a multiple of `grid` lines) at least `prefix_lines`
  above the cursor, so it moves only when the cursor crosses a grid line, not at every Enter.
- The file is tokenized in blocks of `grid` lines, each block cached by its text: a keystroke
  re-tokenizes the cursor's block only (a few hundred characters), never the file. Blocks are
  joined at line ends, where the byte-level BPE of every model family ends a token anyway.
- Document text is encoded with special-token parsing off: code that spells `<|fim_prefix|>`
  stays text; the markers come from the model's vocabulary as ids (`FimFormat`).

An editor's ghost text lays its prompts out with it, and so do the fill-in-the-middle training
rows and the infilling evaluation, so the three cannot drift apart.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.runtime.fim_format import FimFormat


class Encoder(Protocol):
    def encode(
        self, text: str, add_special: bool = False, parse_special: bool = True
    ) -> list[int]: ...


@dataclass(frozen=True)
class WindowSettings:
    prefix_lines: int = 128
    """Lines above the cursor that the prompt keeps at least (the window starts on a grid line)."""
    suffix_lines: int = 32
    """Lines below the cursor line given to a fill-in-the-middle model."""
    grid: int = 16
    """Granularity of the window's start and of the tokenizer cache, in lines."""
    prefix_tokens: int = 2048
    """Most tokens of the prefix window (a file of very long lines is cut at its head)."""
    suffix_tokens: int = 512
    """Most tokens of the suffix window (cut at its tail)."""


def split_lines(text: str) -> list[str]:
    """The lines of `text` with their endings, split at "\n" only (LSP's line breaks are
    \n and \r\n; str.splitlines would also break at form feeds and U+2028)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass(frozen=True)
class Cursor:
    """A position in a document: 0-based line and column in code points."""

    lines: tuple[str, ...]  # the document's lines, each with its line ending
    line: int
    column: int

    @classmethod
    def at(cls, text: str, line: int, column: int) -> Cursor:
        lines = tuple(split_lines(text))
        if line < 0 or line > len(lines):
            raise ValueError(f"line {line + 1} is outside the {len(lines)}-line document")
        current = lines[line] if line < len(lines) else ""
        width = len(current.rstrip("\r\n"))
        if column < 0 or column > width:
            raise ValueError(f"column {column + 1} is outside line {line + 1} ({width} characters)")
        return cls(lines, line, column)

    @property
    def current(self) -> str:
        return self.lines[self.line] if self.line < len(self.lines) else ""

    @property
    def line_before(self) -> str:
        """The cursor line up to the cursor."""
        return self.current[: self.column]

    @property
    def line_after(self) -> str:
        """The cursor line from the cursor on, without its line ending."""
        return self.current.rstrip("\r\n")[self.column :]

    def cut_before(self, n: int) -> Cursor:
        """The document without the `n` characters before the cursor, the cursor where they
        began (a prompt healed for token healing: the answer spells them again)."""
        if not 0 <= n <= self.column:
            raise ValueError(f"cannot cut {n} characters before column {self.column + 1}")
        if n == 0:
            return self
        current = self.current  # a line of the document: column >= n > 0
        lines = list(self.lines)
        lines[self.line] = current[: self.column - n] + current[self.column :]
        return Cursor(tuple(lines), self.line, self.column - n)


class BlockTokens:
    """Token ids of text blocks, remembered by text (least recently used dropped first)."""

    def __init__(self, encoder: Encoder, capacity: int = 4096) -> None:
        self.encoder = encoder
        self.capacity = capacity
        self._ids: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __call__(self, text: str) -> tuple[int, ...]:
        if not text:
            return ()
        ids = self._ids.get(text)
        if ids is not None:
            self._ids.move_to_end(text)
            self.hits += 1
            return ids
        self.misses += 1
        ids = tuple(self.encoder.encode(text, add_special=False, parse_special=False))
        self._ids[text] = ids
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return ids


@dataclass(frozen=True)
class WindowPrompt:
    ids: list[int]
    prefix_start: int  # first document line in the prefix window
    suffix_end: int  # document line after the suffix window (== cursor line + 1 without FIM)
    extra_tokens: int


def window_start(line: int, settings: WindowSettings) -> int:
    """The prefix window's first line: on the grid, at least `prefix_lines` above `line`."""
    first = max(0, line - settings.prefix_lines)
    return first // settings.grid * settings.grid


def prefix_ids(
    cursor: Cursor, settings: WindowSettings, blocks: BlockTokens
) -> tuple[list[int], int]:
    """Tokens of the prefix window (whole grid blocks, then the cursor's block up to the
    cursor), and the window's first line."""
    start = window_start(cursor.line, settings)
    grid = settings.grid
    cursor_block = max(start, cursor.line // grid * grid)
    ids: list[int] = []
    for b in range(start, cursor_block, grid):
        ids.extend(blocks("".join(cursor.lines[b : b + grid])))
    ids.extend(blocks("".join(cursor.lines[cursor_block : cursor.line]) + cursor.line_before))
    if len(ids) > settings.prefix_tokens:
        ids = ids[-settings.prefix_tokens :]
    return ids, start


def suffix_ids(
    cursor: Cursor, settings: WindowSettings, blocks: BlockTokens
) -> tuple[list[int], int]:
    """Tokens of the suffix window: the rest of the cursor line and of its block, then whole
    blocks, ending on the grid; and the document line after it."""
    grid, n = settings.grid, len(cursor.lines)
    after_cursor = cursor.current[len(cursor.line_before) :]
    next_block = min(n, (cursor.line // grid + 1) * grid)
    ids = list(blocks(after_cursor + "".join(cursor.lines[cursor.line + 1 : next_block])))
    last = min(n, -(-(cursor.line + 1 + settings.suffix_lines) // grid) * grid)
    for b in range(next_block, last, grid):
        ids.extend(blocks("".join(cursor.lines[b : b + grid])))
    return ids[: settings.suffix_tokens], max(last, next_block)


def layout(
    fim: FimFormat,
    cursor: Cursor,
    extra: Sequence[Sequence[int]],
    header: Sequence[int],
    settings: WindowSettings,
    blocks: BlockTokens,
    bos: int | None,
) -> WindowPrompt:
    """The prompt ids for a suggestion at `cursor`: extra chunks, the file's header, then the
    windows in the model's own FIM order (prefix only for a model that cannot fill in)."""
    before, start = prefix_ids(cursor, settings, blocks)
    if fim.fills:
        after, end = suffix_ids(cursor, settings, blocks)
    else:
        after, end = [], cursor.line + 1
    chunks = [list(c) for c in extra]
    if header:
        chunks.append(list(header))
    ids = fim.assemble(chunks, before, after, bos=bos)
    return WindowPrompt(ids, start, end, sum(len(c) for c in chunks))
