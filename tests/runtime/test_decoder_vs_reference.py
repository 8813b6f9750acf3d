"""The runtime decoder on the native kernels against the plain-numpy reference: prefill
(matrix-matrix) and decode steps (matrix-vector) over the KV cache give the same logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy_reference import ReferenceDecoder
from tiny_gguf import write_tiny_gguf

from engine import _native
from engine.runtime.decoder import Decoder
from engine.runtime.gguf_file import GGUFFile
from tests.quant_cases import kernel_path


def prefill_then_decode(decoder: Decoder, ids: list[int], n_prefill: int) -> np.ndarray:
    rows = [decoder.forward(ids[:n_prefill], all_logits=True).copy()]
    rows += [decoder.forward([t])[None].copy() for t in ids[n_prefill:]]
    return np.concatenate(rows)


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def assert_fused_step_matches_the_loop(f: GGUFFile, ids: list[int]) -> None:
    """The one-call decode step computes what the per-kernel loop does, bit for bit."""
    fused, loop = Decoder(f, fused=True), Decoder(f, fused=False)
    assert fused.fused_step is not None
    for decoder in (fused, loop):
        decoder.forward(ids)
    for token in (3, 5, 8, 97):
        assert np.array_equal(fused.forward([token]), loop.forward([token]))


def smollm2_ids(f: GGUFFile) -> list[int]:
    vocab = {t: i for i, t in enumerate(f.metadata["tokenizer.ggml.tokens"])}
    words = ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis", "ĠParis", ".", "ĠThe", "Ġcapital"]
    return [vocab[t] for t in words]


def test_smollm2_prefill_matches_the_reference(smollm2_path: Path) -> None:
    # Nine rows on the kernels' float matrix-matrix path (the integer one turned off): the same
    # math as the reference (which undoes the llama Q/K permutation and uses rotate-half RoPE)
    # to float precision.
    f = GGUFFile(smollm2_path)
    ids = smollm2_ids(f)
    ref = ReferenceDecoder(f).forward(ids)
    assert ref[4].argmax() == ids[5]  # the oracle itself is sane: "... is Paris"
    _native.set_no_int_gemm(True)
    try:
        ours = Decoder(f, n_ctx=64, kv_cache="f32").forward(ids, all_logits=True).copy()
        # The default half KV cache rounds keys and values to 11 significant bits: close.
        half = Decoder(f, n_ctx=64).forward(ids, all_logits=True).copy()
    finally:
        _native.set_no_int_gemm(False)
    assert relative_error(ours, ref) < 1e-4
    assert relative_error(half, ref) < 5e-3
    assert np.array_equal(half.argmax(-1), ref.argmax(-1))
    # The integer path (the default) rounds activations to 8 bits as decode steps do (below):
    # a few percent of the logits, every choice of this prompt the same.
    rounded = Decoder(f, n_ctx=64).forward(ids, all_logits=True)
    assert relative_error(rounded, ref) < 0.2
    assert np.array_equal(rounded.argmax(-1), ref.argmax(-1))


def test_smollm2_decode_steps_match_the_reference(smollm2_path: Path) -> None:
    # Decode steps use the integer kernels, which round activations to 8 bits per 32 values
    # as ggml does; SmolLM2's outlier channels make that a few percent of the logits. The
    # model's confident choices must not change.
    f = GGUFFile(smollm2_path)
    ids = smollm2_ids(f)
    decoder = Decoder(f, n_ctx=64)
    ours = np.stack([decoder.forward([t]).copy() for t in ids])
    ref = ReferenceDecoder(f).forward(ids)
    assert relative_error(ours, ref) < 0.2
    top2 = np.sort(ref, axis=-1)[:, -2:]
    confident = top2[:, 1] - top2[:, 0] > 1.0
    assert confident.sum() >= 4
    assert np.array_equal(ours.argmax(-1)[confident], ref.argmax(-1)[confident])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("fmt", ["F32", "Q8_0", "Q5_0", "Q5_1"])
def test_tiny_models_match_the_reference(tmp_path: Path, arch: str, fmt: str) -> None:
    f = GGUFFile(write_tiny_gguf(tmp_path / "t.gguf", arch, fmt))
    ids = [5, 17, 3, 99, 42, 7, 7, 120, 1]
    # F32 with a float KV cache is exact, with the default half cache close; quantized
    # prefill rows and decode steps round activations to 8 bits. The Q5_0 / Q5_1
    # files are packed by gguf's own quantizers, as real files are.
    ref = ReferenceDecoder(f).forward(ids)
    for kv_cache, tolerance in (("f32", 1e-4), ("f16", 5e-3)):
        if fmt != "F32":
            tolerance = 0.03
        ours = prefill_then_decode(Decoder(f, kv_cache=kv_cache), ids, n_prefill=8)
        assert relative_error(ours, ref) < tolerance, kv_cache


@pytest.mark.parametrize("fmt", ["F32", "Q8_0"])
def test_the_scalar_kernels_on_three_threads_match_the_reference(tmp_path: Path, fmt: str) -> None:
    # What a CPU without AVX2 runs: a prefill long enough for every thread to quantize
    # activation rows (32 and more), then decode steps.
    f = GGUFFile(write_tiny_gguf(tmp_path / "t.gguf", "qwen2", fmt))
    ids = [(7 * i + 3) % 128 for i in range(44)]
    ref = ReferenceDecoder(f).forward(ids)
    try:
        _native.set_num_threads(3)
        with kernel_path(True):
            for _ in range(3):  # a new pool's first jobs may run whole on the caller
                ours = prefill_then_decode(Decoder(f, kv_cache="f32"), ids, n_prefill=40)
    finally:
        _native.set_num_threads(0)
    assert relative_error(ours, ref) < (1e-4 if fmt == "F32" else 0.03)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_file_mixing_formats_per_tensor_matches_the_reference(tmp_path: Path, arch: str) -> None:
    # As Q4_K_M files are built: most matrices in one format, some in others (here Q5_0 and
    # Q5_1 next to Q8_0), and the embedding read by row gathers in a five-bit format.
    formats = {"token_embd.weight": "Q5_1", "blk.0.attn_v.weight": "Q5_1"}
    formats |= {f"blk.{i}.ffn_down.weight": "Q8_0" for i in range(2)}
    path = write_tiny_gguf(tmp_path / "t.gguf", arch, "Q5_0", formats=formats)
    f = GGUFFile(path)
    assert {t.fmt for t in f} == {"F32", "Q5_0", "Q5_1", "Q8_0"}
    ids = [5, 17, 3, 99, 42, 7, 7, 120, 1]
    ours = prefill_then_decode(Decoder(f), ids, n_prefill=8)
    assert relative_error(ours, ReferenceDecoder(f).forward(ids)) < 0.03
    assert_fused_step_matches_the_loop(f, ids)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_a_k_quant_file_matches_the_reference(tmp_path: Path, arch: str) -> None:
    # As the Q4_K_M file of a model whose rows are multiples of 256 (Qwen2.5-1.5B, say): Q4_K
    # for most matrices, Q6_K for ffn_down and the embedding (read by row gathers), Q5_K here
    # for one attn_v; the reference dequantizes them with the `gguf` package.
    formats = {"token_embd.weight": "Q6_K", "blk.0.attn_v.weight": "Q5_K"}
    formats |= {f"blk.{i}.ffn_down.weight": "Q6_K" for i in range(2)}
    path = write_tiny_gguf(
        tmp_path / "k.gguf", arch, "Q4_K", formats=formats, sizes={"dim": 256, "ffn_dim": 512}
    )
    f = GGUFFile(path)
    assert {t.fmt for t in f} == {"F32", "Q4_K", "Q5_K", "Q6_K"}
    ids = [5, 17, 3, 99, 42, 7, 7, 120, 1, 64, 2]
    ref = ReferenceDecoder(f).forward(ids)
    # nine prefill rows: the matrix-matrix path, weight tiles unpacked to float
    assert relative_error(prefill_then_decode(Decoder(f), ids, n_prefill=9), ref) < 0.03
    # two: the integer dot products of the decode step, row by row
    assert relative_error(prefill_then_decode(Decoder(f), ids, n_prefill=2), ref) < 0.03
    assert_fused_step_matches_the_loop(f, ids)


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


def test_a_verification_pass_reproduces_decode_steps_bit_for_bit(smollm2_path: Path) -> None:
    # Speculative decoding's output equals plain greedy only if the batched verification
    # computes exactly the logits the decode steps would.
    decoder = Decoder(GGUFFile(smollm2_path), n_ctx=64)
    prompt = [1, 4093, 198, 1780, 314]
    tokens = [260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531]  # more than one chunk of rows
    decoder.forward(prompt)
    batched = decoder.forward(tokens, all_logits=True, as_decode=True).copy()
    decoder.cache.rollback(len(prompt))
    steps = np.stack([decoder.forward([t]).copy() for t in tokens])
    assert np.array_equal(batched, steps)


@pytest.mark.parametrize("kv_cache", ["f16", "f32"])
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_the_fused_decode_step_equals_the_kernel_loop_bit_for_bit(
    tmp_path: Path, arch: str, kv_cache: str
) -> None:
    f = GGUFFile(write_tiny_gguf(tmp_path / "t.gguf", arch, "Q8_0"))
    fused = Decoder(f, fused=True, kv_cache=kv_cache)
    loop = Decoder(f, fused=False, kv_cache=kv_cache)
    assert fused.fused_step is not None and loop.fused_step is None
    for decoder in (fused, loop):
        decoder.forward([3, 1, 4, 1, 5, 9, 2, 6, 5])
    for token in (3, 5, 8, 97):
        assert np.array_equal(fused.forward([token]), loop.forward([token]))
    # A speculative verification: one native call against the loop's kernels per row.
    draft = [11, 3, 3, 70, 2, 9]
    assert np.array_equal(
        fused.forward(draft, all_logits=True, as_decode=True),
        loop.forward(draft, all_logits=True, as_decode=True),
    )
    assert np.array_equal(fused.cache.k[:, :19], loop.cache.k[:, :19])
    assert np.array_equal(fused.cache.v[:, :19], loop.cache.v[:, :19])


def test_the_fused_step_refuses_a_token_outside_the_vocabulary(tmp_path: Path) -> None:
    decoder = Decoder(GGUFFile(write_tiny_gguf(tmp_path / "t.gguf")))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        decoder.forward([10_000])


def test_the_kv_cache_type_is_checked(tmp_path: Path) -> None:
    f = GGUFFile(write_tiny_gguf(tmp_path / "t.gguf"))
    with pytest.raises(ValueError, match="KV cache type 'bf16': expected one of f16, f32"):
        Decoder(f, kv_cache="bf16")
    decoder = Decoder(f)
    assert decoder.cache.k.dtype == np.float16 and decoder.cache.v.dtype == np.float16
    decoder.cache.v = decoder.cache.v.astype(np.float32)  # a step must not mix the two
    with pytest.raises(ValueError, match="k_cache, v_cache: expected the same dtype"):
        decoder._make_fused_step()
