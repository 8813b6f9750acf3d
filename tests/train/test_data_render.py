"""Screenshots for the vision path: code renders, charts, mockups."""

from __future__ import annotations

import dataclasses
import random
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from engine.train import charts, mockups, render
from engine.train.fonts import (
    HELDOUT_SIZES,
    TRAIN_SIZES,
    available_fonts,
    is_monospace,
    split_fonts,
)
from engine.train.split import HELDOUT, TRAIN

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
    again = render.render_example("textwrap.py", SOURCE, random.Random(3))
    first = render.render_example("textwrap.py", SOURCE, random.Random(3))
    assert again.text == first.text and np.array_equal(again.image, first.image)


def test_heldout_renders_use_heldout_fonts_and_sizes() -> None:
    heldout_fonts = {f.name for f in split_fonts(available_fonts())[HELDOUT]}
    for seed in range(5):
        style = render.sample_style(random.Random(seed), HELDOUT)
        assert style.size in HELDOUT_SIZES and style.font_name in heldout_fonts


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
    from engine.train.data import encoded, mockup_stream
    from engine.train.vision import batch_images, vision_batches, vision_prompt

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
    from engine.train.corpus import build_index, folder_source
    from engine.train.data import render_stream

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
    from engine.train.data import RenderMaker

    with pytest.raises(ValueError, match="too small"):
        RenderMaker(max_side=64)
    # At the smallest accepted side every sampled style still fits the minimum window.
    for seed in range(200):
        style = render.sample_style(random.Random(seed), TRAIN)
        lines, _ = render.fit(style, render.MIN_SIDE)
        assert lines >= 4
