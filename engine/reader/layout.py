"""The layout of a screenshot of code: where its text lines are, found from the picture alone.

Editors draw code on a grid: every line takes the same height (the pitch) and every character the
same width. So the layout step looks for that grid instead of segmenting glyphs:

1. The background: the picture's most common colour, and per row the row's own most common
   colour where it differs (a current-line highlight is a band of another background).
2. Ink: how far each pixel is from its row's background, in the channel that differs most, so
   any theme (dark, light, coloured tokens) gives the same "ink" picture.
3. Rows with ink form runs; the centres of the runs that hold one line each fit the grid
   `centre = offset + pitch * k` (least squares over whole line numbers k).
4. Every grid band with ink in its middle is a text line; bands without are blank lines. A band
   keeps its number k, so the blank lines between two text lines are the gap in k.

Each line is then cut out as an ink strip of fixed height (`LINE_HEIGHT`), which is what the
reader reads. Indentation is decided later, from where the ink starts and the character width
the reader's alignment gives (engine/reader/transcript.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

LINE_HEIGHT = 32  # the reader's input height in pixels
WIDTH_MULTIPLE = 4  # the reader's stem stride: strip widths are padded to it
MARGIN = 0.25  # blank margin left and right of a strip's ink, in pitches
MIN_INK = 24 / 255  # a pixel this far from the background can be ink
MIN_PITCH = 6.0  # pixels: anything tighter is not a line of text a person can read


@dataclass(frozen=True)
class TextLine:
    k: int  # the line's place on the grid; k + 1 != next k means blank lines between
    top: float  # the band's rows: [top, top + pitch)
    x0: int  # first column with ink
    x1: int  # one past the last column with ink


@dataclass(frozen=True)
class Layout:
    background: tuple[int, int, int]
    pitch: float  # line height in pixels
    lines: tuple[TextLine, ...]  # the bands with ink, top to bottom

    def blank_lines_before(self, i: int) -> int:
        return 0 if i == 0 else self.lines[i].k - self.lines[i - 1].k - 1


def background_colour(image: np.ndarray) -> tuple[int, int, int]:
    """The most common colour (sampled on a grid, so a large picture costs the same)."""
    h, w = image.shape[:2]
    step = max(1, int(np.sqrt(h * w / 65536)))
    packed = _pack(image[::step, ::step])
    values, counts = np.unique(packed, return_counts=True)
    v = int(values[np.argmax(counts)])
    return (v >> 16) & 255, (v >> 8) & 255, v & 255


def _pack(rgb: np.ndarray) -> np.ndarray:
    a = rgb.astype(np.int32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def ink_map(image: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """(H, W) float32 in [0, 1]: each pixel's largest channel distance from its row's
    background. A row whose pixels are mostly another colour (a highlighted line) is measured
    against that colour instead."""
    rgb = np.asarray(image, dtype=np.int16)[..., :3]
    bg = np.asarray(background, dtype=np.int16)
    ink = np.abs(rgb - bg).max(-1).astype(np.float32) / 255.0
    plain = (ink <= 8 / 255).mean(1)
    for y in np.nonzero(plain < 0.4)[0]:
        values, counts = np.unique(_pack(image[y, :, :3]), return_counts=True)
        if counts.max() >= 0.4 * image.shape[1]:
            v = int(values[np.argmax(counts)])
            row_bg = np.array([(v >> 16) & 255, (v >> 8) & 255, v & 255], np.int16)
            ink[y] = np.abs(rgb[y] - row_bg).max(-1) / 255.0
    return ink


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _threshold(ink: np.ndarray, share: float = 0.12) -> float:
    """`share` of the picture's near-full ink: 0.12 keeps a dim comment's strokes; the rows
    are found with a higher share, which JPEG ringing between two lines never reaches."""
    strong = ink[ink > MIN_INK]
    if strong.size == 0:
        return MIN_INK
    return max(MIN_INK, share * float(np.percentile(strong, 99)))


def _autocorrelation_pitch(rows: np.ndarray) -> float | None:
    """The period of the rows' ink profile (lines run together, so no gap separates them):
    the first autocorrelation peak that stands out, or None."""
    x = rows.astype(np.float64) - rows.mean()
    n = len(x)
    if n < 3 * MIN_PITCH or not x.any():
        return None
    ac = np.correlate(x, x, "full")[n - 1:] / (x @ x)
    lo, hi = int(MIN_PITCH), n // 2
    for lag in range(lo, hi):
        if ac[lag] > 0.2 and ac[lag] >= ac[lag - 1] and ac[lag] >= ac[lag + 1]:
            # Parabolic refinement: a pitch is rarely a whole number of pixels after scaling.
            a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
            denom = a - 2 * b + c
            return lag + (0.5 * (a - c) / denom if denom else 0.0)
    return None


def _fit_grid(runs: list[tuple[int, int]]) -> tuple[float, float]:
    """(offset, pitch) of the grid through the centres of the runs that look like one whole
    line: not a fragment (a row of underscores, a dim comment's dots) and not two lines run
    together (tight spacing lets descenders touch the next line's ascenders)."""
    heights = np.array([e - s for s, e in runs], np.float64)
    centres = np.array([(s + e) / 2 for s, e in runs], np.float64)
    tall = float(np.percentile(heights, 75))
    single = (heights >= 0.55 * tall) & (heights <= 1.35 * tall)
    c = centres[single]
    if c.size < 2:
        return float(centres[int(np.argmax(heights))]), max(MIN_PITCH, tall * 1.25)
    diffs = np.diff(c)
    near = diffs[diffs >= max(MIN_PITCH, 0.7 * tall)]
    if near.size == 0:
        return float(c[0]), max(MIN_PITCH, tall * 1.25)
    smallest = float(near.min())
    pitch = float(np.median(near[near <= 1.4 * smallest]))
    # Whole line numbers from each step to the next (a step spans one to a few lines, so its
    # rounding is safe even where the first guess of the pitch is a little off), then the
    # least-squares line through them, without the centres that sit far off it.
    k = np.concatenate([[0.0], np.cumsum(np.maximum(1.0, np.round(diffs / pitch)))])
    keep = np.ones(c.size, bool)
    intercept = float(c[0])
    for _ in range(3):
        if np.ptp(k[keep]) == 0:
            break
        slope, intercept = np.polyfit(k[keep], c[keep], 1)
        pitch = float(slope)
        keep = np.abs(c - (intercept + pitch * k)) <= 0.2 * pitch
        if keep.sum() < 2:
            keep[:] = True
    offset = float(np.median((c - pitch * k)[keep]))
    return offset, pitch


def find_layout(image: np.ndarray) -> Layout:
    """The text lines of an (H, W, 3) uint8 screenshot."""
    return read_layout(image)[0]


def read_layout(image: np.ndarray) -> tuple[Layout, np.ndarray]:
    """The text lines of an (H, W, 3) uint8 screenshot and the ink they are read from (what
    reading_ink gives for that layout), from one pass over the picture."""
    if image.ndim != 3 or image.shape[2] < 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"a screenshot must be (H, W, 3) pixels, got {image.shape}")
    bg = background_colour(image[..., :3])
    return layout_of_ink(text_ink(image, bg), bg)


def _slot_edge(rows: np.ndarray, offset: float, pitch: float, ks: list[int]) -> float:
    """Where a line's slot ends below its ink centre: the offset (0.3 to 0.7 pitch) whose
    rows hold the least ink over all lines. Text sits above its slot's middle (ascenders are
    taller than descenders), so half a pitch would cut into the next slot, where a cursor bar
    or a highlight starts."""
    if not ks:
        return pitch / 2
    centres = offset + pitch * np.asarray(ks, np.float64)
    best, best_ink = pitch / 2, np.inf
    for u in np.linspace(0.3, 0.7, 21) * pitch:
        at = np.clip(np.round(centres + u).astype(int), 0, len(rows) - 1)
        total = float(rows[at].sum())
        if total < best_ink - 1e-9 or (total <= best_ink + 1e-9
                                       and abs(u - pitch / 2) < abs(best - pitch / 2)):
            best, best_ink = float(u), total
    return best


def _column_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every vertical run of True in `mask` (H, W): its column, first row, one past its last."""
    h, w = mask.shape
    padded = np.zeros((w, h + 2), bool)
    padded[:, 1:-1] = mask.T
    edges = np.flatnonzero(padded.reshape(-1)[1:] != padded.reshape(-1)[:-1]) + 1
    starts, ends = edges[::2], edges[1::2]
    return starts // (h + 2), starts % (h + 2) - 1, ends % (h + 2) - 1


def rule_pixels(strong: np.ndarray, pitch: float, lines: float = 1.6) -> np.ndarray:
    """The pixels of an editor's vertical rules, which are no text: thin lines taller than a
    line of text (indent guides run on through the gaps between lines; a glyph never crosses
    the gap to the next line). A wide block of such runs is left alone: a picture or a
    selection, not a rule."""
    h, w = strong.shape
    rules = np.zeros_like(strong)
    if pitch <= 0:
        return rules
    cols, tops, bottoms = _column_runs(strong)
    tall = bottoms - tops >= lines * pitch
    if not tall.any():
        return rules
    thin = max(2, int(round(0.15 * pitch)))
    width_of = np.zeros(w, np.int32)
    for c0, c1 in _runs(np.bincount(cols[tall], minlength=w) > 0):
        width_of[c0:c1] = c1 - c0
    for c, y0, y1 in zip(cols[tall], tops[tall], bottoms[tall], strict=True):
        if width_of[c] <= thin:
            rules[y0:y1, c] = True
    return rules


def without_rules(ink: np.ndarray, pitch: float, lines: float = 1.6) -> np.ndarray:
    """`ink` with the editor's rules (rule_pixels, `lines` pitches tall or more) blanked."""
    rules = rule_pixels(ink > _threshold(ink), pitch, lines)
    if rules.any():
        ink = ink.copy()
        ink[rules] = 0.0
    return ink


def text_ink(image: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """ink_map without the rules that run down many lines (an active indent guide would join
    every line into one): the line period comes from the rows' profile, which a rule only
    lifts evenly, and a rule must span 2.5 periods (a harmonic taken for the period must not
    erase tall glyphs). layout_of_ink then removes shorter ones on the fitted grid."""
    ink = ink_map(image, background)
    period = _autocorrelation_pitch((ink > _threshold(ink, 0.3)).sum(1))
    return ink if period is None else without_rules(ink, period, 2.5)


def layout_of_ink(ink: np.ndarray, bg: tuple[int, int, int]) -> tuple[Layout, np.ndarray]:
    """The layout of text_ink's `ink`, and that ink with the rules of the fitted grid
    blanked."""
    strong = ink > _threshold(ink)
    core = ink > _threshold(ink, 0.3)
    row_count = core.sum(1)
    runs = [(s, e) for s, e in _runs(row_count >= 1) if e - s >= 2]
    if not runs:
        return Layout(bg, 0.0, ()), ink
    offset, pitch = _fit_grid(runs)
    heights = sorted(e - s for s, e in runs)
    if pitch > 2.2 * heights[len(heights) // 4]:
        # Fewer, taller runs than lines: lines touch (tight spacing, tall glyphs). The grid
        # comes from the profile's period instead, its phase from the emptiest rows.
        period = _autocorrelation_pitch(row_count[runs[0][0]:runs[-1][1]])
        if period is not None and period < 0.8 * pitch:
            pitch = period
            ys = np.arange(runs[0][0], runs[-1][1])
            phases = np.linspace(0, pitch, max(2, int(pitch * 4)), endpoint=False)
            gaps = [np.interp(runs[0][0] + ph + pitch * np.arange(len(ys) / pitch),
                              ys, row_count[ys]).sum() for ph in phases]
            offset = runs[0][0] + float(phases[int(np.argmin(gaps))]) + pitch / 2
    ink = without_rules(ink, pitch)
    strong = ink > _threshold(ink)
    height = ink.shape[0]
    k_first = int(np.floor((runs[0][0] - offset) / pitch + 0.5))
    k_last = int(np.ceil((runs[-1][1] - offset) / pitch - 0.5))
    inked = []
    for k in range(k_first, k_last + 1):
        centre = offset + pitch * k
        inner0, inner1 = int(round(centre - 0.35 * pitch)), int(round(centre + 0.35 * pitch))
        inner0, inner1 = max(0, inner0), min(height, inner1)
        if inner1 > inner0 and strong[inner0:inner1].sum() >= 2:
            inked.append(k)
    below = _slot_edge(row_count, offset, pitch, inked)
    lines = []
    for k in inked:
        top = offset + pitch * k + below - pitch
        y0, y1 = band_rows(top, pitch)
        y0, y1 = max(0, y0), min(height, y1)
        cols = np.flatnonzero(strong[y0:y1].any(0))
        if cols.size == 0:
            continue
        lines.append(TextLine(k, top, int(cols[0]), int(cols[-1]) + 1))
    return Layout(bg, pitch, tuple(lines)), ink


def band_rows(top: float, pitch: float) -> tuple[int, int]:
    """The whole rows [y0, y1) of a band: rounded, so a band never takes a row of the next
    slot (where a cursor bar or a highlight may start)."""
    return int(round(top)), max(int(round(top)) + 1, int(round(top + pitch)))


def strip_bounds(line: TextLine, pitch: float, width: int) -> tuple[int, int]:
    """The columns [left, right) a line's strip is cut from: its ink and a blank margin."""
    m = int(round(MARGIN * pitch))
    return line.x0 - m, line.x1 + m


def line_strip(ink: np.ndarray, line: TextLine, pitch: float) -> np.ndarray:
    """(LINE_HEIGHT, W) float32 ink of one line, scaled so the band is LINE_HEIGHT tall, its
    ink stretched to a peak of 1; W a multiple of WIDTH_MULTIPLE. Rows and columns outside the
    picture are blank."""
    h, w = ink.shape
    left, right = strip_bounds(line, pitch, w)
    y0, y1 = band_rows(line.top, pitch)
    cut = np.zeros((y1 - y0, right - left), np.float32)
    sy0, sy1, sx0, sx1 = max(0, y0), min(h, y1), max(0, left), min(w, right)
    cut[sy0 - y0 : sy1 - y0, sx0 - left : sx1 - left] = ink[sy0:sy1, sx0:sx1]
    peak = float(np.percentile(cut[cut > MIN_INK], 99)) if (cut > MIN_INK).any() else 1.0
    cut = np.clip(cut / max(peak, MIN_INK), 0.0, 1.0)
    scale = LINE_HEIGHT / (y1 - y0)
    out_w = max(WIDTH_MULTIPLE, int(round(cut.shape[1] * scale)))
    out_w += -out_w % WIDTH_MULTIPLE
    resized = Image.fromarray(cut).resize((out_w, LINE_HEIGHT),
                                                    Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def strip_x(line: TextLine, pitch: float, strip_col: float) -> float:
    """A strip's column (in strip pixels) -> the picture's x."""
    left, _ = strip_bounds(line, pitch, 0)
    y0, y1 = band_rows(line.top, pitch)
    return left + strip_col * (y1 - y0) / LINE_HEIGHT


def line_strips(image: np.ndarray, layout: Layout | None = None
                ) -> tuple[Layout, list[np.ndarray]]:
    """The layout and one strip per text line."""
    layout, ink = read_layout(image) if layout is None else (layout, reading_ink(image, layout))
    return layout, [line_strip(ink, line, layout.pitch) for line in layout.lines]


def reading_ink(image: np.ndarray, layout: Layout) -> np.ndarray:
    """The ink the lines of `layout` are read from: the rules found on its grid blanked, as
    layout_of_ink blanked them."""
    return without_rules(text_ink(image, layout.background), layout.pitch)
