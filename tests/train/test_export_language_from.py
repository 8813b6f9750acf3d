"""Exporting a run that kept its language path frozen from a llama GGUF: the language tensors
are copied as that file stores them, and only when the checkpoint still holds them unchanged."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
import yaml

from engine.config import CONFIG_DIR, config_from_dict
from engine.model.llama_gguf import load_llama_gguf
from engine.model.vljepa import VLJEPA
from engine.train.export import ExportError, export_model, frozen_language_bytes
from tests.test_model_llama_gguf import write_llama_gguf


def _tied_tiny() -> VLJEPA:
    data = yaml.safe_load((CONFIG_DIR / "cromwell-tiny.yaml").read_text())["model"]
    return VLJEPA(config_from_dict({"model": {**data, "tie_word_embeddings": True}}).model,
                  ema_target=False)


@pytest.fixture()
def source_and_model(tmp_path: Path) -> tuple[Path, VLJEPA]:
    torch.manual_seed(0)
    path = tmp_path / "llama.gguf"
    write_llama_gguf(_tied_tiny(), path)
    torch.manual_seed(1)  # vision, fusion and JEPA of their own, as a stage-1 run trains them
    model = _tied_tiny()
    load_llama_gguf(model, path)
    return path, model


def test_a_frozen_language_path_is_written_as_the_source_stores_it(source_and_model, tmp_path):
    source, model = source_and_model
    raw = frozen_language_bytes(model, source)
    out = export_model(model, tmp_path / "out.gguf", "Q8_0", raw=raw)
    written = {t.name: t for t in gguf.GGUFReader(out).tensors}
    for t in gguf.GGUFReader(source).tensors:
        assert written[t.name].tensor_type == t.tensor_type  # F32 kept, not made Q8_0
        assert np.array_equal(np.array(written[t.name].data), np.array(t.data)), t.name
    vision = next(n for n in written if n.startswith("vision.") and n.endswith(".weight")
                  and len(written[n].shape) == 2)
    assert written[vision].tensor_type == gguf.GGMLQuantizationType.Q8_0


def test_a_language_path_that_training_moved_is_refused(source_and_model):
    source, model = source_and_model
    with torch.no_grad():
        model.ar_head.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
    with pytest.raises(ExportError, match="ar_head.layers.0.mlp.down_proj.weight differs"):
        frozen_language_bytes(model, source)


def test_a_missing_source_is_refused(source_and_model, tmp_path):
    _, model = source_and_model
    with pytest.raises(ExportError, match="no such GGUF"):
        frozen_language_bytes(model, tmp_path / "nope.gguf")
