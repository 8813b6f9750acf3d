"""Screenshots for the vision path: code renders, charts, mockups."""

from __future__ import annotations

import dataclasses
import math
import random
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from engine.data import charts, mockups, render
from engine.data.fonts import (
    HELDOUT_SIZES,
    TRAIN_SIZES,
    Font,
    available_fonts,
    families,
    family_name,
    font_roots,
    is_monospace,
    split_fonts,
)
from engine.data.split import HELDOUT, TRAIN

SOURCE = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
SNIPPET = "def area(w, h):\n    # width times height\n    return w * h  # 'area'\n"


def _style(**changes) -> render.RenderStyle:
    font = available_fonts()[0]
    base = render.RenderStyle(font.name, font.path, 14, "default", 1.25, 8, False, 1.0)
    return dataclasses.replace(base, **changes)


def test_fonts_are_found_offline_and_split() -> None:
    fonts = available_fonts()
    assert any(f.name.startswith("DejaVuSansMono") for f in fonts)  # shipped by matplotlib
    assert all(is_monospace(f.path) for f in fonts)
    split = split_fonts(fonts)
    if len(fonts) > 1:
        assert split[TRAIN] and split[HELDOUT]
        assert {f.name for f in split[TRAIN]}.isdisjoint(f.name for f in split[HELDOUT])
    assert set(TRAIN_SIZES).isdisjoint(HELDOUT_SIZES)
    with pytest.raises(ValueError, match="no monospace font"):
        split_fonts(())


def test_render_size_is_a_multiple_of_8_and_grows_with_the_text() -> None:
    image = np.asarray(render.render_code(SNIPPET, _style()))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] % 8 == 0 and image.shape[1] % 8 == 0
    longer = np.asarray(render.render_code(SNIPPET * 2, _style()))
    assert longer.shape[0] > image.shape[0] and longer.shape[1] == image.shape[1]
    scaled = np.asarray(render.render_code(SNIPPET, _style(scale=1.25)))
    assert scaled.shape[1] > image.shape[1]
    with pytest.raises(ValueError, match="printable ASCII"):
        render.render_code("caf\u00e9\n", _style())


def test_render_differs_across_fonts_and_themes() -> None:
    fonts = available_fonts()
    assert len(fonts) >= 2
    a = np.asarray(render.render_code(SNIPPET, _style(font_name=fonts[0].name,
                                                      font_path=fonts[0].path)))
    b = np.asarray(render.render_code(SNIPPET, _style(font_name=fonts[1].name,
                                                      font_path=fonts[1].path)))
    assert a.shape != b.shape or not np.array_equal(a, b)
    light = np.asarray(render.render_code(SNIPPET, _style(theme=render.themes()["light"][0])))
    dark = np.asarray(render.render_code(SNIPPET, _style(theme=render.themes()["dark"][0])))
    assert light.mean() > 128 > dark.mean()
    # Text is drawn: the picture is not a blank background.
    assert len(np.unique(light.reshape(-1, 3), axis=0)) > 10


def test_render_example_targets_the_exact_visible_lines() -> None:
    for seed in range(6):
        shot = render.render_example("textwrap.py", SOURCE, random.Random(seed))
        assert shot is not None
        assert shot.image.shape[0] % 8 == 0 and shot.image.shape[1] % 8 == 0
        assert max(shot.image.shape[:2]) <= render.MAX_SIDE
        lines = shot.text.rstrip("\n").split("\n")
        assert 1 <= len(lines) <= 40
        assert "\n".join(lines) in "\n".join(ln.rstrip() for ln in SOURCE.split("\n"))
        assert shot.style.font_name in {f.name for f in split_fonts(available_fonts())[TRAIN]}
        assert shot.style.size in TRAIN_SIZES
        assert shot.geometry is not None and len(shot.geometry.line_tops) == len(lines)
    again = render.render_example("textwrap.py", SOURCE, random.Random(3))
    first = render.render_example("textwrap.py", SOURCE, random.Random(3))
    assert again.text == first.text and np.array_equal(again.image, first.image)


def test_heldout_renders_use_heldout_fonts_and_sizes() -> None:
    heldout_fonts = {f.name for f in split_fonts(available_fonts())[HELDOUT]}
    for seed in range(5):
        style = render.sample_style(random.Random(seed), HELDOUT)
        assert style.size in HELDOUT_SIZES and style.font_name in heldout_fonts
        assert style.theme in render.heldout_themes()


def test_charts_render_from_their_source() -> None:
    seen = set()
    for seed in range(3):
        chart = charts.render_chart(random.Random(seed), charts.CHART_KINDS[seed])
        seen.add(chart.kind)
        assert chart.image.shape[0] % 8 == 0 and chart.image.shape[1] % 8 == 0
        assert "fig = Figure(" in chart.source
        compile(chart.source, "chart", "exec")
        assert np.array_equal(charts.draw_chart(chart.source), chart.image)
    assert len(seen) == 3
    with pytest.raises(ValueError, match="unknown chart kind"):
        charts.chart_source(random.Random(0), "radar")


def test_mockups_render_their_markup() -> None:
    first = mockups.render_mockup(random.Random(5))
    again = mockups.render_mockup(random.Random(5))
    assert first.source == again.source and np.array_equal(first.image, again.image)
    assert first.source.startswith("<window title=") and first.source.endswith("</window>\n")
    assert first.image.shape[0] % 8 == 0 and first.image.shape[1] % 8 == 0
    other = mockups.render_mockup(random.Random(6))
    assert other.source != first.source


def test_vision_examples_encode_and_batch() -> None:
    from engine.data.pipeline import encoded, mockup_stream
    from engine.data.vision import batch_images, vision_batches, vision_prompt

    class Bytes:
        def encode(self, text: str) -> list[int]:
            return list(text.encode())

    shots = list(encoded(mockup_stream(3, seed=4), Bytes(), eos_id=0))
    mockup = next(iter(mockup_stream(3, seed=4)))
    prompt = vision_prompt(mockup)
    assert prompt.prompt == "<IMAGE>\nWrite the markup for this screen.\n"
    assert prompt.target == mockup.source
    first = shots[0]
    assert bytes(first.ids[:-1]).decode() == prompt.prompt + prompt.target
    assert bytes(t for t, m in zip(first.ids, first.mask, strict=True) if m) \
        == mockup.source.encode() + b"\0"
    batch = next(vision_batches(iter(shots), batch_size=3, seq_len=64))
    height = max(s.image.shape[0] for s in shots)
    width = max(s.image.shape[1] for s in shots)
    assert batch["pixels"].shape == (3, height, width, 3)
    assert batch["patch_mask"].shape == (3, height // 8, width // 8)
    for b, shot in enumerate(shots):
        h, w = shot.image.shape[:2]
        assert batch["patch_mask"][b].sum() == (h // 8) * (w // 8)
        assert np.array_equal(batch["pixels"][b, :h, :w], shot.image)
    assert batch["ids"].shape == (3, 64) and batch["mask"][:, :10].sum() == 0
    with pytest.raises(ValueError, match="multiples of 8"):
        batch_images([np.zeros((10, 16, 3), np.uint8)])


def test_render_stream_styles_are_selectable(tmp_path: Path) -> None:
    from engine.data.corpus import build_index, folder_source
    from engine.data.pipeline import render_stream

    (tmp_path / "a.py").write_text(SOURCE)
    index = build_index([folder_source(tmp_path)], heldout_fraction=0.0)
    heldout_fonts = {f.name for f in split_fonts(available_fonts())[HELDOUT]}
    crossed = list(render_stream(index, TRAIN, seed=1, epochs=3, style_split=HELDOUT))
    assert len(crossed) == 3
    assert all(s.style.size in HELDOUT_SIZES and s.style.font_name in heldout_fonts
               for s in crossed)
    plain = list(render_stream(index, TRAIN, seed=1, epochs=3))
    assert all(s.style.size in TRAIN_SIZES for s in plain)


def test_a_render_side_too_small_for_any_window_is_refused_up_front() -> None:
    from engine.data.pipeline import RenderMaker

    with pytest.raises(ValueError, match="too small"):
        RenderMaker(max_side=64)
    # At the smallest accepted side every style sampled for it still fits the minimum window.
    for split in (TRAIN, HELDOUT):
        for seed in range(200):
            style = render.sample_style(random.Random(seed), split, render.MIN_SIDE)
            lines, _ = render.fit(style, render.MIN_SIDE)
            assert lines >= 4


# ------------------------------------------------------------------ font families and the split


def test_family_names_fold_weights_widths_and_derivatives() -> None:
    assert family_name("DejaVu Sans Mono") == "DejaVu Sans Mono"
    assert family_name("Hack") == "DejaVu Sans Mono"  # DejaVu Sans Mono's fork
    assert family_name("JetBrains Mono NL") == "JetBrains Mono"
    assert family_name("Fira Code Light") == "Fira Code"
    assert family_name("IBM 3270 Semi-Condensed") == "IBM 3270"
    assert family_name("Courier Prime Code") == family_name("FreeMono") == "Courier"
    assert family_name("Bold") == "Bold"  # never emptied


def _fake_fonts(families: int, faces: int) -> tuple[Font, ...]:
    return tuple(Font(f"Fam{i}-{w}", f"/fonts/fam{i}-{w}.ttf", f"Family {i}")
                 for i in range(families) for w in range(faces))


def test_the_split_holds_out_whole_families_chosen_by_name() -> None:
    fonts = _fake_fonts(6, 3)
    split = split_fonts(fonts)
    held = {f.family for f in split[HELDOUT]}
    assert len(held) == 2
    assert held.isdisjoint(f.family for f in split[TRAIN])
    # Every face of a held-out family is held out, and the choice ignores the order found.
    assert len(split[HELDOUT]) == 2 * 3 and len(split[TRAIN]) == 4 * 3
    assert split_fonts(tuple(reversed(fonts)))[HELDOUT] == tuple(reversed(split[HELDOUT]))
    # A family keeps its place whatever else is installed: with one more family, the held-out
    # ones are the same or the newcomer.
    more = split_fonts(fonts + _fake_fonts(7, 1)[-1:])
    assert len({f.family for f in more[HELDOUT]} - held) <= 1
    # Never everything: two families hold one out, a single family holds out one face.
    two = split_fonts(_fake_fonts(2, 2))
    assert len({f.family for f in two[HELDOUT]}) == 1 and two[TRAIN]
    one = split_fonts(_fake_fonts(1, 4))
    assert len(one[HELDOUT]) == 1 and len(one[TRAIN]) == 3
    single = _fake_fonts(1, 1)
    assert split_fonts(single) == {TRAIN: single, HELDOUT: single}


def test_installed_fonts_split_by_family() -> None:
    fonts = available_fonts()
    assert fonts[0].name == "DejaVuSansMono"  # matplotlib's faces come first on every machine
    assert all(f.family for f in fonts)
    assert len(families(fonts)) >= 1
    split = split_fonts(fonts)
    train_families = {f.family for f in split[TRAIN]}
    heldout_families = {f.family for f in split[HELDOUT]}
    if len(families(fonts)) >= 2:
        assert train_families.isdisjoint(heldout_families)
    if len(families(fonts)) >= 3:
        assert len(heldout_families) >= 2
    for seed in range(40):
        assert render.sample_style(random.Random(seed), TRAIN).font_name not in {
            f.name for f in split[HELDOUT]} or len(families(fonts)) == 1


def test_fonts_are_found_under_the_cache_folder(tmp_path: Path, monkeypatch) -> None:
    source = next(f.path for f in available_fonts() if f.name == "DejaVuSansMono")
    folder = tmp_path / "usr" / "share" / "fonts" / "truetype" / "test"
    folder.mkdir(parents=True)
    shutil.copy(source, folder / "CacheTestMono.ttf")
    (folder / "notes.txt").write_text("not a font")
    monkeypatch.setenv("CROMWELL_FONTS", str(tmp_path))
    available_fonts.cache_clear()
    try:
        assert font_roots() == [tmp_path]
        found = {f.name: f for f in available_fonts()}
    finally:
        monkeypatch.undo()
        available_fonts.cache_clear()
    assert found["CacheTestMono"].path == str(folder / "CacheTestMono.ttf")
    assert found["CacheTestMono"].family == "DejaVu Sans Mono"
    # Without the override, the checkout's own .cache/fonts/root (where `make fonts` unpacks)
    # is searched whenever it exists.
    checkout = Path(render.__file__).resolve().parents[2] / ".cache" / "fonts" / "root"
    if checkout.is_dir():
        monkeypatch.delenv("CROMWELL_FONTS", raising=False)
        available_fonts.cache_clear()
        try:
            assert checkout in font_roots()
            assert any(Path(f.path).is_relative_to(checkout) for f in available_fonts())
        finally:
            monkeypatch.undo()
            available_fonts.cache_clear()


def test_held_out_themes_are_one_light_and_one_dark_that_training_never_draws() -> None:
    held = render.heldout_themes()
    groups, split = render.themes(), render.theme_split()
    assert len(held) == 2 and held[0] in groups["light"] and held[1] in groups["dark"]
    trained = set(split[TRAIN]["light"]) | set(split[TRAIN]["dark"])
    assert trained.isdisjoint(held) and trained | set(held) == set(groups["light"] + groups[
        "dark"])
    for seed in range(100):
        assert render.sample_style(random.Random(seed), TRAIN).theme not in held
        assert render.sample_style(random.Random(seed), HELDOUT).theme in held


def test_sampled_styles_span_the_variations() -> None:
    styles = [render.sample_style(random.Random(seed), TRAIN) for seed in range(400)]
    assert {s.size for s in styles} == set(TRAIN_SIZES)
    assert min(TRAIN_SIZES + HELDOUT_SIZES) == 10 and max(TRAIN_SIZES + HELDOUT_SIZES) == 28
    assert all(0.75 <= s.hidpi <= 2.0 for s in styles) and len({s.hidpi for s in styles}) >= 5
    assert {s.antialias for s in styles} == set(render.ANTIALIAS)
    for field, off in (("highlight_line", None), ("cursor", None), ("jpeg_quality", None),
                       ("blur", 0.0), ("crop", (0, 0, 0, 0)), ("line_number_start", 1),
                       ("ligatures", True), ("line_numbers", False)):
        values = [getattr(s, field) for s in styles]
        assert off in values and any(v != off for v in values), field
    assert all(60 <= s.jpeg_quality <= 95 for s in styles if s.jpeg_quality is not None)
    assert {s.theme in render.themes()["dark"] for s in styles} == {True, False}


# ------------------------------------------------------------------------------ the variations

LINES = "def area(w, h):\n    # width times height\n    return w * h  # 'area'\n\nx = area(2, 3)\n"


def _pixels(style: render.RenderStyle, text: str = LINES) -> np.ndarray:
    return np.asarray(render.render_code(text, style))


def _ligature_face() -> Font | None:
    """A face whose "->" changes with its ligatures on (Fira Code, JetBrains Mono...)."""
    for font in available_fonts():
        on = _pixels(_style(font_name=font.name, font_path=font.path), "a -> b != c\n")
        off = _pixels(_style(font_name=font.name, font_path=font.path, ligatures=False),
                      "a -> b != c\n")
        if not np.array_equal(on, off):
            return font
    return None


def test_the_defaults_draw_the_plain_picture_and_every_variation_changes_it() -> None:
    base = _style(line_numbers=True)
    plain = _pixels(base)
    assert np.array_equal(plain, _pixels(dataclasses.replace(
        base, hidpi=1.0, antialias="gray", ligatures=True, highlight_line=None, cursor=None,
        line_number_start=1, crop=(0, 0, 0, 0), blur=0.0, jpeg_quality=None)))
    changes = {"hidpi": 2.0, "antialias": "none", "highlight_line": 1, "cursor": (2, 4),
               "line_number_start": 120, "crop": (3, 3, 3, 3), "blur": 0.6,
               "jpeg_quality": 70}
    for field, value in {**changes, "antialias": "subpixel"}.items():
        other = _pixels(dataclasses.replace(base, **{field: value}))
        assert other.shape != plain.shape or not np.array_equal(other, plain), field
    assert _pixels(dataclasses.replace(base, hidpi=2.0)).shape[0] > plain.shape[0]
    face = _ligature_face()
    if face is not None:  # only faces with ligatures can show the difference
        assert face.family in {"Fira Code", "JetBrains Mono", "Monoid", "Cascadia Code"}


def test_antialiasing_modes_gray_none_and_subpixel() -> None:
    # "bw": black text on white, so gray anti-aliasing only ever mixes the two evenly.
    gray = _pixels(_style(theme="bw")).reshape(-1, 3).astype(int)
    assert (gray[:, 0] == gray[:, 1]).all() and (gray[:, 1] == gray[:, 2]).all()
    assert len(np.unique(gray, axis=0)) > 10
    none = _pixels(_style(theme="bw", antialias="none")).reshape(-1, 3)
    assert {tuple(c) for c in np.unique(none, axis=0)} == {(0, 0, 0), (255, 255, 255)}
    # Sub-pixel text: each pixel's R, G and B cover different thirds of it, so glyph edges
    # carry colour fringes.
    lcd = _pixels(_style(theme="bw", antialias="subpixel")).reshape(-1, 3).astype(int)
    fringe = np.abs(lcd[:, 0] - lcd[:, 2])
    assert (fringe > 40).sum() > 50
    assert lcd.shape == gray.shape or abs(lcd.shape[0] - gray.shape[0]) < gray.shape[0] // 10
    with pytest.raises(ValueError, match="antialias"):
        _pixels(_style(antialias="cleartype"))


def test_jpeg_and_blur_soften_a_picture_without_moving_it() -> None:
    plain = _pixels(_style()).astype(int)
    for change in ({"jpeg_quality": 60}, {"blur": 0.8}):
        soft = _pixels(_style(**change)).astype(int)
        assert soft.shape == plain.shape
        assert 0 < np.abs(soft - plain).mean() < 20, change


# ---------------------------------------------------------------------------- the geometry


def _ink(image: np.ndarray, theme: str, threshold: int = 32) -> np.ndarray:
    """Pixels that differ from the theme's background by more than the current-line band."""
    background = np.array(render._colors(theme)[1])
    return np.abs(image.astype(int) - background).max(axis=2) > threshold


def _solid(line: str) -> list[int]:
    """Columns of letters and digits: glyphs with ink across their cell at any size (a dash
    or a dot in a dim colour can fade below the ink threshold)."""
    return [i for i, ch in enumerate(line) if ch.isalnum()]


def _check_geometry(shot: render.RenderedCode) -> None:
    geo, style = shot.geometry, shot.style
    assert geo is not None
    ink = _ink(shot.image, style.theme)
    lines = shot.text.rstrip("\n").split("\n")
    tol = 1.5 + 2 * style.blur  # resampling and blur spread ink about a pixel
    bands = np.zeros(ink.shape[0], bool)
    for i in range(len(lines)):
        top, bottom = geo.band(i)
        bands[max(0, math.floor(top - tol)):math.ceil(bottom + tol)] = True
    stray = np.flatnonzero(ink.any(axis=1) & ~bands)
    assert not len(stray), f"ink outside every line's band at rows {stray[:8]}"
    for i, line in enumerate(lines):
        top, bottom = geo.band(i)
        core = ink[math.ceil(top + tol):math.floor(bottom - tol)]  # not the neighbours' ink
        code = np.flatnonzero(core.any(axis=0))
        code = code[code >= geo.x0 - 0.9 * geo.cell_width]  # right of the gutter
        solid = _solid(line)
        if not solid:
            continue
        assert len(code), f"line {i} {line!r} has no ink in its band"
        reach = 0.35 * geo.cell_width + 2 + 2 * style.blur  # italic overhang
        lead = len(line) - len(line.lstrip())
        assert geo.column_x(lead) - reach <= code[0] <= geo.column_x(solid[0] + 1), (i, line)
        assert geo.column_x(solid[-1]) <= code[-1] + 1 <= geo.column_x(len(line)) + reach, (
            i, line)
        if geo.gutter_x is not None:
            gutter = np.flatnonzero(core.any(axis=0))
            assert ((gutter >= geo.gutter_x - reach) & (gutter < geo.x0 - geo.cell_width)).any()


def test_geometry_matches_the_drawn_ink_in_every_family() -> None:
    fonts = available_fonts()
    for n, (family, faces) in enumerate(families(fonts).items()):
        for seed in range(3):
            rng = random.Random(f"{family}:{seed}")
            style = render.sample_style(rng, TRAIN)
            face = faces[(n + seed) % len(faces)]
            # No cursor (its bar is ink beside the text) and no JPEG (ringing): checked alone.
            style = dataclasses.replace(style, font_name=face.name, font_path=face.path,
                                        cursor=None, jpeg_quality=None)
            max_lines, max_cols = render.fit(style)
            window = render.crop_window(SOURCE, rng, min(max_lines, 40), min(max_cols, 100))
            assert window is not None
            image, geometry = render.render_code_geometry(window, style, "textwrap.py")
            _check_geometry(render.RenderedCode(np.asarray(image), window, style,
                                                "textwrap.py", geometry))


def _span(mask: np.ndarray) -> tuple[int, int]:
    where = np.flatnonzero(mask)
    return int(where[0]), int(where[-1]) + 1


@pytest.mark.parametrize("changes", [
    {},
    {"scale": 1.25, "crop": (5, 5, 5, 5), "padding": 16},
    {"scale": 0.85, "hidpi": 1.5, "line_numbers": True, "line_number_start": 998},
    {"hidpi": 0.75, "antialias": "subpixel", "line_spacing": 1.5, "crop": (2, 4, 0, 1)},
    {"hidpi": 2.0, "antialias": "none", "scale": 1.25, "line_numbers": True},
])
def test_geometry_is_exact_to_a_pixel(changes) -> None:
    """An underscore fills its cell edge to edge (DejaVu Sans Mono's does, at every size), so
    a run of them shows where the columns are; the current-line band shows where a line's
    slot is, and the cursor bar where a column boundary is."""
    text = "x = 1\n    " + "_" * 48 + "\n" + "_" * 56 + "\nyy\n"
    style = _style(highlight_line=3, cursor=(0, 2), theme="bw", **changes)
    image, geo = render.render_code_geometry(text, style)
    pixels = np.asarray(image).astype(int)
    ink = _ink(pixels, "bw", threshold=128)
    for line, first, last in ((1, 4, 52), (2, 0, 56)):
        top, bottom = geo.band(line)
        left, right = _span(ink[math.ceil(top):math.floor(bottom)].any(axis=0)
                            & (np.arange(ink.shape[1]) > geo.x0 - geo.cell_width))
        assert abs(left - geo.column_x(first)) <= 1.0 and abs(right - geo.column_x(last)) <= 1.0
    # The band: rows a little darker than the background right of the longest line, where no
    # text is.
    shaded = (pixels[:, int(geo.column_x(56)) + 2] < 250).all(axis=-1)
    top, bottom = _span(shaded)
    assert abs(top - geo.band(3)[0]) <= 1.0 and abs(bottom - geo.band(3)[1]) <= 1.0
    assert abs(geo.pitch - (geo.line_tops[1] - geo.line_tops[0])) < 1e-9
    # The cursor: a bar the full height of line 0's band at column 2.
    top, bottom = geo.band(0)
    rows = ink[math.ceil(top) + 1:math.floor(bottom) - 1]
    bar = np.flatnonzero(rows.all(axis=0))
    assert len(bar) and abs(bar[0] - geo.column_x(2)) <= 1.0
    assert geo.cursor == (0, 2) and geo.highlight_line == 3


def test_crop_never_cuts_into_the_ink() -> None:
    for changes in ({}, {"line_numbers": True}, {"scale": 1.25, "hidpi": 1.5},
                    {"font_name": "DejaVuSansMono-BoldOblique", "cursor": (0, 0)}):
        if "font_name" in changes:
            face = next(f for f in available_fonts() if f.name == changes["font_name"])
            changes = {**changes, "font_path": face.path}
        whole_style = _style(padding=4, **changes)
        whole, whole_geo = render.render_code_geometry(LINES, whole_style)
        # Far more than the padding is asked for: the ink decides how much goes.
        cropped, geo = render.render_code_geometry(
            LINES, dataclasses.replace(whole_style, crop=(20, 20, 20, 20)))
        dx, dy = whole_geo.x0 - geo.x0, whole_geo.line_tops[0] - geo.line_tops[0]
        assert dx == round(dx) and dy == round(dy) and 0 < dx < 20 and 0 < dy < 20
        ink = _ink(np.asarray(whole), "default")
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        # The whole picture's ink, shifted by the crop, still lies inside the cropped one
        # (before its padding to a multiple of 8): nothing of it was cut.
        # Cropping moves pixels without changing them (and pads with background only), so
        # every pixel of ink is still there: nothing of it was cut on any side.
        assert _ink(np.asarray(cropped), "default").sum() == ink.sum()
        assert rows[0] >= dy and cols[0] >= dx
        # The margin left is small: at most a few pixels beyond the ink on each side.
        assert rows[0] - dy <= 2 and cols[0] - dx <= 2
