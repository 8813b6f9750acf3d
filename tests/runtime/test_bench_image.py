"""The image figures of `cromwell bench decode` on cromwell-tiny: every field is there, and the
model is left decoding text only, as before the image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import load_config
from engine.model.vljepa import VLJEPA
from engine.runtime.bench import _image_figures
from engine.runtime.gguf_file import GGUFFile
from engine.runtime.model import Model
from engine.tokenizer import from_gguf
from engine.train.export import export_model

PROMPT = [5, 17, 200, 33, 1021, 7, 64, 999, 12]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Model:
    torch.manual_seed(0)
    model = VLJEPA(load_config("cromwell-tiny").model, ema_target=False).eval()
    path = export_model(model, tmp_path_factory.mktemp("bench") / "tiny.gguf", "Q8_0", ["none"])
    return Model(GGUFFile(path), from_gguf(smollm2_path))


def test_image_figures_are_reported_and_text_decoding_is_restored(tiny: Model) -> None:
    before = tiny.generate_tokens(PROMPT, max_tokens=6, stop_ids=[])
    row = _image_figures(tiny, PROMPT, side=64, repeats=1)
    assert row["image_side"] == 64 and row["vision_tokens"] == (64 // 8) ** 2
    assert 0 < row["vision_encode_ms"] <= row["image_first_token_ms"]
    assert row["image_decode_tok_s"] > 0
    assert tiny.decoder.text_hook is None
    assert tiny.generate_tokens(PROMPT, max_tokens=6, stop_ids=[]) == before


def test_a_text_model_cannot_time_an_image(smollm2_path: Path) -> None:
    import engine.runtime

    model = engine.runtime.load(str(smollm2_path))
    with pytest.raises(ValueError, match="text-only 'llama' model"):
        _image_figures(model, PROMPT, side=64, repeats=1)
