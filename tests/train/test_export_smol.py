"""build_cromwell_smol: SmolLM2 from the model store -> a cromwell GGUF that carries SmolLM2's
weights, its vocabulary grown by Cromwell's tokens, closed fusion gates and the trained-parts
record. Needs the model in the cache (`make setup` fetches it); the language tensors are copied
byte for byte, so the build takes seconds."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from engine.runtime.model_store import SMOLLM2_135M, cached_path

SOURCE = cached_path(SMOLLM2_135M)
pytestmark = [
    pytest.mark.skipif(not SOURCE.is_file(), reason="SmolLM2 not in the cache "
                       "(cromwell models fetch)"),
]


def _random_reader(path):
    import torch

    from engine.model.reader import LineReader, ReaderConfig
    from engine.train.reader import save_weights

    torch.manual_seed(0)
    save_weights(LineReader(ReaderConfig()), path, {"steps": 0})
    return path


def test_build_cromwell_smol(tmp_path):
    from engine.gguf_config import config_from_metadata
    from engine.runtime.reader import load_reader
    from engine.runtime.reader_file import file_sha256, gguf_reader_sha
    from engine.train.export import build_cromwell_smol

    reader = _random_reader(tmp_path / "reader.npz")
    path = build_cromwell_smol(tmp_path / "smol.gguf", SOURCE, fmt="Q8_0", reader=reader)
    # The screenshot reader travels in the model file, weight for weight.
    assert gguf_reader_sha(path) == file_sha256(reader)
    built, shipped = load_reader(path), load_reader(reader)
    assert built.config == shipped.config and built.nbytes == shipped.nbytes
    np.testing.assert_array_equal(built.head.w.data, shipped.head.w.data)
    out, src = gguf.GGUFReader(path), gguf.GGUFReader(SOURCE)
    meta = {k: f.contents() for k, f in out.fields.items() if not k.startswith("GGUF.")}
    cfg = config_from_metadata(meta)
    assert meta["general.architecture"] == "cromwell" and cfg.name == "Cromwell-VL-JEPA-smol"
    assert meta["cromwell.trained_parts"] == ["language", "ar_head", "lm_head"]
    tokens = meta["tokenizer.ggml.tokens"]
    assert len(tokens) == cfg.language.vocab_size and "<fim_prefix>" in tokens
    assert tokens[:49152] == src.fields["tokenizer.ggml.tokens"].contents()
    # The FIM tokens are in its vocabulary, but its weights never learnt them: the file must
    # not declare them, or the runtime would build FIM prompts it cannot fill.
    assert not [k for k in meta if k.startswith("tokenizer.ggml.fim_")]

    tensors = {t.name: t for t in out.tensors}
    assert "output.weight" not in tensors  # tied
    for t in (t for n, t in tensors.items() if n.endswith("_gate")):
        assert not gguf.quants.dequantize(t.data, t.tensor_type).any(), t.name
    # A Q4_1 layer of SmolLM2 comes back within Q8_0's error of the source's values.
    name = "blk.3.ffn_down.weight"
    a = gguf.quants.dequantize(tensors[name].data, tensors[name].tensor_type)
    s = next(t for t in src.tensors if t.name == name)
    b = gguf.quants.dequantize(s.data, s.tensor_type)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 5e-3 * np.abs(b).max()


def test_fetch_rebuilds_a_cromwell_smol_an_older_build_wrote(tmp_path, monkeypatch):
    from engine.runtime.model_store import cromwell_smol_path
    from engine.train.export import SMOL_BUILD, ensure_cromwell_smol, smol_build_of

    monkeypatch.setenv("CROMWELL_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / SOURCE.name).symlink_to(SOURCE)
    stale = gguf.GGUFWriter(str(cromwell_smol_path()), "cromwell")  # no build stamp
    stale.write_header_to_file()
    stale.write_kv_data_to_file()
    stale.write_tensors_to_file()
    stale.close()
    assert smol_build_of(cromwell_smol_path()) is None

    path = ensure_cromwell_smol()
    assert path == cromwell_smol_path() and smol_build_of(path) == SMOL_BUILD
    before = path.stat().st_mtime_ns
    assert ensure_cromwell_smol() == path and path.stat().st_mtime_ns == before  # current


def test_fetch_rebuilds_when_the_shipped_reader_changes(tmp_path, monkeypatch):
    from engine.runtime.model_store import cromwell_smol_path
    from engine.runtime.reader_file import file_sha256, gguf_reader_sha
    from engine.train import export

    monkeypatch.setenv("CROMWELL_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / SOURCE.name).symlink_to(SOURCE)
    monkeypatch.setattr(export, "READER_ASSET", tmp_path / "none.npz")
    path = export.ensure_cromwell_smol()
    assert gguf_reader_sha(path) is None  # no reader shipped: none built in
    reader = _random_reader(tmp_path / "reader.npz")
    monkeypatch.setattr(export, "READER_ASSET", reader)
    assert export.ensure_cromwell_smol() == cromwell_smol_path()
    assert gguf_reader_sha(path) == file_sha256(reader)

