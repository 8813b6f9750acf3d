"""A screenshot of code -> its text: the layout's lines read by the line reader, then put back on
the editor's grid.

What the sequence head does not decide, geometry does:
- blank lines: the gaps between the grid numbers of the text lines (layout.py);
- a line-number gutter: most lines start with a number that grows by one per grid line; the
  numbers are dropped and the code starts at the first ink right of them;
- indentation: where a line's code starts, in character cells from the leftmost line's start.
  The cell width comes from the reader's alignment: each character's column, regressed on its
  index within the line, gives the pitch of the font in pixels (median over lines).

Words the reader doubts are respelled where a lookalike glyph ("1" for "l", "5" for "S") makes
them words of code and the reader's scores allow it (lexicon.py).

Where the file type is known (Python), a transcript that does not parse has its least sure lines
swapped for the beam's next hypotheses, one line at a time, and the first that parses is kept.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import textwrap
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.reader import ctc, lexicon
from engine.reader.layout import (
    Layout,
    TextLine,
    band_rows,
    line_strip,
    read_layout,
    reading_ink,
    strip_x,
)

# Letters a reader takes a digit for, and the digit: a line number read as "lS0" is 150.
DIGIT_LOOKALIKES = str.maketrans("lIiOoDQSsZzBbGgqT", "11100005522866997")
GUTTER_WORD = re.compile(r"^(\w{1,7})(\s+|$)")
BEAM_WIDTH = 6
SURE = 0.98  # a line whose every column's best class is this sure skips the beam
MAX_PARSE_TRIES = 24
WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]+")
KNOWN_WORD = 3.0  # nats: what a known word is worth against the reader's own scores


@dataclass(frozen=True)
class ReadLine:
    k: int  # grid line number
    code: str  # the text from its first character (no indentation)
    indent: int  # character cells
    alternatives: tuple[str, ...]  # the beam's other readings of `code`, best first
    confidence: float  # the least sure column's best probability
    margins: tuple[float, ...] = ()  # how much less likely each alternative is (log, >= 0)


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
    """A line-number gutter: most lines open with a number (_line_number) followed by space
    or nothing, and those words end at the same x (numbers are right-aligned), or their
    numbers count up with the grid lines. Reading errors in a digit or two (an "l" for a "1")
    do not hide a gutter: lookalikes count as digits, and the alignment is geometry."""
    if len(texts) < 2:
        return False
    numbers = [_line_number(t) for t in texts]
    if sum(n is not None for n in numbers) < 0.7 * len(texts):
        return False
    offsets = [n - k for n, k in zip(numbers, ks, strict=True) if n is not None]
    if offsets and np.unique(offsets, return_counts=True)[1].max() >= 0.6 * len(texts):
        return True
    edges = np.array([e for e in right_edges if e is not None])
    if len(edges) < 0.7 * len(texts):
        return False
    return bool((np.abs(edges - np.median(edges)) <= 0.6 * cell).mean() >= 0.8)


def _line_number(text: str) -> int | None:
    """The number a line opens with, as a gutter shows it: a short word of digits, or of
    digits and the letters a reader mistakes for digits (at least one a real digit)."""
    m = GUTTER_WORD.match(text)
    if m is None or not any(c.isdigit() for c in m.group(1)):
        return None
    digits = m.group(1).translate(DIGIT_LOOKALIKES)
    return int(digits) if digits.isdigit() and digits.isascii() else None


def _words(code: str) -> list[str]:
    return WORD.findall(code)


@functools.cache
def _language_words(language: str | None) -> frozenset[str]:
    if language != "python":
        return frozenset()
    import builtins
    import keyword

    return frozenset(keyword.kwlist + keyword.softkwlist + dir(builtins) + ["self", "cls"])


def prefer_known_words(lines: list[ReadLine], language: str | None) -> list[ReadLine]:
    """Each unsure line read as the beam's alternative with the most known words, where the
    reader was not much surer of its first reading (KNOWN_WORD nats a word): a screenshot
    repeats its identifiers, so a word read the same way on other lines (or a keyword or
    builtin of the language) is likelier than a one-off spelling ("HANOLE" among twelve
    "HANDLE")."""
    counts = Counter(w for line in lines for w in set(_words(line.code)))
    base = _language_words(language)
    out = []
    for line in lines:
        if not line.alternatives:
            out.append(line)
            continue
        own = set(_words(line.code))

        def known(code: str, own: set[str] = own) -> int:
            return sum(w in base or counts[w] - (w in own) > 0 for w in _words(code))

        options = [(line.code, 0.0), *zip(line.alternatives, line.margins, strict=True)]
        best = max(options, key=lambda o: KNOWN_WORD * known(o[0]) - o[1])
        if best[0] == line.code:
            out.append(line)
            continue
        rest = tuple(a for a in (line.code, *line.alternatives) if a != best[0])
        out.append(dataclasses.replace(line, code=best[0], alternatives=rest, margins=()))
    return out


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
    layout, ink = read_layout(image) if layout is None else (layout, reading_ink(image, layout))
    if not layout.lines:
        return Transcript("", (), layout.pitch, 0.0, False, time.perf_counter() - t0)
    strips = [line_strip(ink, line, layout.pitch) for line in layout.lines]
    scores = reader(strips)
    best: list[ctc.Hypothesis] = []
    alternatives: list[tuple[ctc.Hypothesis, ...]] = []
    confidence: list[float] = []
    words = lexicon.shipped_lexicon()
    for s in scores:
        lp = ctc.log_softmax(s)
        sure = float(np.exp(lp.max(-1)).min()) if len(lp) else 1.0
        confidence.append(sure)
        beam = sure < SURE and language is not None
        hyps = ctc.beam(s, BEAM_WIDTH) if beam else [ctc.greedy(s)]
        if sure < SURE:  # a sure line has no lookalike in doubt
            hyps = [dataclasses.replace(h, text=lexicon.repair(h.text, h.columns, lp, words))
                    for h in hyps]
        best.append(hyps[0])
        alternatives.append(tuple(h for h in hyps[1:] if h.text != hyps[0].text))
    ks = [line.k for line in layout.lines]
    texts = [h.text for h in best]
    xs = [_char_x(line, layout.pitch, h.columns) for line, h in zip(layout.lines, best,
                                                                    strict=True)]
    edges = [float(x[len(m.group(1)) - 1]) if (m := GUTTER_WORD.match(t)) else None
             for t, x in zip(texts, xs, strict=True)]
    gutter = _gutter(texts, ks, edges, _cell_width(xs, layout.pitch * 0.5))
    starts: list[float] = []
    heads: list[int] = []  # characters of gutter number (and its space) before the code
    for line, h, x in zip(layout.lines, best, xs, strict=True):
        start, n = _code_start(ink, line, layout.pitch, line.x0), 0
        if gutter and (m := GUTTER_WORD.match(h.text)):
            n = m.end()
            # The code's first ink right of the number (halfway to where the reader put the
            # code's first character): the ink, not the character's column, so indentation is
            # measured the same way with and without a gutter.
            start = (_code_start(ink, line, layout.pitch,
                                 (float(x[n - 1 - len(m.group(2))]) + float(x[n])) / 2)
                     if n < len(x) else float(line.x1))
        starts.append(start)
        heads.append(n)
    cell = _cell_width([x[n:] for x, n in zip(xs, heads, strict=True)], layout.pitch * 0.5)

    def code_of(h: ctc.Hypothesis, line: TextLine) -> str:
        n = m.end() if gutter and (m := GUTTER_WORD.match(h.text)) else 0
        x = _char_x(line, layout.pitch, h.columns)
        return regap(h.text[n:], x[n:], cell).strip()

    codes = [code_of(h, line) for h, line in zip(best, layout.lines, strict=True)]
    kept = [i for i, c in enumerate(codes) if c]
    base = min((starts[i] for i in kept), default=0.0)
    lines = [ReadLine(layout.lines[i].k, codes[i], max(0, int(round((starts[i] - base) / cell))),
                      tuple(code_of(a, layout.lines[i]) for a in alternatives[i]),
                      confidence[i],
                      tuple(best[i].log_prob - a.log_prob for a in alternatives[i]))
             for i in kept]
    lines = prefer_known_words(lines, language)
    text = _prefer_parsing(lines) if language == "python" else _assemble(lines)
    return Transcript(text, tuple(lines), layout.pitch, cell, gutter, time.perf_counter() - t0)


def regap(text: str, x: np.ndarray, cell: float) -> str:
    """`text` with each run of spaces and underscores between two other characters as many
    cells long as the gap between those characters, where the gap is clearly a whole number
    of cells. In a monospace font the geometry knows what the reader cannot: "__" is one
    unbroken stroke in most fonts (so a dunder reads as "_hello_"), and long runs of spaces
    (aligned comments, tables) are hard to count. A run of spaces is changed only when it is
    long (3+ cells, read or measured): a space or two the reader tells well, and a dropped
    character would otherwise come back as a space. Runs at either end are the caller's."""
    if len(text) != len(x) or cell <= 0:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] not in " _":
            out.append(text[i])
            i += 1
            continue
        j = i
        while j < n and text[j] in " _":
            j += 1
        run = text[i:j]
        if i > 0 and j < n:
            run = _fit_run(run, (float(x[j]) - float(x[i - 1])) / cell - 1)
        out.append(run)
        i = j
    return "".join(out)


def _fit_run(run: str, cells: float) -> str:
    """A run of spaces and underscores made `cells` long (see regap)."""
    need = int(round(cells))
    if need < 1 or abs(cells - need) > 0.3 or need == len(run):
        return run
    if "_" not in run:
        return " " * need if max(len(run), need) >= 3 else run
    # The underscores take the difference: their count is what the reader gets wrong.
    segments = re.findall(r"_+| +", run)
    longest = max((k for k, seg in enumerate(segments) if seg[0] == "_"),
                  key=lambda k: len(segments[k]))
    grown = len(segments[longest]) + need - len(run)
    if grown < 1:
        return run
    segments[longest] = "_" * grown
    return "".join(segments)


def _code_start(ink: np.ndarray, line: TextLine, pitch: float, left: float) -> float:
    """The first ink column of a line's code from `left` on, passing over thin lines that
    fill the band top to bottom: indent guides (a block one line long is no rule the layout
    blanks) and a cursor bar; a glyph never fills its whole slot."""
    y0, y1 = band_rows(line.top, pitch)
    y0, y1 = max(0, y0), min(ink.shape[0], y1)
    lo = max(0, int(round(left)))
    band = ink[y0:y1, lo:line.x1] > 0.1
    if band.shape[0] < 4:
        return float(max(lo, line.x0))
    thin = max(2, int(round(0.15 * pitch)))
    full = band.mean(0) >= 0.9
    padded = np.concatenate([[False], band.any(0), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    for c0, c1 in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        if c1 - c0 <= thin and full[c0:c1].any():
            continue
        return float(lo + c0)
    return float(max(lo, line.x0))
