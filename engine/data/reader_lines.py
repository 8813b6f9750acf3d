"""Training lines for the code reader: screenshots drawn by the renderer, cut into line strips by
the same layout step that reads a user's screenshot, each strip paired with the text it shows.

A strip shows what the picture shows of its line: the gutter's line number (right-aligned, then
two spaces) when the picture has a gutter, then the code, from its first ink to its last. Blank
code lines with a gutter show only their number. Lines the layout step cannot match to the text
(a picture whose bands do not fall one to a line) are dropped, never guessed: the count of
dropped pictures is kept (`LineStream.dropped`) so a layout regression shows in the logs.

The text files are the training split of the standard library and site-packages (Python), and
the repository's own C++, TypeScript and Lua, so the reader sees more than one language's
punctuation. Evaluation draws from the held-out files, fonts and styles instead.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.render import render_example
from engine.data.split import TRAIN
from engine.reader.layout import line_strip, read_layout

REPO = Path(__file__).resolve().parents[2]
OTHER_LANGUAGES = ("native/src", "vscode-extension/src", "tests/lsp")
OTHER_SUFFIXES = (".cpp", ".h", ".ts", ".lua")
MAX_SIDES = (384, 512, 768, 1024)


@dataclass(frozen=True)
class LineSample:
    strip: np.ndarray  # (LINE_HEIGHT, W) float32 ink
    text: str


def training_files() -> list[tuple[str, str]]:
    """(relative path, text) of every training-split file: Python from the corpus's training
    split, and the repository's sources in other languages."""
    from engine.data.corpus import indexable_text, stdlib_source
    from engine.data.split import is_heldout

    files = []
    source = stdlib_source()
    for relpath in source.relpaths:
        if not is_heldout(relpath) and (text := indexable_text(Path(source.root) / relpath)):
            files.append((relpath, text))
    for folder in OTHER_LANGUAGES:
        root = REPO / folder
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.suffix in OTHER_SUFFIXES and (text := indexable_text(path)):
                    files.append((str(path.relative_to(REPO)), text))
    return files


def visible_lines(text: str, line_numbers: bool, first_number: int = 1) -> list[str]:
    """What each line of a rendered window shows, from its first ink to its last: the
    gutter's number (right-aligned, as render.py draws it) and the code."""
    lines = text.rstrip("\n").split("\n")
    shown = []
    for i, line in enumerate(lines):
        full = f"{first_number + i}  {line}" if line_numbers else line
        shown.append(full.strip())
    return shown


def picture_lines(image: np.ndarray, text: str, line_numbers: bool,
                  first_number: int = 1, cursor_line: int | None = None
                  ) -> list[LineSample] | None:
    """The picture's strips paired with their text, or None when the layout's bands are not
    exactly the text's lines with ink. A blank line with the text cursor on it has ink too: its
    strip is kept with an empty text, so the reader learns to read a lone cursor as nothing."""
    layout, ink = read_layout(image)
    shown = visible_lines(text, line_numbers, first_number)
    if not layout.lines:
        return None
    k0 = layout.lines[0].k
    ks = [line.k - k0 for line in layout.lines]
    inked = sorted({i for i, s in enumerate(shown) if s} | (
        {cursor_line} if cursor_line is not None and cursor_line < len(shown) else set()))
    if ks != inked:
        return None
    return [LineSample(line_strip(ink, line, layout.pitch), shown[k])
            for line, k in zip(layout.lines, ks, strict=True)]


@dataclass
class LineStream:
    """Endless training lines from seeded pictures: picture n of seed s is the same on every
    run, so a resumed run continues the stream where it stopped."""

    files: list[tuple[str, str]]
    seed: int = 0
    split: str = TRAIN
    next_picture: int = 0
    dropped: int = 0
    drawn: int = 0
    pending: list[LineSample] = field(default_factory=list)

    def picture(self, n: int) -> list[LineSample]:
        rng = random.Random(f"reader:{self.seed}:{n}")
        path, text = self.files[rng.randrange(len(self.files))]
        shot = render_example(path, text, rng, self.split, rng.choice(MAX_SIDES))
        if shot is None:
            return []
        geometry = getattr(shot, "geometry", None)
        cursor = geometry.cursor if geometry is not None else None
        lines = picture_lines(shot.image, shot.text, shot.style.line_numbers,
                              getattr(shot.style, "line_number_start", 1),
                              cursor[0] if cursor is not None else None)
        self.drawn += 1
        if lines is None:
            self.dropped += 1
            return []
        return lines

    def lines(self) -> Iterator[LineSample]:
        while True:
            got = self.picture(self.next_picture)
            self.next_picture += 1
            yield from got

    def batch(self, size: int, pool: int = 8) -> list[LineSample]:
        """`size` lines of similar width (less padding): a pool of `pool` pictures' lines is
        sorted by width and a run of `size` taken from a random place in it."""
        rng = random.Random(f"reader-batch:{self.seed}:{self.next_picture}")
        while len(self.pending) < size * pool // 2:
            self.pending.extend(self.picture(self.next_picture))
            self.next_picture += 1
        self.pending.sort(key=lambda s: s.strip.shape[1])
        start = rng.randrange(max(1, len(self.pending) - size + 1))
        chosen = self.pending[start:start + size]
        del self.pending[start:start + size]
        return chosen
