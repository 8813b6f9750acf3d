"""Screenshots of code for the vision path: source highlighted with Pygments, drawn with
Pillow in a monospace font; the exact text shown is the target.

Each picture varies font face, size, theme (Pygments styles, light and dark), line spacing,
padding, a line-number gutter, the crop (which lines of the file) and a final scale. Sizes are
padded to multiples of 8 (the vision stem's patch grid). Held-out evaluation renders with faces
and sizes training never uses: `sample_style(rng, split="heldout")`.

Only printable ASCII windows are rendered (tabs expanded), so every character of the target is
a glyph every font has: a missing-glyph box would teach the model to read boxes. Line numbers,
when drawn, are the editor's gutter: they are not part of the target.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pygments.lexers import PythonLexer, get_lexer_for_filename
from pygments.styles import get_all_styles, get_style_by_name
from pygments.token import Token
from pygments.util import ClassNotFound

from .fonts import available_fonts, load_font, sizes_for, split_fonts
from .split import TRAIN

MULTIPLE = 8
MAX_SIDE = 1024
# The smallest picture side every sampled style can fill with crop_window's minimum of 4 lines
# (the largest font at the largest scale, spacing and padding fits 6 lines at 256). A smaller
# side would make every render fail, and a stream of them would never yield.
MIN_SIDE = 256
_PRINTABLE = frozenset(chr(c) for c in range(32, 127))


@dataclass(frozen=True)
class RenderStyle:
    font_name: str
    font_path: str
    size: int
    theme: str
    line_spacing: float  # line height as a multiple of the font size
    padding: int
    line_numbers: bool
    scale: float


@dataclass(frozen=True)
class RenderedCode:
    image: np.ndarray  # (H, W, 3) uint8, H and W multiples of 8
    text: str  # exactly the source shown, the target
    style: RenderStyle
    path: str


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


def sample_style(rng: random.Random, split: str = TRAIN) -> RenderStyle:
    """A random style from the faces and sizes of `split`; themes are shared by both splits,
    half of the pictures light and half dark."""
    fonts = split_fonts(available_fonts())[split]
    font = rng.choice(fonts)
    groups = themes()
    theme = rng.choice(groups["dark" if rng.random() < 0.5 and groups["dark"] else "light"])
    return RenderStyle(
        font_name=font.name,
        font_path=font.path,
        size=rng.choice(sizes_for(split)),
        theme=theme,
        line_spacing=rng.choice((1.15, 1.25, 1.35, 1.5)),
        padding=rng.choice((4, 8, 12, 16)),
        line_numbers=rng.random() < 0.3,
        scale=rng.choice((1.0, 1.0, 0.85, 1.25)),
    )


@dataclass(frozen=True)
class _Metrics:
    char_width: float
    line_height: int


def _metrics(style: RenderStyle) -> _Metrics:
    font = load_font(style.font_path, style.size)
    ascent, descent = font.getmetrics()
    return _Metrics(font.getlength("M"), max(int(style.size * style.line_spacing),
                                            ascent + descent))


def fit(style: RenderStyle, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """How many (lines, columns) fit in a `max_side` square picture in this style."""
    m = _metrics(style)
    usable = int(max_side / style.scale) - 2 * style.padding - MULTIPLE
    gutter_cols = 5 if style.line_numbers else 0
    return max(1, usable // m.line_height), max(8, int(usable / m.char_width) - gutter_cols)


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


def render_code(text: str, style: RenderStyle, path: str = "snippet.py") -> Image.Image:
    """`text` (printable ASCII lines) drawn in `style`; width and height multiples of 8."""
    if not set(text) <= _PRINTABLE | {"\n"}:
        raise ValueError("render_code draws printable ASCII only; crop with crop_window first")
    font = load_font(style.font_path, style.size)
    m = _metrics(style)
    lines = text.rstrip("\n").split("\n")
    gutter = len(str(len(lines))) + 2 if style.line_numbers else 0
    cols = max(len(line) for line in lines) + gutter
    width = int(2 * style.padding + cols * m.char_width) + 1
    height = 2 * style.padding + len(lines) * m.line_height
    pstyle, background, default = _colors(style.theme)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    font_height = sum(font.getmetrics())
    y0 = style.padding + (m.line_height - font_height) // 2
    if style.line_numbers:
        dim = tuple((c + b) // 2 for c, b in zip(default, background, strict=True))
        for i in range(len(lines)):
            label = str(i + 1).rjust(gutter - 2)
            draw.text((style.padding, y0 + i * m.line_height), label, font=font, fill=dim)
    row = col = 0
    for ttype, value in _lexer(path).get_tokens(text):
        color = pstyle.style_for_token(ttype).get("color")
        fill = _rgb("#" + color) if color else default
        for k, piece in enumerate(value.split("\n")):
            if k:
                row, col = row + 1, 0
            if piece.strip():
                x = style.padding + (gutter + col) * m.char_width
                draw.text((x, y0 + row * m.line_height), piece, font=font, fill=fill)
            col += len(piece)
    if style.scale != 1.0:
        size = (max(1, round(width * style.scale)), max(1, round(height * style.scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    return pad_to_multiple(image, background)


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
    style = sample_style(rng, split)
    max_lines, max_cols = fit(style, max_side)
    window = crop_window(text, rng, min(max_lines, 40), min(max_cols, 100))
    if window is None:
        return None
    image = render_code(window, style, path)
    return RenderedCode(np.array(image, dtype=np.uint8), window, style, path)
