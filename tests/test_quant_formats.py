"""Weight formats: the native packers equal the numpy packers byte for byte (and gguf's where
gguf has one), and every format unpacks as gguf's independent reference unpacks it."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants

from engine import _native, quants
from tests.quant_cases import ALL_FORMATS, KQUANTS, kernel_path, random_weights

SIMPLE_BLOCKS = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")


def awkward_rows(k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows that hit the packers' edge cases: zeros, constants, ties, tiny and huge values."""
    rows = [
        rng.standard_normal(k),
        rng.standard_normal(k) * 1e-6,
        rng.standard_normal(k) * 1e4,
        np.zeros(k),
        np.full(k, 0.75),
        np.round(rng.standard_normal(k) * 8) / 2,  # many exact halves: rounding ties
        np.where(np.arange(k) % 7 == 0, -5.0, 1.0),  # the largest magnitude is negative
        rng.uniform(-1e-7, 1e-7, k),  # half-float subnormals
    ]
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("fmt", quants.FORMATS)
def test_sizes_match_ggml(fmt: str) -> None:
    elems, nbytes = GGML_QUANT_SIZES[GGMLQuantizationType[fmt]]
    assert _native.block_size(fmt) == elems
    assert _native.row_bytes(fmt, 4 * elems) == 4 * nbytes
    assert quants.row_bytes(fmt, 4 * elems) == 4 * nbytes


@pytest.mark.parametrize("fmt", quants.PACKABLE)
@pytest.mark.parametrize("k", [32, 96, 544])
def test_native_and_numpy_packers_agree_byte_for_byte(fmt: str, k: int) -> None:
    rng = np.random.default_rng(k)
    x = awkward_rows(k, rng)
    ours = _native.quantize(x, fmt)
    theirs = quants.quantize(x, fmt)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert ours.shape == (
        (x.shape[0], quants.row_bytes(fmt, k)) if fmt in SIMPLE_BLOCKS else x.shape
    )
    np.testing.assert_array_equal(ours.view(np.uint8), theirs.view(np.uint8))


@pytest.mark.parametrize("fmt", ["BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
def test_packers_equal_gguf_reference_quantizers(fmt: str) -> None:
    rng = np.random.default_rng(1)
    x = awkward_rows(96, rng)
    ours = _native.quantize(x, fmt)
    ref = gguf_quants.quantize(x, GGMLQuantizationType[fmt])
    np.testing.assert_array_equal(ours.view(np.uint8).reshape(-1), ref.view(np.uint8).reshape(-1))


@pytest.mark.parametrize("fmt", quants.FORMATS)
@pytest.mark.parametrize("scalar", [False, True])
def test_dequantize_matches_gguf_reference(fmt: str, scalar: bool) -> None:
    rng = np.random.default_rng(7)
    k = 512 if fmt in KQUANTS else 96
    w = random_weights(fmt, 5, k, rng)
    with kernel_path(scalar):
        got = _native.dequantize(w, fmt, k)
    raw = w.view(np.uint8) if fmt not in ("F32", "F16") else w
    qtype = GGMLQuantizationType[fmt]
    want = np.asarray(gguf_quants.dequantize(raw, qtype), dtype=np.float32).reshape(5, k)
    assert got.shape == (5, k) and got.dtype == np.float32
    # Exact but for one rounding: the AVX2 path fuses Q4_1's / Q5_1's q*d + m into one FMA.
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * float(np.abs(want).max()))
    np.testing.assert_allclose(quants.dequantize(w, fmt, k), want, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("fmt", quants.PACKABLE)
def test_round_trip_error_is_within_half_a_step(fmt: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    back = _native.dequantize(_native.quantize(x, fmt), fmt, 256)
    err = np.abs(back - x).reshape(-1, 32)
    mag = np.abs(x.reshape(-1, 32))
    amax = mag.max(axis=1, keepdims=True)
    half = 2.0**-11  # relative rounding of a half-float scale
    # Explicit bound per format: half a step, a whole step where Q4_0 / Q5_0 clip the positive
    # end (the step is set by the largest magnitude mapping to -8 / -16), plus the rounded scale.
    bound = {
        "F32": np.zeros_like(mag),
        "F16": mag * half,
        "BF16": mag * 2.0**-8,
        "Q8_0": amax * (0.5 / 127 + 2 * half),
        "Q4_0": amax * (1 / 8 + 2 * half),
        "Q4_1": 2 * amax * (0.5 / 15 + 2 * half) + amax * half,
        "Q5_0": amax * (1 / 16 + 2 * half),
        "Q5_1": 2 * amax * (0.5 / 31 + 2 * half) + amax * half,
    }[fmt]
    assert np.all(err <= bound + 1e-30)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_dequantize_accepts_memory_mapped_style_views(fmt: str) -> None:
    rng = np.random.default_rng(5)
    k = 256
    w = random_weights(fmt, 3, k, rng)
    flat_bytes = np.frombuffer(w.tobytes(), dtype=np.uint8)  # read-only, like a GGUF mmap
    np.testing.assert_array_equal(
        _native.dequantize(flat_bytes, fmt, k), _native.dequantize(w, fmt, k)
    )


def test_bad_input_is_a_value_error_that_says_what_was_expected() -> None:
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(ValueError, match="unknown weight format 'Q3_K'"):
        _native.quantize(x, "Q3_K")
    with pytest.raises(ValueError, match="not produced here"):
        _native.quantize(np.zeros((1, 256), np.float32), "Q4_K")
    with pytest.raises(ValueError, match="multiple of the block size 32"):
        _native.quantize(np.zeros((2, 40), np.float32), "Q8_0")
    with pytest.raises(ValueError, match="float32"):
        _native.quantize(np.zeros((2, 64), np.float64), "Q8_0")
    with pytest.raises(ValueError, match="2-D"):
        _native.quantize(np.zeros(64, np.float32), "Q8_0")
    w = _native.quantize(x, "Q8_0")
    with pytest.raises(ValueError, match="must have dtype uint8"):
        _native.dequantize(w.view(np.int8), "Q8_0", 64)
    with pytest.raises(ValueError, match="whole number of Q8_0 rows"):
        _native.dequantize(w.reshape(-1)[:-1], "Q8_0", 64)
    with pytest.raises(ValueError, match="expected one Q8_0 row of k=32"):
        _native.dequantize(w, "Q8_0", 32)
    odd = np.zeros(w.nbytes + 1, np.uint8)[1:]
    with pytest.raises(ValueError, match="aligned to 2 bytes"):
        _native.dequantize(odd, "Q8_0", 64)
    with pytest.raises(ValueError, match="C-contiguous"):
        _native.dequantize(np.zeros((4, 4), np.float32).T, "F32", 4)
    with pytest.raises(ValueError, match="unknown weight format"):
        quants.quantize(x, "Q2_K")
