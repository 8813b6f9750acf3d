"""Screenshots of code for the vision path: source highlighted with Pygments, drawn with
Pillow in a monospace font; the exact text shown is the target.

Each picture varies font face (a family first, then one of its faces), size (10-28 px), theme
(Pygments styles, light and dark), line spacing, padding, a line-number gutter (numbered from
1 or from deep inside a file), the crop (which lines of the file), the device pixel ratio
(`hidpi`: glyphs rasterised crisply at 0.75-2x), a final resampling scale, the anti-aliasing
(grayscale, none, or LCD sub-pixel), ligatures, a current-line highlight, a text cursor, a few
pixels cropped off the edges, a slight blur and JPEG re-encoding. Every variation is a
RenderStyle field whose default draws the plain picture, so each can be switched off. Sizes are
padded to multiples of 8 (the vision stem's patch grid). Held-out evaluation renders with font
families, sizes and two themes (one light, one dark) training never uses:
`sample_style(rng, split="heldout")`.

Only printable ASCII windows are rendered (tabs expanded), so every character of the target is
a glyph every font has: a missing-glyph box would teach the model to read boxes. Line numbers,
when drawn, are the editor's gutter: they are not part of the target.

Each render also returns where its text lies (LineGeometry: the band of every line, the column
grid), exact in the final picture's pixels, for a layout step to be checked against.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features
from pygments.lexers import PythonLexer, get_lexer_for_filename
from pygments.styles import get_all_styles, get_style_by_name
from pygments.token import Token
from pygments.util import ClassNotFound

from .fonts import Font, available_fonts, families, load_font, sizes_for, split_fonts
from .split import HELDOUT, TRAIN

MULTIPLE = 8
MAX_SIDE = 1024
# The smallest picture side every sampled style can fill with crop_window's minimum of 4 lines:
# sample_style only draws a pixel ratio whose lines fit the side it is asked for, and at this
# side the smallest ratio fits the largest font at the largest scale, spacing and padding. A
# smaller side would make every render fail, and a stream of them would never yield.
MIN_SIDE = 256
MIN_WINDOW_LINES = 4
_PRINTABLE = frozenset(chr(c) for c in range(32, 127))
# Device pixel ratios, repeated as weights: most screenshots are 1x or 2x. Then the finished
# picture's resampling scale, mostly none.
HIDPI_CHOICES = (0.75, 1.0, 1.0, 1.0, 1.25, 1.5, 2.0, 2.0)
SCALE_CHOICES = (1.0, 1.0, 0.85, 1.25)
# A sampled style shows at least this many columns where its picture side allows: most code
# lines fit, so a window of whole lines is found (bigger glyphs suit bigger pictures only).
MIN_COLS = 60
# Glyph sizes in the final picture (size * hidpi * scale): above the maximum a picture holds a
# few dozen columns of a handful of lines, too narrow for most code; below the minimum, thin
# strokes (a dash in a dim comment colour) fade out altogether.
MAX_GLYPH_PX = 40
MIN_GLYPH_PX = 9
ANTIALIAS = ("gray", "none", "subpixel")
THEME_SALT = "cromwell-themes-v1"
# FreeType's default LCD filter (weights of the sub-pixel columns around each one, /256): it
# spreads each edge over its neighbours, as real LCD text does, so the colour fringes are mild.
_LCD_FILTER = (8, 77, 86, 77, 8)
_HIGHLIGHT_MIX = 0.1  # the current line's band: the background moved 10% toward the text
_RAQM = features.check("raqm")  # OpenType features (ligatures off) need Pillow's raqm layout


@dataclass(frozen=True)
class RenderStyle:
    font_name: str
    font_path: str
    size: int
    theme: str
    line_spacing: float  # line height as a multiple of the font size
    padding: int
    line_numbers: bool
    scale: float  # the finished picture resampled by this factor (a scaled screenshot)
    # Each default below draws the plain picture (the look before these fields existed).
    hidpi: float = 1.0  # device pixel ratio: size, spacing and padding rasterised times this
    antialias: str = "gray"  # one of ANTIALIAS: grayscale, none (1-bit), LCD sub-pixel (RGB)
    ligatures: bool = True  # the font's ligatures ("->" as an arrow) when it has any
    highlight_line: int | None = None  # current-line band behind this line (modulo the lines)
    cursor: tuple[int, int] | None = None  # (line, column) of a text cursor, each modulo the
    #   text's lines and that line's length + 1 (the end of a line is a place for it too)
    line_number_start: int = 1  # the gutter's first number
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)  # pixels asked off (left, top, right,
    #   bottom) of the final picture; less where a glyph, the cursor or the gutter is nearer
    blur: float = 0.0  # Gaussian blur radius in final pixels
    jpeg_quality: int | None = None  # re-encoded as a JPEG of this quality


@dataclass(frozen=True)
class LineGeometry:
    """Where the text lies in the final picture, in its pixels (after scaling and cropping).

    Line i's band (its full line-height slot) is [line_tops[i], line_tops[i] + pitch); the
    code's column c starts at x0 + c * cell_width."""

    line_tops: tuple[float, ...]  # one per line of the text, blank lines included
    pitch: float  # line height: a band's height, the distance between successive tops
    x0: float  # the left edge of column 0 of the code (right of the gutter)
    cell_width: float  # one character's advance
    gutter_x: float | None  # the left edge of the line-number gutter, when one is drawn
    highlight_line: int | None  # the line behind which the current-line band is drawn
    cursor: tuple[int, int] | None  # (line, column) the cursor bar's left edge is at

    def band(self, line: int) -> tuple[float, float]:
        top = self.line_tops[line]
        return top, top + self.pitch

    def column_x(self, column: int) -> float:
        return self.x0 + column * self.cell_width


@dataclass(frozen=True)
class RenderedCode:
    image: np.ndarray  # (H, W, 3) uint8, H and W multiples of 8
    text: str  # exactly the source shown, the target
    style: RenderStyle
    path: str
    geometry: LineGeometry | None = None


def _luminance(hex_color: str) -> float:
    r, g, b = _rgb(hex_color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@functools.lru_cache(maxsize=1)
def themes() -> dict[str, tuple[str, ...]]:
    """Pygments styles grouped as light or dark by their background's luminance."""
    light, dark = [], []
    for name in sorted(get_all_styles()):
        style = get_style_by_name(name)
        bg = style.background_color or "#ffffff"
        if not bg.startswith("#"):
            continue
        (dark if _luminance(bg) < 128 else light).append(name)
    return {"light": tuple(light), "dark": tuple(dark)}


def _theme_rank(name: str) -> str:
    return hashlib.sha256(f"{THEME_SALT}\0{name}".encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def theme_split() -> dict[str, dict[str, tuple[str, ...]]]:
    """The themes of each split by tone: the light and the dark theme whose names hash lowest
    are held out (the same two on every machine with the same Pygments), training draws from
    the rest. A tone with a single theme is shared by both splits."""
    out: dict[str, dict[str, tuple[str, ...]]] = {TRAIN: {}, HELDOUT: {}}
    for tone, names in themes().items():
        held = min(names, key=_theme_rank) if names else None
        rest = tuple(n for n in names if n != held)
        out[TRAIN][tone] = rest or names
        out[HELDOUT][tone] = (held,) if held else ()
    return out


def heldout_themes() -> tuple[str, ...]:
    """The themes training never renders: one light, one dark."""
    split = theme_split()
    return tuple(n for tone in ("light", "dark") for n in split[HELDOUT][tone]
                 if n not in split[TRAIN][tone])


def _font_families(split: str) -> tuple[tuple[Font, ...], ...]:
    # Not cached here: available_fonts is, and grouping a hundred faces costs microseconds.
    return tuple(families(split_fonts(available_fonts())[split]).values())


@dataclass(frozen=True)
class _Layout:
    """A style's metrics. Drawing happens on a canvas `factor` times the picture's resolution
    in both directions (3 for sub-pixel text, else 1); canvas values are marked _c."""

    factor: int
    font_px_c: int  # the font's pixel size on the canvas
    pad: int  # picture pixels
    line_height: int  # picture pixels: whole, so every band starts on the same pixel phase
    char_width_c: float
    font_height_c: int  # ascent + descent


@functools.lru_cache(maxsize=8192)
def _font_metrics(font_path: str, px: int) -> tuple[float, int]:
    """(advance, ascent + descent) of a face at a pixel size. Numbers only, so thousands of
    sizes stay cached: sampling a style asks for a dozen of them."""
    font = ImageFont.truetype(font_path, px)
    return font.getlength("M"), sum(font.getmetrics())


def _layout(font_path: str, size: int, hidpi: float, line_spacing: float, padding: int,
            antialias: str) -> _Layout:
    if antialias not in ANTIALIAS:
        raise ValueError(f"antialias must be one of {ANTIALIAS}, got {antialias!r}")
    factor = 3 if antialias == "subpixel" else 1
    px = max(1, round(size * hidpi))
    char_width_c, font_height_c = _font_metrics(font_path, px * factor)
    line_height = max(int(px * line_spacing), math.ceil(font_height_c / factor))
    return _Layout(factor, px * factor, round(padding * hidpi), line_height, char_width_c,
                   font_height_c)


def _style_layout(style: RenderStyle) -> _Layout:
    return _layout(style.font_path, style.size, style.hidpi, style.line_spacing, style.padding,
                   style.antialias)


@dataclass(frozen=True)
class _Metrics:
    char_width: float
    line_height: int


def _metrics(style: RenderStyle) -> _Metrics:
    """A style's character advance and line height in picture pixels before `scale`."""
    lay = _style_layout(style)
    return _Metrics(lay.char_width_c / lay.factor, lay.line_height)


def _fit(lay: _Layout, scale: float, line_numbers: bool, first_number: int, max_side: int
         ) -> tuple[int, int]:
    usable = int(max_side / scale) - 2 * lay.pad - MULTIPLE
    lines = max(1, usable // lay.line_height)
    gutter_cols = len(str(first_number + lines)) + 2 if line_numbers else 0
    return lines, max(8, int(usable * lay.factor / lay.char_width_c) - gutter_cols)


def fit(style: RenderStyle, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """How many (lines, columns) fit in a `max_side` square picture in this style."""
    return _fit(_style_layout(style), style.scale, style.line_numbers,
                style.line_number_start, max_side)


def sample_style(rng: random.Random, split: str = TRAIN, max_side: int = MAX_SIDE
                 ) -> RenderStyle:
    """A random style from the font families, sizes and themes of `split`, half of the
    pictures light and half dark, whose glyph size suits a `max_side` picture (`_fitting`)."""
    faces = rng.choice(_font_families(split))
    font = rng.choice(faces)
    sizes = list(sizes_for(split))
    rng.shuffle(sizes)
    tones = theme_split()[split]
    theme = rng.choice(tones["dark" if rng.random() < 0.5 and tones["dark"] else "light"])
    base = RenderStyle(
        font_name=font.name,
        font_path=font.path,
        size=sizes[0],
        theme=theme,
        line_spacing=rng.choice((1.15, 1.25, 1.35, 1.5)),
        padding=rng.choice((4, 8, 12, 16)),
        line_numbers=rng.random() < 0.3,
        scale=1.0,
    )
    highlight = rng.randrange(40) if rng.random() < 0.3 else None
    cursor = None
    if rng.random() < 0.3:
        # An editor highlights the line its cursor is on.
        row = highlight if highlight is not None else rng.randrange(40)
        cursor = (row, rng.randrange(100))
    base = dataclasses.replace(
        base,
        antialias=rng.choices(ANTIALIAS, weights=(75, 10, 15))[0],
        ligatures=rng.random() < 0.3,
        highlight_line=highlight,
        cursor=cursor,
        line_number_start=1 if rng.random() < 0.5 else rng.randint(2, 2000),
        crop=tuple(rng.randint(0, 6) for _ in range(4)) if rng.random() < 0.3 else (0, 0, 0, 0),
        blur=round(rng.uniform(0.3, 0.8), 2) if rng.random() < 0.15 else 0.0,
        jpeg_quality=rng.randint(60, 95) if rng.random() < 0.25 else None,
    )
    for min_cols in (MIN_COLS, 0):
        for size in sizes:
            fitting = _fitting(dataclasses.replace(base, size=size), max_side, min_cols)
            if fitting:
                hidpi, scale = rng.choice(fitting)
                return dataclasses.replace(base, size=size, hidpi=hidpi, scale=scale)
    return dataclasses.replace(base, hidpi=min(HIDPI_CHOICES), scale=min(SCALE_CHOICES))


def _fitting(style: RenderStyle, max_side: int, min_cols: int) -> list[tuple[float, float]]:
    """The (hidpi, scale) pairs, with repeats as weights, that draw `style`'s glyphs
    between MIN_GLYPH_PX and MAX_GLYPH_PX and fit MIN_WINDOW_LINES lines of `min_cols`
    columns in a `max_side` picture."""
    pairs = []
    for hidpi in HIDPI_CHOICES:
        lay = _layout(style.font_path, style.size, hidpi, style.line_spacing, style.padding,
                      style.antialias)
        for scale in SCALE_CHOICES:
            if not MIN_GLYPH_PX <= style.size * hidpi * scale <= MAX_GLYPH_PX:
                continue
            lines, cols = _fit(lay, scale, style.line_numbers, style.line_number_start,
                               max_side)
            if lines >= MIN_WINDOW_LINES and cols >= min_cols:
                pairs.append((hidpi, scale))
    return pairs


def crop_window(
    text: str, rng: random.Random, max_lines: int, max_cols: int, min_lines: int = 4
) -> str | None:
    """A random run of at most `max_lines` whole lines of `text`, each at most `max_cols` wide
    and printable ASCII (tabs expanded), not blank throughout; None if there is none."""
    lines = text.expandtabs(4).split("\n")
    ok = [len(line) <= max_cols and set(line) <= _PRINTABLE for line in lines]
    starts = [i for i in range(len(lines)) if ok[i] and lines[i].strip()]
    rng.shuffle(starts)
    for start in starts[:8]:
        end = start
        limit = start + rng.randint(min_lines, max(min_lines, max_lines))
        while end < min(len(lines), limit) and ok[end]:
            end += 1
        window = [line.rstrip() for line in lines[start:end]]
        while window and not window[-1]:
            window.pop()
        if len(window) >= min(min_lines, len(lines)):
            return "\n".join(window) + "\n"
    return None


def _lexer(path: str):
    try:
        return get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return PythonLexer(stripnl=False, ensurenl=False)


def _colors(theme: str):
    style = get_style_by_name(theme)
    background = _rgb(style.background_color or "#ffffff")
    fallback = "#000000" if _luminance(style.background_color or "#ffffff") >= 128 else "#e0e0e0"
    default = style.style_for_token(Token.Text).get("color")
    return style, background, _rgb("#" + default if default else fallback)


def _mix(a: Sequence[int], b: Sequence[int], t: float) -> tuple[int, int, int]:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return r, g, bl


@functools.lru_cache(maxsize=1024)
def _glyph_extents(path: str, size: int) -> tuple[float, float, float, float]:
    """How far the ink of any printable ASCII glyph reaches around its cell: (left overhang
    (<= 0), top, right overhang past the advance (>= 0), bottom), top and bottom from the
    ascender line, in the font's pixels."""
    font = load_font(path, size)
    advance = font.getlength("M")
    boxes = [font.getbbox(ch) for ch in _PRINTABLE if ch != " "]
    return (min(0, min(b[0] for b in boxes)), min(b[1] for b in boxes),
            max(0.0, max(b[2] for b in boxes) - advance), max(b[3] for b in boxes))


def _subpixel(canvas: Image.Image) -> Image.Image:
    """A 3x canvas as LCD text: rows averaged in threes, then each picture pixel's R, G and B
    taken from its three sub-pixel columns (through the LCD filter)."""
    rows = np.asarray(canvas.reduce((1, 3)))  # (H, 3W, 3) uint8
    height, width = rows.shape[0], rows.shape[1] // 3
    edge = len(_LCD_FILTER) // 2
    padded = np.concatenate([rows[:, :1].repeat(edge, 1), rows, rows[:, -1:].repeat(edge, 1)],
                            axis=1)
    out = np.empty((height, width, 3), np.uint8)
    for channel in range(3):
        plane = padded[..., channel]
        # uint16 holds the sum: the weights add up to 256, so it peaks at 255 * 256 + 128.
        acc = np.full((height, width), 128, np.uint16)
        for k, weight in enumerate(_LCD_FILTER):
            start = channel + k
            acc += weight * plane[:, start:start + 3 * width:3].astype(np.uint16)
        out[..., channel] = acc >> 8
    return Image.fromarray(out, "RGB")


def render_code(text: str, style: RenderStyle, path: str = "snippet.py") -> Image.Image:
    """`text` (printable ASCII lines) drawn in `style`; width and height multiples of 8."""
    return render_code_geometry(text, style, path)[0]


def render_code_geometry(text: str, style: RenderStyle, path: str = "snippet.py"
                         ) -> tuple[Image.Image, LineGeometry]:
    """`render_code`'s picture and where its text lies in it."""
    if not set(text) <= _PRINTABLE | {"\n"}:
        raise ValueError("render_code draws printable ASCII only; crop with crop_window first")
    lay = _style_layout(style)
    f, font = lay.factor, load_font(style.font_path, lay.font_px_c)
    lines = text.rstrip("\n").split("\n")
    first = style.line_number_start
    gutter = len(str(first + len(lines) - 1)) + 2 if style.line_numbers else 0
    cols = max(len(line) for line in lines) + gutter
    width = int(2 * lay.pad + cols * lay.char_width_c / f) + 1
    height = 2 * lay.pad + len(lines) * lay.line_height
    pstyle, background, default = _colors(style.theme)
    canvas = Image.new("RGB", (width * f, height * f), background)
    draw = ImageDraw.Draw(canvas)
    if style.antialias == "none":
        draw.fontmode = "1"
    kw = {} if style.ligatures or not _RAQM else {"features": ["-liga", "-calt"]}
    pad_c, lh_c, cw_c = lay.pad * f, lay.line_height * f, lay.char_width_c
    x_code_c = pad_c + gutter * cw_c
    highlight = None if style.highlight_line is None else style.highlight_line % len(lines)
    if highlight is not None:
        top = pad_c + highlight * lh_c
        draw.rectangle((0, top, width * f - 1, top + lh_c - 1),
                       fill=_mix(background, default, _HIGHLIGHT_MIX))
    y0 = pad_c + (lh_c - lay.font_height_c) // 2
    if style.line_numbers:
        dim = tuple((c + b) // 2 for c, b in zip(default, background, strict=True))
        for i in range(len(lines)):
            label = str(first + i).rjust(gutter - 2)
            draw.text((pad_c, y0 + i * lh_c), label, font=font, fill=dim, **kw)
    row = col = 0
    for ttype, value in _lexer(path).get_tokens(text):
        color = pstyle.style_for_token(ttype).get("color")
        fill = _rgb("#" + color) if color else default
        for k, piece in enumerate(value.split("\n")):
            if k:
                row, col = row + 1, 0
            if piece.strip():
                draw.text((x_code_c + col * cw_c, y0 + row * lh_c), piece, font=font,
                          fill=fill, **kw)
            col += len(piece)
    cursor = None
    bar_c = max(1, round(style.hidpi)) * f
    if style.cursor is not None:
        line = style.cursor[0] % len(lines)
        cursor = (line, style.cursor[1] % (len(lines[line]) + 1))
        x = round(x_code_c + cursor[1] * cw_c)
        draw.rectangle((x, pad_c + line * lh_c, x + bar_c - 1, pad_c + (line + 1) * lh_c - 1),
                       fill=default)
    image = canvas if f == 1 else _subpixel(canvas)
    sx = sy = 1.0
    if style.scale != 1.0:
        size = (max(1, round(width * style.scale)), max(1, round(height * style.scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
        sx, sy = size[0] / width, size[1] / height
    left = top = 0
    if any(style.crop):
        # The ink's extent on the canvas, from the font's widest glyph reach: gutter (or code)
        # start to the longest line's end, the first line's highest ink to the last's lowest.
        ext = _glyph_extents(style.font_path, font.size)
        ink_left = (pad_c if gutter else x_code_c) + ext[0]
        ink_right = x_code_c + max(len(line) for line in lines) * cw_c + ext[2]
        ink_top = y0 + ext[1]
        ink_bottom = y0 + (len(lines) - 1) * lh_c + ext[3]
        if cursor is not None:
            ink_right = max(ink_right, round(x_code_c + cursor[1] * cw_c) + bar_c)
            ink_top = min(ink_top, pad_c + cursor[0] * lh_c)
            ink_bottom = max(ink_bottom, pad_c + (cursor[0] + 1) * lh_c)
        w, h = image.size
        # One pixel more than the ink's distance from each edge stays: anti-aliasing and
        # resampling spread the ink about a pixel.
        room = (math.floor(ink_left / f * sx) - 1, math.floor(ink_top / f * sy) - 1,
                w - math.ceil(ink_right / f * sx) - 1, h - math.ceil(ink_bottom / f * sy) - 1)
        left, top, right, bottom = (max(0, min(a, r)) for a, r in zip(style.crop, room,
                                                                      strict=True))
        image = image.crop((left, top, w - right, h - bottom))
    geometry = LineGeometry(
        line_tops=tuple((lay.pad + i * lay.line_height) * sy - top for i in range(len(lines))),
        pitch=lay.line_height * sy,
        x0=x_code_c / f * sx - left,
        cell_width=cw_c / f * sx,
        gutter_x=lay.pad * sx - left if gutter else None,
        highlight_line=highlight,
        cursor=cursor,
    )
    image = pad_to_multiple(image, background)
    if style.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(style.blur))
    if style.jpeg_quality is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=style.jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image, geometry


def pad_to_multiple(image: Image.Image, fill: Sequence[int], multiple: int = MULTIPLE):
    w, h = image.size
    W, H = -(-w // multiple) * multiple, -(-h // multiple) * multiple
    if (w, h) == (W, H):
        return image
    out = Image.new("RGB", (W, H), tuple(fill))
    out.paste(image, (0, 0))
    return out


def render_example(
    path: str, text: str, rng: random.Random, split: str = TRAIN, max_side: int = MAX_SIDE
) -> RenderedCode | None:
    """A screenshot of a random window of `text`; None when the file has no renderable
    window (binary-looking, all non-ASCII, or lines wider than the picture)."""
    style = sample_style(rng, split, max_side)
    max_lines, max_cols = fit(style, max_side)
    window = crop_window(text, rng, min(max_lines, 40), min(max_cols, 100))
    if window is None:
        return None
    image, geometry = render_code_geometry(window, style, path)
    return RenderedCode(np.array(image, dtype=np.uint8), window, style, path, geometry)
