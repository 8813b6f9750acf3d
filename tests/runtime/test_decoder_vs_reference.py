"""The runtime decoder on the native kernels against the plain-numpy reference: prefill
(matrix-matrix) and decode steps (matrix-vector) over the KV cache give the same logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy_reference import ReferenceDecoder
from tiny_gguf import write_tiny_gguf

from engine.runtime.decoder import Decoder
from engine.runtime.gguf_file import GGUFFile


def prefill_then_decode(decoder: Decoder, ids: list[int], n_prefill: int) -> np.ndarray:
    rows = [decoder.forward(ids[:n_prefill], all_logits=True).copy()]
    rows += [decoder.forward([t])[None].copy() for t in ids[n_prefill:]]
    return np.concatenate(rows)


def assert_close_logits(ours: np.ndarray, ref: np.ndarray, rel: float) -> None:
    scale = float(np.abs(ref).max())
    err = float(np.abs(ours - ref).max())
    assert err <= rel * scale, f"max |logit error| {err:.4g} > {rel} x {scale:.4g}"
    assert np.array_equal(ours.argmax(-1), ref.argmax(-1))


def test_smollm2_logits_match_the_reference(smollm2_path: Path) -> None:
    f = GGUFFile(smollm2_path)
    vocab = {t: i for i, t in enumerate(f.metadata["tokenizer.ggml.tokens"])}
    ids = [vocab[t] for t in ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis", "ĠParis", "."]]
    ours = prefill_then_decode(Decoder(f, n_ctx=64), ids, n_prefill=5)
    ref = ReferenceDecoder(f).forward(ids)
    # The kernels may quantize activations to 8 bits for the integer dot products.
    assert_close_logits(ours, ref, rel=0.03)
    assert ref[4].argmax() == vocab["ĠParis"]  # the oracle itself is sane


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("fmt", ["F32", "Q8_0"])
def test_tiny_models_match_the_reference(tmp_path: Path, arch: str, fmt: str) -> None:
    f = GGUFFile(write_tiny_gguf(tmp_path / "t.gguf", arch, fmt))
    ids = [5, 17, 3, 99, 42, 7, 7, 120, 1]
    ours = prefill_then_decode(Decoder(f), ids, n_prefill=6)
    assert_close_logits(ours, ReferenceDecoder(f).forward(ids), rel=0.02)


def test_rolling_the_cache_back_recomputes_the_same_logits(tmp_path: Path) -> None:
    decoder = Decoder(GGUFFile(write_tiny_gguf(tmp_path / "t.gguf")))
    first = decoder.forward([1, 2, 3, 4]).copy()
    decoder.forward([9, 9])
    decoder.cache.rollback(3)
    np.testing.assert_allclose(decoder.forward([4]), first, rtol=1e-4, atol=1e-4)


def test_a_full_context_is_a_clear_error(tmp_path: Path) -> None:
    decoder = Decoder(GGUFFile(write_tiny_gguf(tmp_path / "t.gguf")), n_ctx=8)
    decoder.forward([1] * 6)
    with pytest.raises(ValueError, match="context full"):
        decoder.forward([1, 2, 3])
