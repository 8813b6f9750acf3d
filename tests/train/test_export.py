"""Export to GGUF and read back with gguf.GGUFReader: every tensor there, right shape, the
torch weights' values (exact at F32, within each format's error at the others), the config
and the training facts in the metadata; bad arguments fail clearly."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from engine.gguf_config import config_from_metadata
from engine.model.gguf_names import gguf_to_hf_qk, llama_to_cromwell
from engine.train.export import (
    ExportError,
    export_checkpoint,
    load_checkpoint_model,
    tensor_type,
    trained_on_fim,
)
from engine.train.loop import TrainSettings, train

# Largest error allowed, as a fraction of the tensor's largest magnitude. Q8_0 and Q4_1 round
# to half a step (absmax/127/2, range/15/2 <= absmax/15); Q4_0's scale is set by the signed
# extreme of each block, so the opposite extreme can clip by a whole step, absmax/8.
TOLERANCE = {"F16": 1e-3, "Q8_0": 5e-3, "Q4_0": 0.13, "Q4_1": 7e-2}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    summary = train(TrainSettings(config="cromwell-tiny", stage=3, out_dir=out, steps=2,
                                  save_every=2, batch_size=2, seq_len=16, image_size=32,
                                  lr=1e-2, warmup_steps=0, threads=1, progress=False))
    return Path(summary["checkpoint"])


def _fields(reader: gguf.GGUFReader) -> dict[str, object]:
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def _read_back(reader: gguf.GGUFReader, n_enc: int, heads: dict[str, tuple[int, int]]
               ) -> dict[str, np.ndarray]:
    """Tensors by our PyTorch names, dequantised, Q/K rows back in the half-RoPE order."""
    out = {}
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(
            [int(d) for d in reversed(t.shape)])
        name = llama_to_cromwell(t.name, n_enc) or t.name
        kind = t.name.split(".")[-2]
        if name != t.name and kind in ("attn_q", "attn_k"):
            n_q, n_kv = heads[name.split(".")[0]]
            w = gguf_to_hf_qk(w, n_q if kind == "attn_q" else n_kv)
        out[name] = w
    return out


@pytest.mark.parametrize("fmt", ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"])
def test_export_reads_back_as_the_trained_weights(checkpoint, tmp_path, fmt):
    path = export_checkpoint(checkpoint, tmp_path / f"tiny-{fmt}.gguf", fmt)
    model, trainer = load_checkpoint_model(checkpoint)
    cfg = model.cfg
    reader = gguf.GGUFReader(path)

    meta = _fields(reader)
    assert meta["general.architecture"] == "cromwell"
    assert config_from_metadata(meta) == cfg
    assert meta["cromwell.block_count"] == cfg.language.num_layers + cfg.autoregressive.num_layers
    assert meta["cromwell.encoder_block_count"] == cfg.language.num_layers
    assert meta["cromwell.trained_parts"] == trainer["trained_parts"]
    assert meta["cromwell.training.step"] == 2 and meta["cromwell.training.stage"] == 3

    heads = {"language": (cfg.language.num_attention_heads, cfg.language.num_key_value_heads),
             "ar_head": (cfg.autoregressive.num_attention_heads,
                         cfg.autoregressive.num_key_value_heads)}
    got = _read_back(reader, cfg.language.num_layers, heads)
    want = {n: t.numpy() for n, t in model.state_dict().items() if not n.startswith("target.")}
    assert got.keys() == want.keys()
    assert "blk.0.attn_q.weight" in {t.name for t in reader.tensors}
    types = {llama_to_cromwell(t.name, cfg.language.num_layers) or t.name: t.tensor_type
             for t in reader.tensors}
    for name, w in want.items():
        assert got[name].shape == w.shape, name
        assert types[name] == tensor_type(name, w.shape, fmt), name
        if types[name] == gguf.GGMLQuantizationType.F32:
            np.testing.assert_array_equal(got[name], w, err_msg=name)
        else:
            err = np.abs(got[name] - w).max()
            assert err <= TOLERANCE[fmt] * np.abs(w).max(), (name, err)
    if fmt != "F32":  # the matrices really are in the format asked for
        assert types["language.layers.0.attn.q_proj.weight"].name == fmt
        assert types["language.layers.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
        assert types["fusion.blocks.0.v2l_gate"] == gguf.GGMLQuantizationType.F32


def test_export_bad_arguments_fail_clearly(checkpoint, tmp_path):
    with pytest.raises(ExportError, match="unknown format 'Q5_K'"):
        export_checkpoint(checkpoint, tmp_path / "x.gguf", "Q5_K")
    with pytest.raises(ExportError, match="no such checkpoint folder"):
        export_checkpoint(tmp_path / "missing", tmp_path / "x.gguf", "F32")
    with pytest.raises(ExportError, match="not a usable checkpoint"):
        export_checkpoint(tmp_path, tmp_path / "x.gguf", "F32")  # a folder, not a checkpoint
    assert not (tmp_path / "x.gguf").exists()

    from cromwell_cli.main import main

    result = CliRunner().invoke(main, ["export", "--checkpoint", str(checkpoint), "--out",
                                       str(tmp_path / "y.gguf"), "--format", "Q3"])
    assert result.exit_code != 0 and "unknown format 'Q3'" in result.output
    result = CliRunner().invoke(main, ["export", "--checkpoint", str(checkpoint), "--out",
                                       str(tmp_path / "y.gguf"), "--format", "Q8_0"])
    assert result.exit_code == 0, result.output
    assert gguf.GGUFReader(tmp_path / "y.gguf").tensors


def test_only_a_stage_that_trained_the_text_path_on_fim_declares_fim() -> None:
    assert trained_on_fim({"stage": 2, "data": "code"})
    assert trained_on_fim({"stage": 4, "data": "code"})
    assert not trained_on_fim({"stage": 1, "data": "code"})  # the language path frozen
    assert not trained_on_fim({"stage": 3, "data": "synthetic"})  # random tokens, no FIM


def test_tied_lm_head_is_written_once_as_token_embd(tmp_path):
    from engine.config import load_config
    from engine.model.vljepa import VLJEPA
    from engine.train.export import export_model

    cfg = load_config("cromwell-tiny").model
    cfg.tie_word_embeddings = True
    model = VLJEPA(cfg, ema_target=False)
    assert model.lm_head.weight is model.language.embed.weight
    reader = gguf.GGUFReader(export_model(model, tmp_path / "tied.gguf", "F32"))
    names = {t.name for t in reader.tensors}
    assert "token_embd.weight" in names and "output.weight" not in names
    torch.testing.assert_close(
        torch.from_numpy(np.array(_read_back(reader, 2, {"language": (4, 2), "ar_head": (4, 2)})[
            "language.embed.weight"])),
        model.language.embed.weight.detach())


def test_metadata_config_reader_needs_no_torch():
    """The runtime reads the config back with engine.gguf_config, and must not load torch."""
    import subprocess
    import sys

    code = ("import sys, engine.gguf_config as g, engine.config as c; "
            "m = g.config_to_metadata(c.load_config('cromwell-smol').model); "
            "assert g.config_from_metadata(m).name == 'Cromwell-VL-JEPA-smol'; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
