"""UI mockups for the vision path: a small HTML-like document (a window of headers, labels,
inputs, buttons, checkboxes, rows) generated at random, drawn with Pillow by a box layout of
our own; the markup is the target ("write the markup for this screen").

The markup language is deliberately tiny and regular, so that the picture determines it:
`<window title="...">` holds a vertical stack of elements; `<row>` lays its children side by
side; leaf elements are `<h1>`, `<text>`, `<input placeholder="...">`, `<button>`,
`<checkbox checked>`, `<divider/>`, `<image/>`.
"""

from __future__ import annotations

import functools
import importlib.util
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from .fonts import available_fonts, load_font
from .render import pad_to_multiple

_WORDS = ("Name", "Email", "Password", "Search", "Settings", "Profile", "Save", "Cancel",
          "Submit", "Login", "Sign up", "Username", "Notifications", "Dark mode", "Language",
          "Remember me", "Continue", "Back", "Delete", "Upload", "Address", "Phone", "Theme",
          "Send", "Message", "Export", "Import", "Filter", "Apply", "Reset")
_TITLES = ("Account", "Preferences", "New project", "Checkout", "Contact us", "Sign in",
           "Upload file", "Dashboard", "Report a bug", "Share")
_PALETTES = (
    {"bg": "#ffffff", "fg": "#202124", "accent": "#1a73e8", "muted": "#9aa0a6", "bar": "#f1f3f4"},
    {"bg": "#1e1e1e", "fg": "#e8eaed", "accent": "#8ab4f8", "muted": "#80868b", "bar": "#2d2d2d"},
    {"bg": "#fafafa", "fg": "#111111", "accent": "#2e7d32", "muted": "#9e9e9e", "bar": "#e0e0e0"},
    {"bg": "#0f172a", "fg": "#f1f5f9", "accent": "#f59e0b", "muted": "#64748b", "bar": "#1e293b"},
)


@dataclass
class Node:
    tag: str
    text: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def markup(self, indent: int = 0) -> str:
        pad = "  " * indent
        attrs = "".join(f' {k}="{v}"' if v else f" {k}" for k, v in self.attrs.items())
        if self.children:
            inner = "".join(c.markup(indent + 1) for c in self.children)
            return f"{pad}<{self.tag}{attrs}>\n{inner}{pad}</{self.tag}>\n"
        if self.text:
            return f"{pad}<{self.tag}{attrs}>{self.text}</{self.tag}>\n"
        return f"{pad}<{self.tag}{attrs}/>\n"


@dataclass(frozen=True)
class RenderedMockup:
    image: np.ndarray  # (H, W, 3) uint8, sides multiples of 8
    source: str  # the markup: the target


def _leaf(rng: random.Random) -> Node:
    kind = rng.choice(("text", "input", "button", "checkbox", "text", "input", "divider",
                       "image"))
    word = rng.choice(_WORDS)
    if kind == "input":
        return Node("input", attrs={"placeholder": word})
    if kind == "checkbox":
        return Node("checkbox", word, {"checked": ""} if rng.random() < 0.5 else {})
    if kind in ("divider", "image"):
        return Node(kind)
    return Node(kind, word)


def mockup_tree(rng: random.Random) -> Node:
    window = Node("window", attrs={"title": rng.choice(_TITLES)})
    if rng.random() < 0.6:
        window.children.append(Node("h1", rng.choice(_TITLES)))
    for _ in range(rng.randint(2, 6)):
        if rng.random() < 0.3:
            kids = [_leaf(rng) for _ in range(rng.randint(2, 3))]
            kids = [c for c in kids if c.tag not in ("divider", "image")]
            while len(kids) < 2:  # a one-child row would look exactly like its child
                kids.append(Node("button", rng.choice(_WORDS)))
            window.children.append(Node("row", children=kids))
        else:
            window.children.append(_leaf(rng))
    return window


@functools.lru_cache(maxsize=1)
def _ui_font_path() -> str:
    """A proportional sans face for UI text (matplotlib's DejaVu Sans), else a mono face."""
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return str(path)
    return available_fonts()[0].path


class _Painter:
    GAP = 10

    def __init__(self, draw: ImageDraw.ImageDraw, palette: dict[str, str], size: int) -> None:
        self.draw = draw
        self.p = palette
        self.font = load_font(_ui_font_path(), size)
        self.big = load_font(_ui_font_path(), int(size * 1.5))
        self.size = size

    def text_width(self, text: str, font: ImageFont.FreeTypeFont | None = None) -> int:
        return int((font or self.font).getlength(text))

    def leaf_size(self, node: Node) -> tuple[int, int]:
        s = self.size
        if node.tag == "h1":
            return self.text_width(node.text, self.big), int(s * 2)
        if node.tag == "text":
            return self.text_width(node.text), int(s * 1.4)
        if node.tag == "input":
            return max(8 * s, self.text_width(node.attrs["placeholder"]) + 2 * s), int(s * 2.2)
        if node.tag == "button":
            return self.text_width(node.text) + 2 * s, int(s * 2.2)
        if node.tag == "checkbox":
            return self.text_width(node.text) + int(s * 1.6), int(s * 1.4)
        if node.tag == "divider":
            return 0, s // 2
        return 6 * s, 4 * s  # image placeholder

    def paint_leaf(self, node: Node, x: int, y: int, w: int, h: int) -> None:
        d, p, s = self.draw, self.p, self.size
        if node.tag == "h1":
            d.text((x, y), node.text, font=self.big, fill=p["fg"])
        elif node.tag == "text":
            d.text((x, y + s * 0.1), node.text, font=self.font, fill=p["fg"])
        elif node.tag == "input":
            d.rectangle((x, y, x + w, y + h), outline=p["muted"], width=1)
            d.text((x + s * 0.6, y + s * 0.5), node.attrs["placeholder"], font=self.font,
                   fill=p["muted"])
        elif node.tag == "button":
            d.rounded_rectangle((x, y, x + w, y + h), radius=s // 3, fill=p["accent"])
            d.text((x + s, y + s * 0.5), node.text, font=self.font, fill=p["bg"])
        elif node.tag == "checkbox":
            box = (x, y + s * 0.2, x + s, y + s * 1.2)
            d.rectangle(box, outline=p["fg"], width=1)
            if "checked" in node.attrs:
                d.line((box[0] + 2, box[1] + s // 2, box[0] + s // 2, box[3] - 2, box[2] - 2,
                        box[1] + 2), fill=p["accent"], width=2)
            d.text((x + int(s * 1.6), y + s * 0.1), node.text, font=self.font, fill=p["fg"])
        elif node.tag == "divider":
            d.line((x, y + h // 2, x + w, y + h // 2), fill=p["muted"], width=1)
        else:
            d.rectangle((x, y, x + w, y + h), outline=p["muted"], width=1)
            d.line((x, y, x + w, y + h), fill=p["muted"])
            d.line((x, y + h, x + w, y), fill=p["muted"])

    def block_size(self, node: Node) -> tuple[int, int]:
        if node.tag == "row":
            sizes = [self.leaf_size(c) for c in node.children]
            return sum(w for w, _ in sizes) + self.GAP * (len(sizes) - 1), max(h for _, h in sizes)
        return self.leaf_size(node)


def render_mockup(rng: random.Random) -> RenderedMockup:
    tree = mockup_tree(rng)
    palette = rng.choice(_PALETTES)
    size = rng.choice((12, 13, 14, 16))
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    painter = _Painter(scratch, palette, size)
    margin, bar = 2 * size, int(size * 2.2)
    sizes = [painter.block_size(c) for c in tree.children]
    content_w = max([w for w, _ in sizes] + [painter.text_width(tree.attrs["title"]) + size])
    width = content_w + 2 * margin
    height = bar + margin + sum(h + painter.GAP for _, h in sizes) + margin
    image = Image.new("RGB", (width, height), palette["bg"])
    painter.draw = ImageDraw.Draw(image)
    painter.draw.rectangle((0, 0, width, bar), fill=palette["bar"])
    painter.draw.text((margin // 2, size * 0.5), tree.attrs["title"], font=painter.font,
                      fill=palette["fg"])
    y = bar + margin
    for node, (w, h) in zip(tree.children, sizes, strict=True):
        if node.tag == "row":
            x = margin
            for child in node.children:
                cw, ch = painter.leaf_size(child)
                painter.paint_leaf(child, x, y, cw, ch)
                x += cw + painter.GAP
        else:
            span = content_w if node.tag in ("divider", "input") else w
            painter.paint_leaf(node, margin, y, span, h)
        y += h + painter.GAP
    image = pad_to_multiple(image, ImageColor.getrgb(palette["bg"]))
    return RenderedMockup(np.array(image, dtype=np.uint8), tree.markup())
