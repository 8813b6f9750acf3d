"""The integer matrix-matrix product (prefill: 8 activation rows or more against quantized
weights) on every kernel build this CPU can run (scalar, AVX2, AVX-VNNI, AVX-512 VNNI, AMX), against
numpy in float64 on the unpacked weights and the activations rounded as the kernels round them
(test_matmul.rounded_activations), with test_matmul's error bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from engine import _native, quants
from tests.quant_cases import random_weights, valid_k
from tests.test_matmul import activations, check, reference

INT_FORMATS = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]
CPU = _native.cpu_features()


def _available_builds() -> list[str]:
    builds = ["scalar"]
    if CPU["avx2"] and CPU["fma"] and CPU["f16c"]:
        builds.append("avx2")
    if CPU["avx_vnni"]:
        builds.append("avx-vnni")
    if CPU["avx512vnni"] and CPU["kernels"] == "avx512":
        builds.append("avx512-vnni")
        if CPU["amx"]:
            builds.append("amx")
    return builds


BUILDS = _available_builds()


@contextlib.contextmanager
def int_gemm_build(build: str) -> Iterator[None]:
    """Runs the body on one build of the integer kernels, checked by name."""
    _native.set_force_scalar(build == "scalar")
    _native.set_force_avx2(build == "avx2")
    _native.set_no_avx512_vnni(build == "avx-vnni")
    _native.set_no_amx(build != "amx")
    try:
        assert _native.cpu_features()["int_gemm_kernels"] == build
        yield
    finally:
        _native.set_force_scalar(False)
        _native.set_force_avx2(False)
        _native.set_no_avx512_vnni(False)
        _native.set_no_amx(False)


# n from the first integer-GEMM row count (8) up, not multiples of the 4-row steps; rows leaving
# short 8- and 16-row panels; k past one L1 stretch of a panel (1,216 elements for the 32-element
# formats on 16-row panels, 1,024 for the k-quants), so results accumulate across stretches.
# The AMX build takes the tiles from 16 rows (Q8_0, Q5_K), 32 (Q4_K) or 128 (Q6_K): 150 rows
# are four 32-row steps, one of 16 and 6 among zero rows, and 2,304 elements two stretches of
# its Q4_K and Q6_K packing (8 and 6 super-blocks). The kernels take panels outside where all
# the activations' bytes fit in L2 and stretches outside where they do not: every shape above
# fits, and 700 rows of 3,072 (2.4-2.7 MB quantized, past the L2 of any CPU here) do not.
SHAPES = [
    (8, 1, 32),
    (9, 7, 64),
    (13, 17, 300),
    (11, 31, 1300),
    (29, 45, 2600),
    (40, 18, 768),
    (150, 21, 2304),
    (700, 40, 3072),
]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("fmt", INT_FORMATS)
@pytest.mark.parametrize("n,rows,k", SHAPES)
def test_integer_matmul_matches_numpy(fmt: str, n: int, rows: int, k: int, build: str) -> None:
    k = valid_k(fmt, k)
    rng = np.random.default_rng(n * 1009 + rows * 31 + k)
    w = random_weights(fmt, rows, k, rng)
    x = activations(n, k, rng)
    with int_gemm_build(build):
        got = _native.matmul(w, fmt, x)
    assert got.shape == (n, rows) and got.dtype == np.float32
    want, bound = reference(w, fmt, k, x, integer_path=True)
    check(got, want, bound)


@pytest.mark.parametrize("fmt", INT_FORMATS)
def test_every_build_sums_the_same_integers(fmt: str) -> None:
    # All builds quantize the activations alike and sum the same products exactly; they differ
    # only in the float32 order of the per-block scale terms.
    n, rows, k = 21, 40, valid_k(fmt, 1536)
    rng = np.random.default_rng(5)
    w = random_weights(fmt, rows, k, rng)
    x = activations(n, k, rng)
    results = {}
    for build in BUILDS:
        with int_gemm_build(build):
            results[build] = _native.matmul(w, fmt, x)
    scale = np.abs(x) @ np.abs(quants.dequantize(w, fmt, k)).T
    for build, got in results.items():
        assert np.all(np.abs(got - results["scalar"]) <= 1e-5 * scale), build


@pytest.mark.parametrize("fmt", ["Q4_K", "Q5_K", "Q6_K"])
def test_tiles_take_the_extreme_k_quant_values(fmt: str) -> None:
    # The AMX build writes each sub-block scale times each value as parts that must stay signed
    # bytes: Q4_K's scale 63 with q = 15, and every Q6_K scale (-128 to 127); Q5_K, on its
    # generic tiles, has the largest products (63 and 31) of the formats with mins
    # with q = 0 (v = -32) and q = 63 (v = 31) are the largest products. Every build must sum
    # the same integers.
    n, rows, k = 130, 20, valid_k(fmt, 512)
    rng = np.random.default_rng(9)
    w = random_weights(fmt, rows, k, rng)
    blocks = w.reshape(rows * k // 256, -1)
    half = len(blocks) // 2
    if fmt in ("Q4_K", "Q5_K"):
        blocks[:half, 4:16] = 0xFF  # every 6-bit scale and min 63, with q = 15 (Q5_K: 31)
        blocks[:half, 16:] = 0xFF
    else:
        blocks[:half, :192] = 0x00  # ql, qh: q = 0, v = -32
        blocks[half:, :192] = 0xFF  # q = 63, v = 31
        every = np.arange(blocks.shape[0] * 16, dtype=np.int64).reshape(-1, 16)
        blocks[:, 192:208] = (every * 7 % 256).astype(np.uint8)  # each signed byte, q = 0 and 63
    x = activations(n, k, rng)
    results = {}
    for build in BUILDS:
        with int_gemm_build(build):
            results[build] = _native.matmul(w, fmt, x)
    want, bound = reference(w, fmt, k, x, integer_path=True)
    scale = np.abs(x) @ np.abs(quants.dequantize(w, fmt, k)).T
    for build, got in results.items():
        check(got, want, bound)
        assert np.all(np.abs(got - results["scalar"]) <= 1e-5 * scale), build


@pytest.mark.parametrize("build", BUILDS)
def test_q8_0_weights_may_hold_minus_128(build: str) -> None:
    # -128 is the one 8-bit value whose sign cannot be moved (AVX2) and that takes the whole
    # unsigned range once shifted (VNNI).
    n, rows, k = 9, 10, 96
    rng = np.random.default_rng(3)
    w = random_weights("Q8_0", rows, k, rng)
    blocks = w.reshape(rows, k // 32, 34)
    blocks[:, :, 2:] = np.where(rng.random(blocks[:, :, 2:].shape) < 0.3, 128, blocks[:, :, 2:])
    x = activations(n, k, rng)
    with int_gemm_build(build):
        got = _native.matmul(w, "Q8_0", x)
    want, bound = reference(w, "Q8_0", k, x, integer_path=True)
    check(got, want, bound)


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_K"])
def test_turning_the_integer_kernels_off_takes_the_float_path(fmt: str) -> None:
    n, rows, k = 12, 24, 512
    rng = np.random.default_rng(4)
    w = random_weights(fmt, rows, k, rng)
    x = activations(n, k, rng)
    _native.set_no_int_gemm(True)
    try:
        assert _native.cpu_features()["int_gemm_kernels"] == "off"
        got = _native.matmul(w, fmt, x)
    finally:
        _native.set_no_int_gemm(False)
    want, bound = reference(w, fmt, k, x, integer_path=False)
    check(got, want, bound)
    # and the integer path is not within the float bound (it sees rounded activations)
    assert not np.all(np.abs(_native.matmul(w, fmt, x) - want) <= bound)


def test_float_weights_keep_the_float_path() -> None:
    n, rows, k = 10, 9, 64
    rng = np.random.default_rng(6)
    for fmt in ("F32", "F16", "BF16"):
        w = random_weights(fmt, rows, k, rng)
        x = activations(n, k, rng)
        want, bound = reference(w, fmt, k, x, integer_path=False)
        check(_native.matmul(w, fmt, x), want, bound)


@pytest.mark.parametrize("fmt", ["Q4_0", "Q6_K"])
def test_results_do_not_depend_on_the_thread_count(fmt: str) -> None:
    n, rows, k = 17, 100, valid_k(fmt, 768)
    rng = np.random.default_rng(8)
    w = random_weights(fmt, rows, k, rng)
    x = activations(n, k, rng)
    before = _native.num_threads()
    try:
        _native.set_num_threads(1)
        one = _native.matmul(w, fmt, x)
        _native.set_num_threads(2)
        two = _native.matmul(w, fmt, x)
    finally:
        _native.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


# matmul_group: a layer's matrices that read the same activations, in one call. Formats mixed
# as Q4_K_M files mix them (Q4_K beside Q6_K, both on the k-quant activations), with a
# 32-element format on the other activation format and a float one that keeps its own path;
# n on both sides of the AMX build's Q4_K (32) and Q6_K (128) tile thresholds. Q6_K comes first:
# at n = 40 its product prepares nothing while Q4_K's needs the prepared activations.
GROUP_FORMATS = ["Q6_K", "Q4_K", "Q4_K", "Q8_0", "F16"]
GROUP_ROWS = [48, 100, 16, 40, 24]


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("n", [3, 9, 40, 150])
def test_matmul_group_gives_each_matrix_what_matmul_gives(build: str, n: int) -> None:
    rng = np.random.default_rng(21)
    k = 768
    ws = [random_weights(f, r, k, rng) for f, r in zip(GROUP_FORMATS, GROUP_ROWS, strict=True)]
    x = activations(n, k, rng)
    outs = [np.full((n, r), np.nan, np.float32) for r in GROUP_ROWS]
    with int_gemm_build(build):
        got = _native.matmul_group(ws, GROUP_FORMATS, x, outs)
        want = [_native.matmul(w, f, x) for w, f in zip(ws, GROUP_FORMATS, strict=True)]
    for fmt, out, y, expected in zip(GROUP_FORMATS, outs, got, want, strict=True):
        assert y is out or np.shares_memory(y, out)  # written where the caller asked
        np.testing.assert_array_equal(out, expected, err_msg=fmt)


def test_matmul_group_does_not_depend_on_the_thread_count() -> None:
    rng = np.random.default_rng(22)
    k = 512
    ws = [random_weights("Q4_K", 200, k, rng), random_weights("Q6_K", 36, k, rng)]
    x = activations(160, k, rng)
    before = _native.num_threads()
    try:
        _native.set_num_threads(1)
        one = _native.matmul_group(ws, ["Q4_K", "Q6_K"], x, [None, None])
        _native.set_num_threads(2)
        two = _native.matmul_group(ws, ["Q4_K", "Q6_K"], x, [None, None])
    finally:
        _native.set_num_threads(before)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_matmul_group_checks_its_arguments() -> None:
    rng = np.random.default_rng(23)
    w = random_weights("Q8_0", 10, 64, rng)
    x = activations(12, 64, rng)
    with pytest.raises(ValueError, match="one format and one output per weight matrix, got 2"):
        _native.matmul_group([w, w], ["Q8_0"], x, [None, None])
    with pytest.raises(ValueError, match="expected 1 to 8 weight matrices, got 0"):
        _native.matmul_group([], [], x, [])
    with pytest.raises(ValueError, match=r"out: expected shape \(12, 10\)"):
        _native.matmul_group([w], ["Q8_0"], x, [np.zeros((12, 9), np.float32)])
    with pytest.raises(ValueError, match="x: expected a 2-D float32 array"):
        _native.matmul_group([w], ["Q8_0"], x[0], [None])
