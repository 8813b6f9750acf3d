"""Fill-in-the-middle training rows in exactly the prompt the ghost-text pipeline builds.

Each example is drawn from one training-split file of the standard-library corpus (the path
hash split of engine/data/split.py: files it holds out for evaluation are never read; HumanEval
is never read). A span is cut at a random place: the rest of a line from a cursor inside it
(a quarter), one whole line (half; the cursor at the start of the emptied line, as HumanEval
single-line infilling puts it) or two to four whole lines (a quarter). The document is trimmed
to a few lines around the span (contexts no longer than the task needs) and laid out by
engine.runtime.prompt_window.layout with the model's FIM format (PSM, the vocabulary's
<fim_prefix>/<fim_suffix>/<fim_middle> ids, the repo and file markers the product adds), so
training and product prompts cannot drift. The target is the middle's tokens and the end token;
only they are scored.

Example `i` of a seed is a pure function of (seed, i): the stream resumes exactly from the
index of the next example.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.runtime.prompt_window import BlockTokens, Cursor, WindowSettings, layout

FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>")
END_TOKEN = "<|endoftext|>"
REPO = "workspace"  # GhostSettings.repo's default
MAX_EXAMPLE_TOKENS = 512
# The window a FIM example shows. "excerpt": 2-20 lines above the cursor and 0-8 below, at
# most MAX_EXAMPLE_TOKENS in all. "file": the whole file, trimmed by the ghost pipeline's own
# window (WindowSettings: up to 128 lines above, 32 below, about 2,000 tokens), so the model
# learns on the prompt the editor sends; at most FILE_EXAMPLE_TOKENS.
FIM_WINDOWS = ("excerpt", "file")
FILE_EXAMPLE_TOKENS = 2560
Example = tuple[list[int], list[int]]  # (prompt ids, target ids)
PACK_TRIES = 8  # examples passed over before a batch is closed


def check_window(window: str, name: str = "the FIM window") -> None:
    """ValueError, naming the setting as `name`, unless `window` is one of FIM_WINDOWS."""
    if window not in FIM_WINDOWS:
        raise ValueError(f"{name} is one of {', '.join(FIM_WINDOWS)}, got {window!r}")


def training_files() -> list[tuple[str, str]]:
    """(relative path, text) of the standard library's training-split files."""
    from engine.data.corpus import indexable_text, stdlib_source
    from engine.data.split import is_heldout

    source = stdlib_source()
    files = []
    for relpath in source.relpaths:
        if not relpath.endswith(".py") or is_heldout(relpath):
            continue
        text = indexable_text(Path(source.root) / relpath)
        if text is not None:
            files.append((relpath, text))
    return files


def fim_format_of(tokenizer: Any) -> Any:
    """The FIM format a FIM-trained file declares: the vocabulary's FIM ids in the metadata."""
    from engine.runtime.fim_format import FIM_METADATA_KEYS, detect_fim

    ids = [tokenizer.token_to_id(t) for t in FIM_TOKENS]
    if any(i is None for i in ids):
        raise ValueError(f"the vocabulary lacks the FIM tokens {', '.join(FIM_TOKENS)}")
    meta = {FIM_METADATA_KEYS[role][0]: i
            for role, i in zip(("prefix", "suffix", "middle", "pad"), ids, strict=True)}
    fmt = detect_fim(meta, tokenizer)
    if fmt.order != "psm":
        raise ValueError(f"expected a PSM format from the FIM ids, got {fmt.order}")
    return fmt


@dataclass(frozen=True)
class Cut:
    document: str  # the trimmed document with the middle taken out
    line: int  # the cursor
    column: int
    middle: str


def cut(text: str, rng: random.Random, whole_file: bool = False) -> Cut | None:
    """A cursor and the middle taken out at it: the rest of a line (a cursor inside the line,
    often mid-word), one line or 2-4 lines; the document is an excerpt around it, or with
    `whole_file` the whole text."""
    lines = text.split("\n")
    candidates = [i for i, ln in enumerate(lines) if ln.strip()]
    if len(candidates) < 3:
        return None
    i = rng.choice(candidates)
    kind = rng.random()
    before, after = rng.randint(2, 20), rng.randint(0, 8)
    if kind < 0.25:  # the rest of a line from a cursor inside it
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        column = rng.randint(indent, max(indent, len(line) - 1))
        middle = line[column:]
        lines = lines[:i] + [line[:column]] + lines[i + 1:]
        last = i
    else:  # whole lines, the cursor at the start of the first, now empty
        n = 1 if kind < 0.75 else rng.randint(2, 4)
        block = lines[i:i + n]
        middle = "\n".join(block)
        lines = lines[:i] + [""] + lines[i + len(block):]
        column = 0
        last = i
    if whole_file:
        return Cut("\n".join(lines), i, column, middle)
    start = max(0, i - before)
    excerpt = lines[start:last + 1 + after]
    return Cut("\n".join(excerpt) + "\n", i - start, column, middle)


def pack_batch(example: Callable[[int], Example], start: int, rows: int, row_len: int,
               longest: int = MAX_EXAMPLE_TOKENS) -> tuple[dict[str, torch.Tensor], int]:
    """`rows` rows of `row_len` tokens packed from examples start, start+1, ..., each into the
    first row it fits (first fit); an example that fits no row is passed over (the stream of
    examples never ends, and padding costs as much compute as a scored token) until
    PACK_TRIES have been; returns the batch and the index of the first example not looked at.
    Each example is its own document (attention and positions); `longest`: the most tokens
    an example may have, which a row must hold."""
    if row_len < longest:
        raise ValueError(f"rows must hold an example of {longest} tokens, "
                         f"got a row length of {row_len}")
    tokens = torch.zeros(rows, row_len, dtype=torch.long)
    labels = torch.full((rows, row_len), -100, dtype=torch.long)
    positions = torch.zeros(rows, row_len, dtype=torch.long)
    docs = torch.full((rows, row_len), -1, dtype=torch.long)  # padding: its own document
    used = [0] * rows
    index, misses = start, 0
    while misses < PACK_TRIES:
        prompt, target = example(index)
        index += 1
        ids = prompt + target
        n = len(ids)
        row = next((r for r in range(rows) if used[r] + n <= row_len), None)
        if row is None:
            misses += 1  # the examples are endless: one that fits nowhere is passed over
            continue
        at = used[row]
        tokens[row, at:at + n] = torch.tensor(ids)
        positions[row, at:at + n] = torch.arange(n)
        docs[row, at:at + n] = index - 1
        # position p predicts token p + 1: the last prompt token predicts the first target
        first = at + len(prompt) - 1
        labels[row, first:first + len(target)] = torch.tensor(target)
        used[row] += n
    return {"tokens": tokens, "labels": labels, "positions": positions, "docs": docs}, index


class FimRows:
    """Examples (prompt ids, target ids) for a seed, and packing them into rows."""

    def __init__(self, tokenizer: Any, files: list[tuple[str, str]], seed: int,
                 window: str = "excerpt") -> None:
        if not files:
            raise ValueError("no training files")
        check_window(window)
        self.tokenizer, self.files, self.seed = tokenizer, files, seed
        self.whole_file = window == "file"
        self.longest = FILE_EXAMPLE_TOKENS if self.whole_file else MAX_EXAMPLE_TOKENS
        self.fim = fim_format_of(tokenizer)
        self.end = tokenizer.token_to_id(END_TOKEN)
        self.blocks = BlockTokens(tokenizer)
        self.window = WindowSettings()
        self.repo = self.fim.repo_head(tokenizer, REPO)

    def example(self, index: int) -> tuple[list[int], list[int]]:
        """(prompt ids, target ids) of example `index`."""
        rng = random.Random(f"{self.seed}:{index}")
        while True:
            path, text = self.files[rng.randrange(len(self.files))]
            c = cut(text, rng, self.whole_file)
            if c is None or not c.middle.strip():
                continue
            cursor = Cursor.at(c.document, c.line, c.column)
            header = self.fim.file_head(self.tokenizer, path)
            prompt = layout(self.fim, cursor, [self.repo], header, self.window, self.blocks,
                            None).ids
            target = [*self.tokenizer.encode(c.middle, add_special=False,
                                             parse_special=False), self.end]
            if len(prompt) + len(target) <= self.longest:
                return prompt, target

    def batch(self, start: int, rows: int, row_len: int) -> tuple[dict[str, torch.Tensor], int]:
        return pack_batch(self.example, start, rows, row_len, self.longest)


def preview(rows: FimRows, count: int) -> Iterator[str]:
    tok = rows.tokenizer
    for i in range(count):
        prompt, target = rows.example(i)
        shown = tok.decode(target, skip_special=False)
        yield tok.decode(prompt, skip_special=False) + "«" + shown + "»"
