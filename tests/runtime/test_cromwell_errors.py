"""A broken `cromwell` file is a clear GGUFError naming the tensor or key at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from engine.config import load_config
from engine.model.vljepa import VLJEPA
from engine.runtime.cromwell_weights import load_cromwell_weights
from engine.runtime.gguf_file import GGUFError, GGUFFile
from engine.train.export import export_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = VLJEPA(load_config("cromwell-tiny").model, ema_target=False)
    return export_model(model, tmp_path_factory.mktemp("tiny") / "tiny.gguf", "F32")


Edit = Callable[[str, np.ndarray], np.ndarray | None]


def rewrite(src: Path, dst: Path, edit: Edit, drop_key: str | None = None) -> Path:
    """Copy `src` to `dst`, each tensor through `edit` (None drops it), `drop_key` left out."""
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(str(dst), "cromwell")
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", drop_key):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), vtype, field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), vtype)
    for t in reader.tensors:
        w = np.array(t.data, np.float32).reshape([int(d) for d in reversed(t.shape)])
        w = edit(t.name, w)
        if w is not None:
            writer.add_tensor(t.name, w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dst


def test_the_exported_file_loads(tiny: Path) -> None:
    cw = load_cromwell_weights(GGUFFile(tiny))
    assert cw.fusion_at == 2 and len(cw.fusion.blocks) == 2


def test_a_missing_tensor_is_named(tiny: Path, tmp_path: Path) -> None:
    name = "fusion.blocks.1.l2v.k_proj.weight"
    bad = rewrite(tiny, tmp_path / "b.gguf", lambda n, w: None if n == name else w)
    with pytest.raises(GGUFError, match=f"tensor '{name}' is missing"):
        load_cromwell_weights(GGUFFile(bad))


def test_a_wrong_shape_is_named(tiny: Path, tmp_path: Path) -> None:
    name = "vision.blocks.0.attn.rel_bias"
    bad = rewrite(tiny, tmp_path / "b.gguf", lambda n, w: w[:, :5].copy() if n == name else w)
    with pytest.raises(GGUFError, match=f"tensor '{name}' has shape"):
        load_cromwell_weights(GGUFFile(bad))


def test_a_missing_key_is_named(tiny: Path, tmp_path: Path) -> None:
    key = "cromwell.encoder_block_count"
    bad = rewrite(tiny, tmp_path / "b.gguf", lambda n, w: w, drop_key=key)
    with pytest.raises(GGUFError, match=key):
        load_cromwell_weights(GGUFFile(bad))


def test_a_truncated_file_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.gguf"
    data = tiny.read_bytes()
    bad.write_bytes(data[: len(data) - 1000])
    with pytest.raises(GGUFError, match="cut.gguf"):
        load_cromwell_weights(GGUFFile(bad))


def test_another_architecture_is_refused(smollm2_path: Path) -> None:
    with pytest.raises(GGUFError, match="'llama' is not 'cromwell'"):
        load_cromwell_weights(GGUFFile(smollm2_path))
