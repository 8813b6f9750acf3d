"""`--vision-every`: a run can read screenshots on every batch (a recipe that only teaches the
vision path to read), or at another rate than its stage's, or never."""

from __future__ import annotations

import dataclasses
import itertools
import textwrap
from pathlib import Path

import pytest
import torch

from engine.config import load_config
from engine.train.curriculum import get_stage
from engine.train.distributed import DistInfo
from engine.train.loop import TrainSettings, default_batches

CODE = '''
    import math


    def area(radius: float) -> float:
        """Area of a circle."""
        return math.pi * radius * radius


    def perimeter(radius: float) -> float:
        return 2 * math.pi * radius


    def diameter(radius: float) -> float:
        return 2 * radius
    '''


def _kinds(tmp_path: Path, vision_every: int | None, n: int = 4) -> list[str]:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "circle.py").write_text(textwrap.dedent(CODE).lstrip())
    s = TrainSettings(stage=1, batch_size=1, seq_len=32, data="code", data_folders=str(code),
                      data_stdlib=False, data_workers=0, max_image_side=256,
                      vision_every=vision_every)
    tiny = load_config("cromwell-tiny").model  # with Cromwell's BPE vocabulary
    cfg = dataclasses.replace(tiny, language=dataclasses.replace(tiny.language,
                                                                 vocab_size=50_000))
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    kind, batches = default_batches(s, cfg, get_stage(1), info, "cromwell-bpe")
    assert kind == "code"
    return ["image" if "image" in b else "text" for b in itertools.islice(batches, n)]


def test_stage_1_reads_screenshots_every_second_batch_by_default(tmp_path) -> None:
    assert get_stage(1).vision_every == 2
    assert _kinds(tmp_path, None) == ["text", "image", "text", "image"]


def test_vision_every_1_makes_every_batch_a_screenshot_batch(tmp_path) -> None:
    assert _kinds(tmp_path, 1) == ["image"] * 4


def test_vision_every_0_reads_text_only(tmp_path) -> None:
    assert _kinds(tmp_path, 0, 3) == ["text"] * 3


def test_a_negative_vision_every_is_refused() -> None:
    with pytest.raises(ValueError, match="vision_every"):
        TrainSettings(vision_every=-1).check()
