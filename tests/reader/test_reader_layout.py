"""The layout step on rendered files: every text line found on its grid line, blank lines as
gaps, the pitch and the bands where the renderer drew them, indentation from where the ink
starts; across fonts, sizes, pixel ratios, themes, anti-aliasing, JPEG and tight spacing."""

from __future__ import annotations

import dataclasses
import inspect
import json
import random
import textwrap

import numpy as np
import pytest

from engine.data.fonts import available_fonts
from engine.data.reader_lines import visible_lines
from engine.data.render import RenderStyle, render_code_geometry, render_example, themes
from engine.reader.layout import LINE_HEIGHT, find_layout, line_strips

SOURCE = textwrap.dedent(inspect.getsource(json.JSONEncoder)).expandtabs(4)


def _window(lines: int = 24) -> str:
    text = "\n".join(line.rstrip() for line in SOURCE.split("\n")[:lines])
    return text.rstrip("\n") + "\n"


def _style(**changes: object) -> RenderStyle:
    font = available_fonts()[0]
    base = RenderStyle(font_name=font.name, font_path=font.path, size=14,
                       theme=themes()["light"][0], line_spacing=1.25, padding=8,
                       line_numbers=False, scale=1.0)
    return dataclasses.replace(base, **changes)


def _check(image: np.ndarray, text: str, geometry, cursor_line: int | None = None) -> None:
    layout = find_layout(image)
    lines = text.rstrip("\n").split("\n")
    inked = {i for i, line in enumerate(lines) if line.strip()}
    if cursor_line is not None:
        inked.add(cursor_line)
    k0 = layout.lines[0].k
    assert [line.k - k0 for line in layout.lines] == sorted(inked)
    assert layout.pitch == pytest.approx(geometry.pitch, rel=0.01)
    for line in layout.lines:
        top, bottom = geometry.band(line.k - k0)
        # The band is centred on the ink, the renderer's on the line slot: within a few px.
        assert abs(line.top - top) <= 0.25 * geometry.pitch
    # Indentation from the ink: the first ink of each line sits inside its first character's
    # cell, past the glyph's left bearing (up to about half a cell for "|" or "."; a
    # resampled or JPEG picture bleeds a little to the left of it).
    for line in layout.lines:
        code = lines[line.k - k0]
        if code.strip() and (cursor_line is None or line.k - k0 != cursor_line):
            indent = len(code) - len(code.lstrip())
            cells = (line.x0 - geometry.x0) / geometry.cell_width
            assert indent - 0.25 <= cells < indent + 0.75, (code, cells)


@pytest.mark.parametrize("changes", [
    {},
    {"size": 10, "line_spacing": 1.15},
    {"size": 24, "theme": themes()["dark"][0]},
    {"hidpi": 2.0},
    {"hidpi": 0.75, "size": 12},
    {"scale": 0.85},
    {"antialias": "none"},
    {"antialias": "subpixel", "theme": themes()["dark"][-1]},
    {"jpeg_quality": 60},
    {"highlight_line": 3},
])
def test_lines_blank_lines_and_indentation_are_found(changes: dict) -> None:
    text = _window()
    image, geometry = render_code_geometry(text, _style(**changes), "encoder.py")
    _check(np.asarray(image), text, geometry)


def test_a_cursor_on_a_blank_line_is_a_line_of_ink() -> None:
    text = _window()
    blank = next(i for i, line in enumerate(text.split("\n")) if not line.strip())
    image, geometry = render_code_geometry(text, _style(cursor=(blank, 0)), "encoder.py")
    _check(np.asarray(image), text, geometry, cursor_line=blank)


def test_a_gutter_is_part_of_every_line() -> None:
    text = _window()
    image, geometry = render_code_geometry(
        text, _style(line_numbers=True, line_number_start=998), "encoder.py")
    layout = find_layout(np.asarray(image))
    shown = visible_lines(text, True, 998)
    assert len(layout.lines) == len(shown) and all(shown)
    assert shown[0].startswith("998  ") and shown[2] == "1000"  # a blank line


def test_sampled_training_pictures_lay_out_line_for_line() -> None:
    """Random training styles (every variation at once): nearly all pictures lay out exactly
    (a picture that does not is dropped from training, never guessed)."""
    good = total = 0
    for seed in range(40):
        shot = render_example("encoder.py", SOURCE, random.Random(seed))
        if shot is None:
            continue
        total += 1
        layout = find_layout(shot.image)
        shown = visible_lines(shot.text, shot.style.line_numbers, shot.style.line_number_start)
        inked = {i for i, s in enumerate(shown) if s}
        if shot.geometry is not None and shot.geometry.cursor is not None:
            inked.add(shot.geometry.cursor[0])
        k0 = layout.lines[0].k if layout.lines else 0
        good += [line.k - k0 for line in layout.lines] == sorted(inked)
    assert total >= 30 and good >= 0.9 * total


def test_strips_are_the_readers_height_and_scaled_with_the_pitch() -> None:
    text = _window(8)
    image, geometry = render_code_geometry(text, _style(hidpi=2.0), "encoder.py")
    layout, strips = line_strips(np.asarray(image))
    assert len(strips) == len(layout.lines)
    for line, strip in zip(layout.lines, strips, strict=True):
        assert strip.shape[0] == LINE_HEIGHT and strip.shape[1] % 4 == 0
        assert strip.min() >= 0.0 and strip.max() <= 1.0
        ink_width = (line.x1 - line.x0) * LINE_HEIGHT / geometry.pitch
        assert strip.shape[1] >= 0.9 * ink_width


def test_a_picture_without_text_has_no_lines() -> None:
    assert find_layout(np.full((64, 64, 3), 30, np.uint8)).lines == ()
    with pytest.raises(ValueError, match="screenshot"):
        find_layout(np.zeros((10, 10), np.uint8))


def _with_indent_guides(image: np.ndarray, text: str, geometry, colour: tuple[int, int, int],
                        active: tuple[int, int, int]) -> np.ndarray:
    """VS Code's indent guides drawn over a render: a 1-px line at every 4th column inside
    each line's indentation, through blank lines, the outermost one brighter (the active
    guide), continuous from line to line."""
    out = image.copy()
    lines = text.rstrip("\n").split("\n")
    depth = [len(s) - len(s.lstrip()) if s.strip() else None for s in lines]
    for i in range(len(depth)):  # a blank line takes the indentation of the next line
        if depth[i] is None:
            depth[i] = next((d for d in depth[i + 1:] if d is not None), 0)
    for i, d in enumerate(depth):
        top, bottom = geometry.band(i)
        for column in range(4, d, 4):
            x = int(round(geometry.x0 + column * geometry.cell_width))
            out[int(round(top)):int(round(bottom)), x] = active if column == 4 else colour
    return out


@pytest.mark.parametrize("dark", [False, True])
def test_indent_guides_are_no_text(dark: bool) -> None:
    text = _window(40)
    theme = themes()["dark" if dark else "light"][0]
    image, geometry = render_code_geometry(text, _style(theme=theme), "encoder.py")
    plain = np.asarray(image)
    guided = _with_indent_guides(plain, text, geometry,
                                 (70, 70, 70) if dark else (210, 210, 210),
                                 (140, 140, 140) if dark else (90, 90, 90))
    assert (guided != plain).any()
    _check(guided, text, geometry)
    # What is read is what is read without the guides.
    (_, with_guides), (_, without) = line_strips(guided), line_strips(plain)
    assert len(with_guides) == len(without)
    for a, b in zip(with_guides, without, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 0.05
