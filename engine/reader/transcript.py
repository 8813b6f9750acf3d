"""A screenshot of code -> its text: the layout's lines read by the line reader, then put back on
the editor's grid.

What the sequence head does not decide, geometry does:
- blank lines: the gaps between the grid numbers of the text lines (layout.py);
- a line-number gutter: most lines start with a number that grows by one per grid line; the
  numbers are dropped and the code starts at the first ink right of them;
- indentation: where a line's code starts, in character cells from the leftmost line's start.
  The cell width comes from the reader's alignment: each character's column, regressed on its
  index within the line, gives the pitch of the font in pixels (median over lines).

Where the file type is known (Python), a transcript that does not parse has its least sure lines
swapped for the beam's next hypotheses, one line at a time, and the first that parses is kept.
"""

from __future__ import annotations

import ast
import re
import textwrap
import time
from dataclasses import dataclass

import numpy as np

from engine.reader import ctc
from engine.reader.layout import (
    Layout,
    TextLine,
    band_rows,
    find_layout,
    line_strip,
    reading_ink,
    strip_x,
)

GUTTER = re.compile(r"^(\d+)(\s+|$)")
GUTTER_WORD = re.compile(r"^(\w{1,7})(\s+|$)")
BEAM_WIDTH = 6
SURE = 0.98  # a line whose every column's best class is this sure skips the beam
MAX_PARSE_TRIES = 24


@dataclass(frozen=True)
class ReadLine:
    k: int  # grid line number
    code: str  # the text from its first character (no indentation)
    indent: int  # character cells
    alternatives: tuple[str, ...]  # the beam's other readings of `code`, best first
    confidence: float  # the least sure column's best probability


@dataclass(frozen=True)
class Transcript:
    text: str
    lines: tuple[ReadLine, ...]
    pitch: float
    char_width: float
    gutter: bool
    seconds: float


def _char_x(line: TextLine, pitch: float, columns: tuple[int, ...]) -> np.ndarray:
    return np.array([strip_x(line, pitch, 4 * c + 2) for c in columns], np.float64)


def _cell_width(xs: list[np.ndarray], fallback: float) -> float:
    """Median slope of character x against character index, over lines of 6+ characters."""
    slopes = [float(np.polyfit(np.arange(len(x)), x, 1)[0]) for x in xs if len(x) >= 6]
    slopes = [s for s in slopes if s > 1.0]
    return float(np.median(slopes)) if slopes else fallback


def _gutter(texts: list[str], ks: list[int], right_edges: list[float | None],
            cell: float) -> bool:
    """A line-number gutter: most lines open with a short, mostly-digit word followed by
    space or nothing, and those words end at the same x (numbers are right-aligned), or
    their numbers count up with the grid lines. Reading errors in a digit or two (an "l" for a
    "1") do not hide a gutter: the alignment is geometry."""
    if len(texts) < 2:
        return False
    heads = [m for t in texts if (m := GUTTER_WORD.match(t))]
    heads = [m for m in heads if sum(c.isdigit() for c in m.group(1)) >= len(m.group(1)) / 2]
    if len(heads) < 0.7 * len(texts):
        return False
    offsets = [int(m.group(1)) - k for t, k in zip(texts, ks, strict=True)
               if (m := GUTTER.match(t))]
    if offsets and np.unique(offsets, return_counts=True)[1].max() >= 0.6 * len(texts):
        return True
    edges = np.array([e for e in right_edges if e is not None])
    if len(edges) < 0.7 * len(texts):
        return False
    return bool((np.abs(edges - np.median(edges)) <= 0.6 * cell).mean() >= 0.8)


def _parses(text: str) -> bool:
    try:
        ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return False
    return True


def _assemble(lines: list[ReadLine], codes: list[str] | None = None) -> str:
    if not lines:
        return ""
    out: list[str] = []
    k0 = lines[0].k
    for i, line in enumerate(lines):
        while len(out) < line.k - k0:
            out.append("")
        code = codes[i] if codes is not None else line.code
        out.append((" " * line.indent + code) if code else "")
    return "\n".join(out) + "\n"


def _prefer_parsing(lines: list[ReadLine]) -> str:
    text = _assemble(lines)
    if _parses(text):
        return text
    codes = [line.code for line in lines]
    order = sorted((i for i, line in enumerate(lines) if line.alternatives),
                   key=lambda i: lines[i].confidence)
    tries = 0
    for i in order:
        for alt in lines[i].alternatives:
            tries += 1
            trial = codes[:i] + [alt] + codes[i + 1:]
            candidate = _assemble(lines, trial)
            if _parses(candidate):
                return candidate
            if tries >= MAX_PARSE_TRIES:
                return text
    return text


def read_lines(image: np.ndarray, reader, layout: Layout | None = None,
               language: str | None = None) -> Transcript:
    """Read `image` ((H, W, 3) uint8) with `reader` (engine.runtime.reader.Reader or anything
    mapping strips to per-column scores). `language` "python" turns on the parse check."""
    t0 = time.perf_counter()
    layout = layout or find_layout(image)
    if not layout.lines:
        return Transcript("", (), layout.pitch, 0.0, False, time.perf_counter() - t0)
    ink = reading_ink(image, layout)
    strips = [line_strip(ink, line, layout.pitch) for line in layout.lines]
    scores = reader(strips)
    best: list[ctc.Hypothesis] = []
    alternatives: list[tuple[str, ...]] = []
    confidence: list[float] = []
    for s in scores:
        lp = ctc.log_softmax(s)
        sure = float(np.exp(lp.max(-1)).min()) if len(lp) else 1.0
        confidence.append(sure)
        if sure >= SURE or language is None:
            best.append(ctc.greedy(s))
            alternatives.append(())
        else:
            hyps = ctc.beam(s, BEAM_WIDTH)
            best.append(hyps[0])
            alternatives.append(tuple(h.text for h in hyps[1:]))
    ks = [line.k for line in layout.lines]
    texts = [h.text for h in best]
    xs = [_char_x(line, layout.pitch, h.columns) for line, h in zip(layout.lines, best,
                                                                    strict=True)]
    edges = [float(x[len(m.group(1)) - 1]) if (m := GUTTER_WORD.match(t)) else None
             for t, x in zip(texts, xs, strict=True)]
    gutter = _gutter(texts, ks, edges, _cell_width(xs, layout.pitch * 0.5))
    starts: list[float] = []
    codes: list[str] = []
    code_xs: list[np.ndarray] = []
    for line, h, x in zip(layout.lines, best, xs, strict=True):
        text, start, cx = h.text, float(line.x0), x
        if gutter and (m := GUTTER_WORD.match(text)):
            n = m.end()
            text = text[n:]
            cx = x[n:]
            # The code's first ink right of the number: the ink, not the character's column,
            # so indentation is measured the same way with and without a gutter.
            start = _first_ink_after(ink, line, layout.pitch, float(x[n - 1 - len(m.group(2))])
                                     if n else float(line.x0), float(cx[0]) if len(cx) else None)
        codes.append(text.strip())
        starts.append(start)
        code_xs.append(cx)
    cell = _cell_width(code_xs, layout.pitch * 0.5)
    kept = [i for i, c in enumerate(codes) if c]
    base = min((starts[i] for i in kept), default=0.0)
    lines = [ReadLine(layout.lines[i].k, codes[i], max(0, int(round((starts[i] - base) / cell))),
                      tuple(_drop_gutter(a, gutter) for a in alternatives[i]), confidence[i])
             for i in kept]
    text = _prefer_parsing(lines) if language == "python" else _assemble(lines)
    return Transcript(text, tuple(lines), layout.pitch, cell, gutter, time.perf_counter() - t0)


def _drop_gutter(text: str, gutter: bool) -> str:
    if gutter and (m := GUTTER_WORD.match(text)):
        text = text[m.end():]
    return text.strip()


def _first_ink_after(ink: np.ndarray, line: TextLine, pitch: float, number_x: float,
                     code_x: float | None) -> float:
    """The first ink column of the code part of a gutter line: right of the number's last
    character, at or before where the reader put the code's first character."""
    if code_x is None:
        return float(line.x1)
    y0, y1 = band_rows(line.top, pitch)
    y0, y1 = max(0, y0), min(ink.shape[0], y1)
    lo = int(round((number_x + code_x) / 2))
    cols = np.flatnonzero((ink[y0:y1, lo:line.x1] > 0.1).any(0))
    return float(lo + cols[0]) if cols.size else code_x
