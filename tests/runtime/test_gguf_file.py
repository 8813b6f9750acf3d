"""GGUF loading: the same view of the file as gguf.GGUFReader, with no copy, and clear errors
for every kind of bad file."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from tiny_gguf import write_tiny_gguf

from engine.runtime.decoder import Decoder
from engine.runtime.decoder_config import DecoderConfig
from engine.runtime.gguf_file import GGUFError, GGUFFile


def test_reader_agrees_with_gguf_reader_and_maps_without_copying(smollm2_path: Path) -> None:
    ours = GGUFFile(smollm2_path)
    theirs = gguf.GGUFReader(smollm2_path)
    assert ours.architecture == "llama"
    assert len(ours.tensors) == len(theirs.tensors)
    for t in theirs.tensors:
        mine = ours.tensors[t.name]
        assert mine.qtype == t.tensor_type
        assert mine.shape == tuple(int(n) for n in reversed(t.shape))
        assert np.array_equal(mine.data.view(t.data.dtype).reshape(t.data.shape), t.data)
        assert not mine.data.flags.owndata and not mine.data.flags.writeable
    for key in ("llama.block_count", "llama.rope.freq_base", "tokenizer.ggml.model"):
        assert ours.metadata[key] == theirs.fields[key].contents()
    tokens = theirs.fields["tokenizer.ggml.tokens"].contents()
    assert ours.metadata["tokenizer.ggml.tokens"] == tokens


def test_smollm2_config_is_read_from_metadata(smollm2_path: Path) -> None:
    cfg = DecoderConfig.from_gguf(GGUFFile(smollm2_path))
    assert (cfg.n_layers, cfg.dim, cfg.n_heads, cfg.n_kv_heads) == (30, 576, 9, 3)
    assert (cfg.ffn_dim, cfg.vocab_size, cfg.head_dim) == (1536, 49152, 64)
    assert cfg.rope_base == 100000.0 and cfg.rope_layout == "interleaved"
    assert cfg.tied_embeddings and not cfg.qkv_bias and cfg.default_n_ctx == 8192


def test_a_truncated_file_names_the_tensor_it_cuts(smollm2_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with smollm2_path.open("rb") as src, cut.open("wb") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate(smollm2_path.stat().st_size - 1000)
    with pytest.raises(GGUFError, match=r"truncated file: tensor 'output_norm\.weight' needs"):
        GGUFFile(cut)


def test_a_file_cut_inside_the_header_names_the_key(smollm2_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "header.gguf"
    cut.write_bytes(smollm2_path.read_bytes()[:5000])
    with pytest.raises(GGUFError, match="truncated file.*'tokenizer"):
        GGUFFile(cut)


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(GGUFError, match="not a GGUF file"):
        GGUFFile(bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        GGUFFile(tmp_path / "missing.gguf")


def test_an_unknown_architecture_is_named(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf", metadata_arch="mamba")
    with pytest.raises(GGUFError, match="'general.architecture' is 'mamba'"):
        Decoder(GGUFFile(path))


def test_a_missing_tensor_is_named(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf", drop=["blk.1.ffn_up.weight"])
    with pytest.raises(GGUFError, match="tensor 'blk.1.ffn_up.weight' is missing"):
        Decoder(GGUFFile(path))


def test_qwen2_needs_its_qkv_biases(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "q.gguf", arch="qwen2", drop=["blk.0.attn_k.bias"])
    with pytest.raises(GGUFError, match="tensor 'blk.0.attn_k.bias' is missing"):
        Decoder(GGUFFile(path))


def test_a_wrong_shape_is_named(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf", reshape={"blk.0.attn_k.weight": (64, 64)})
    with pytest.raises(
        GGUFError,
        match=r"'blk.0.attn_k.weight' has shape \[64, 64\], "
        r"expected \[32, 64\]",
    ):
        Decoder(GGUFFile(path))


def test_a_missing_hyperparameter_is_named(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf")
    f = GGUFFile(path)
    del f.metadata["llama.feed_forward_length"]
    with pytest.raises(GGUFError, match="'llama.feed_forward_length' is missing"):
        DecoderConfig.from_gguf(f)


def test_header_values_longer_than_the_read_window_read_whole(tmp_path: Path) -> None:
    # The header is read through a window of it (64 KiB at first): a string longer than the
    # window, an array whose strings straddle window edges, and values after both.
    path = tmp_path / "long.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    long_text = "".join(f"line {i}: é\n" for i in range(30_000))  # ~400 KB
    words = [f"w{i}-" + "ü" * (i % 50) for i in range(20_000)]
    writer.add_string("test.long", long_text)
    writer.add_array("test.words", words)
    writer.add_uint32("test.after", 7)
    writer.add_tensor("t", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    f = GGUFFile(path)
    assert f.metadata["test.long"] == long_text
    assert f.metadata["test.words"] == words
    assert f.metadata["test.after"] == 7
    assert np.array_equal(f.tensors["t"].data, np.arange(12, dtype=np.float32).reshape(3, 4))


def _patched(src: Path, dst: Path, offset: int, fmt: str, value: int) -> Path:
    data = bytearray(src.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    dst.write_bytes(data)
    return dst


@pytest.mark.parametrize(
    ("offset", "value", "needle"),
    [
        (8, 2**60, "counts 1152921504606846976 tensors, more than the .* bytes left"),
        (8, 2**64 - 1, "counts 18446744073709551615 tensors, more than"),
        (16, 2**60, "counts 1152921504606846976 metadata entries, more than"),
        (16, 0, "counts 0 metadata entries, which hold no 'general.architecture'"),
    ],
)
def test_corrupt_header_counts_are_one_sentence(
    tmp_path: Path, offset: int, value: int, needle: str
) -> None:
    """A count is bounded by the bytes left in the file before anything is allocated; a
    metadata count that stops short says so, not what the misread tensor table holds."""
    good = write_tiny_gguf(tmp_path / "m.gguf")
    assert struct.unpack_from("<QQ", good.read_bytes(), 8)[1] == 9
    bad = _patched(good, tmp_path / "bad.gguf", offset, "<Q", value)
    with pytest.raises(GGUFError, match=needle) as caught:
        GGUFFile(bad)
    assert "rank" not in str(caught.value)


def test_a_huge_array_count_or_tensor_name_length_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "a.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_array("test.ids", [1, 2, 3])
    writer.add_tensor("t", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = path.read_bytes()
    f = GGUFFile(path)
    # The array's count follows its key and its element type; the first tensor's name
    # length is the first field after the metadata.
    count_at = data.index(b"test.ids") + len(b"test.ids") + 4 + 4
    assert struct.unpack_from("<Q", data, count_at)[0] == 3
    huge_array = _patched(path, tmp_path / "b.gguf", count_at, "<Q", 2**61)
    with pytest.raises(GGUFError, match=r"'test.ids' claims 2305843009213693952 entries"):
        GGUFFile(huge_array)
    huge_name = _patched(path, tmp_path / "c.gguf", f._kv_end, "<Q", 2**64 - 1)
    with pytest.raises(GGUFError, match="truncated file: it ends while reading the name of "
                       "tensor #0"):
        GGUFFile(huge_name)
