"""Matrix kernels for every weight format, on both kernel paths, against numpy in float64 on
the unpacked weights, with an explicit error bound.

The integer dot products (Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 and the k-quants: matrix-vector and
matrix-matrix alike, unless the float tiles are asked for with set_no_int_gemm) see the
activations rounded to 8-bit blocks (32 elements
for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, 256 for the k-quants, step amax/127): the reference rounds them
the same way.
Every other difference is float32 summation: |err| <= k * 2^-23 * sum|w x| per entry.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import _native, quants
from tests.quant_cases import (
    ALL_FORMATS,
    HAS_AVX512,
    HAS_VNNI,
    KQUANTS,
    kernel_path,
    random_weights,
    stream_read_checksum,
    valid_k,
)

FLOAT_FORMATS = ("F32", "F16", "BF16")
ACT_BLOCK = {
    "Q8_0": 32, "Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32,
    "Q4_K": 256, "Q5_K": 256, "Q6_K": 256,
}  # fmt: skip


def rounded_activations(x: np.ndarray, block: int) -> np.ndarray:
    """x as the integer kernels see it: per block, d = amax/127 and q = round-half-even(x/d)."""
    blocks = x.reshape(x.shape[0], -1, block).astype(np.float32)
    d = np.abs(blocks).max(axis=2, keepdims=True) / np.float32(127)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.rint(blocks * inv)
    return (q.astype(np.float64) * d).reshape(x.shape)


def reference(
    w: np.ndarray, fmt: str, k: int, x: np.ndarray, integer_path: bool
) -> tuple[np.ndarray, np.ndarray]:
    """y = x W^T in float64 on the unpacked weights, and the error bound of each entry."""
    wf = quants.dequantize(w, fmt, k).astype(np.float64)
    x2 = np.atleast_2d(x).astype(np.float64)
    if integer_path and fmt not in FLOAT_FORMATS:
        x2 = rounded_activations(x2, ACT_BLOCK[fmt])
    want = x2 @ wf.T
    bound = k * 2.0**-23 * (np.abs(x2) @ np.abs(wf).T) + 1e-6
    return want, bound


def activations(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, k)).astype(np.float32)


def check(got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> None:
    err = np.abs(got.astype(np.float64) - want)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), f"error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


# Odd sizes: lengths not multiples of 8 (float formats), single rows and blocks, row counts that
# leave partial 16-row tiles, lengths past one 256-element cache tile.
MATVEC_SHAPES = [(1, 1), (1, 7), (3, 33), (17, 100), (45, 1000), (130, 2080)]


@pytest.mark.parametrize("scalar", [False, True], ids=["avx2", "scalar"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("rows,k", MATVEC_SHAPES)
def test_matvec_matches_numpy(fmt: str, rows: int, k: int, scalar: bool) -> None:
    k = valid_k(fmt, k)
    rng = np.random.default_rng(rows * 7919 + k)
    w = random_weights(fmt, rows, k, rng)
    x = activations(1, k, rng)[0]
    with kernel_path(scalar):
        got = _native.matvec(w, fmt, x)
    assert got.shape == (rows,) and got.dtype == np.float32
    want, bound = reference(w, fmt, k, x, integer_path=True)
    check(got[None, :], want, bound)


MATMUL_SHAPES = [
    (1, 1, 1),
    (2, 5, 40),
    (3, 17, 64),
    (5, 16, 33),
    (7, 31, 300),
    (9, 20, 40),
    (13, 300, 544),
]


# "best" is the AVX-512 matrix-matrix kernel and the VNNI builds of the matrix-vector rows kernels
# where the CPU has them; "avx2" holds both to plain AVX2.
MATMUL_PATHS = ["best", "avx2", "scalar"] if HAS_AVX512 or HAS_VNNI else ["best", "scalar"]


@pytest.mark.parametrize("path", MATMUL_PATHS)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("n,rows,k", MATMUL_SHAPES)
def test_matmul_matches_numpy(fmt: str, n: int, rows: int, k: int, path: str) -> None:
    k = valid_k(fmt, k)
    rng = np.random.default_rng(n * 104729 + rows * 31 + k)
    w = random_weights(fmt, rows, k, rng)
    x = activations(n, k, rng)
    scalar = path == "scalar"
    with kernel_path(scalar, avx2_only=path == "avx2"):
        got = _native.matmul(w, fmt, x)
    assert got.shape == (n, rows) and got.dtype == np.float32
    # the quantized formats: decode's rows kernels up to MATMUL_DECODE_ROWS rows, the
    # integer GEMM past them
    want, bound = reference(w, fmt, k, x, integer_path=True)
    check(got, want, bound)


@pytest.mark.parametrize("path", [p for p in MATMUL_PATHS if p != "scalar"])
@pytest.mark.parametrize("fmt", ["F32", "Q8_0", "Q4_K"])
def test_large_matmul_crosses_every_tile_edge(fmt: str, path: str) -> None:
    # The float tiles over unpacked weights (the quantized formats reach them with the integer
    # kernels off): rows > the 512-row weight tile and not a multiple of 16 or 32, n not a
    # multiple of 6 or 12.
    n, rows, k = 29, 523, 1280
    rng = np.random.default_rng(11)
    w = random_weights(fmt, rows, k, rng)
    x = activations(n, k, rng)
    want, bound = reference(w, fmt, k, x, integer_path=False)
    _native.set_no_int_gemm(True)
    try:
        with kernel_path(False, avx2_only=path == "avx2"):
            check(_native.matmul(w, fmt, x), want, bound)
    finally:
        _native.set_no_int_gemm(False)


def test_rows_longer_than_a_k_tile_accumulate_across_tiles() -> None:
    # k past the 4096-element k tile: each output is the sum of two tiles' partial products
    n, rows, k = 13, 45, 4096 + 288
    rng = np.random.default_rng(12)
    w = random_weights("F32", rows, k, rng)
    x = activations(n, k, rng)
    want, bound = reference(w, "F32", k, x, integer_path=False)
    for path in [p for p in MATMUL_PATHS if p != "scalar"]:
        with kernel_path(False, avx2_only=path == "avx2"):
            check(_native.matmul(w, "F32", x), want, bound)


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", *KQUANTS])
def test_integer_dot_products_agree_between_paths(fmt: str) -> None:
    # Both paths quantize the activations identically and sum the same integers: they may
    # differ only by float32 rounding of the per-block scales.
    rows, k = 64, valid_k(fmt, 2048)
    rng = np.random.default_rng(2)
    w = random_weights(fmt, rows, k, rng)
    x = activations(1, k, rng)[0]
    with kernel_path(False):
        fast = _native.matvec(w, fmt, x)
    with kernel_path(True):
        slow = _native.matvec(w, fmt, x)
    scale = np.abs(quants.dequantize(w, fmt, k)) @ np.abs(x)
    assert np.all(np.abs(fast - slow) <= 1e-5 * scale)


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", *KQUANTS])
def test_a_rows_result_does_not_depend_on_its_neighbours(fmt: str) -> None:
    # The decode kernels take rows four at a time (the k-quants' prefetch into the rows after
    # them); a row must come out bit for bit the same whichever group it lands in (a slice, a
    # short last group, a thread's chunk), and the same from matvec as from a few-row matmul
    # (speculative verification relies on that).
    rows, k = 13, valid_k(fmt, 320)
    rng = np.random.default_rng(12)
    w = random_weights(fmt, rows, k, rng)
    x = activations(3, k, rng)
    full = _native.matvec(w, fmt, x[0])
    for start in range(rows):
        np.testing.assert_array_equal(_native.matvec(w[start:], fmt, x[0]), full[start:])
        np.testing.assert_array_equal(_native.matvec(w[start : start + 1], fmt, x[0]), full[start])
    batched = _native.matmul(w, fmt, x)
    for i in range(3):
        np.testing.assert_array_equal(batched[i], _native.matvec(w, fmt, x[i]))


VNNI_FORMATS = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", *KQUANTS]
VNNI_SHAPES = [(1, 32), (13, 96), (67, 2080)]


def vnni_and_avx2_results(fmt: str, rows: int, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """matvec and a 3-row matmul on the best kernels, then held to AVX2."""
    k = valid_k(fmt, k)
    rng = np.random.default_rng(rows * 7 + k)
    w = random_weights(fmt, rows, k, rng)
    x = activations(3, k, rng)
    with kernel_path(False):
        best = [_native.matvec(w, fmt, x[0]), _native.matmul(w, fmt, x)]
    with kernel_path(False, avx2_only=True):
        plain = [_native.matvec(w, fmt, x[0]), _native.matmul(w, fmt, x)]
    return best, plain


@pytest.mark.skipif(not HAS_VNNI, reason="the CPU has neither AVX-VNNI nor AVX-512 VNNI")
@pytest.mark.parametrize("fmt", VNNI_FORMATS)
@pytest.mark.parametrize("rows,k", VNNI_SHAPES)
def test_vnni_rows_agree_bit_for_bit_with_avx2(fmt: str, rows: int, k: int) -> None:
    # Both sum the same products exactly in int32 (vpdpbusd for vpmaddubsw and vpmaddwd,
    # vpdpwssd for vpmaddwd and vpaddd) and scale them in the same order: the results must be
    # identical, including a short last group of rows and a few-row matmul.
    best, plain = vnni_and_avx2_results(fmt, rows, k)
    for got, want in zip(best, plain, strict=True):
        np.testing.assert_array_equal(got, want)


CPU = _native.cpu_features()


@pytest.mark.skipif(
    not (CPU["avx_vnni"] and CPU["avx512vnni"] and HAS_AVX512),
    reason="needs a CPU with both AVX-VNNI and AVX-512 VNNI: with AVX-512 VNNI alone, the test "
    "above already runs that build",
)
@pytest.mark.parametrize("fmt", VNNI_FORMATS)
def test_avx512_vnni_build_agrees_bit_for_bit_with_avx2(fmt: str) -> None:
    # Where AVX-VNNI is there it goes first: the AVX-512 VNNI build (the one Zen 4 and Ice Lake
    # get) runs with AVX-VNNI turned off.
    _native.set_no_avx_vnni(True)
    try:
        assert _native.cpu_features()["matvec_kernels"] == "avx512-vnni"
        for rows, k in VNNI_SHAPES:
            best, plain = vnni_and_avx2_results(fmt, rows, k)
            for got, want in zip(best, plain, strict=True):
                np.testing.assert_array_equal(got, want)
    finally:
        _native.set_no_avx_vnni(False)
    assert _native.cpu_features()["matvec_kernels"] == "avx-vnni"


@pytest.mark.parametrize("scalar", [False, True], ids=["avx2", "scalar"])
def test_q8_0_weights_may_hold_minus_128(scalar: bool) -> None:
    # ggml's quantizer never writes -128, but a file may: the 8-bit sign trick must not
    # overflow on it.
    rows, k = 6, 96
    rng = np.random.default_rng(13)
    w = random_weights("Q8_0", rows, k, rng).copy()
    qs = w.reshape(rows, k // 32, 34)[:, :, 2:].view(np.int8)
    qs[:, :, ::3] = -128
    x = activations(1, k, rng)[0]
    with kernel_path(scalar):
        got = _native.matvec(w, "Q8_0", x)
    want, bound = reference(w, "Q8_0", k, x, integer_path=True)
    check(got[None, :], want, bound)


@pytest.mark.parametrize("fmt", ["F32", "Q4_0", "Q6_K"])
def test_results_do_not_depend_on_the_thread_count(fmt: str) -> None:
    rng = np.random.default_rng(4)
    k = valid_k(fmt, 512)
    w = random_weights(fmt, 700, k, rng)
    x = activations(9, k, rng)
    _native.set_num_threads(0)  # the default, whatever an earlier test (a model load) left
    before = _native.num_threads()
    try:
        _native.set_num_threads(1)
        one = (_native.matvec(w, fmt, x[0]), _native.matmul(w, fmt, x))
        _native.set_num_threads(3)
        three = (_native.matvec(w, fmt, x[0]), _native.matmul(w, fmt, x))
    finally:
        _native.set_num_threads(0)
    assert _native.num_threads() == before
    np.testing.assert_array_equal(one[0], three[0])
    np.testing.assert_array_equal(one[1], three[1])


# Matrices that read the same activations: a k-quant beside a 32-block format beside a float
# one (three activation formats quantized once each), row counts that leave short 4-row groups
# and chunks that cross from one matrix into the next.
# Ten: more than one job takes (kMaxSharedInput, 8), so the last two go in a second.
SHARED_FORMATS = ["Q4_K", "Q6_K", "Q8_0", "F32", "F16", "Q4_0", "Q4_1", "BF16", "Q5_0", "Q5_1"]
SHARED_ROWS = [5, 33, 1, 7, 130, 64, 3, 9, 12, 2]


@pytest.mark.parametrize("scalar", [False, True], ids=["avx2", "scalar"])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 3, 9])
def test_matmul_shared_gives_each_row_what_matvec_gives(n: int, threads: int, scalar: bool) -> None:
    # n = 9 too: past MATMUL_DECODE_ROWS, where matmul switches to unpacking the weights,
    # the shared product keeps to the integer path (a speculative draft is verified exactly as
    # decoding computes each token).
    rng = np.random.default_rng(11)
    k = 512
    ws = [random_weights(f, r, k, rng) for f, r in zip(SHARED_FORMATS, SHARED_ROWS, strict=True)]
    x = activations(n, k, rng)
    _native.set_num_threads(threads)
    try:
        with kernel_path(scalar):
            ys = _native.matmul_shared(ws, SHARED_FORMATS, x)
            one = _native.matmul_shared(ws, SHARED_FORMATS, x[0])
            want = [
                np.stack([_native.matvec(w, f, row) for row in x])
                for w, f in zip(ws, SHARED_FORMATS, strict=True)
            ]
    finally:
        _native.set_num_threads(0)
    assert [y.shape for y in ys] == [(n, r) for r in SHARED_ROWS]
    assert [y.shape for y in one] == [(r,) for r in SHARED_ROWS]
    for fmt, got, first, expected in zip(SHARED_FORMATS, ys, one, want, strict=True):
        np.testing.assert_array_equal(got, expected, err_msg=fmt)
        np.testing.assert_array_equal(first, expected[0], err_msg=fmt)


def test_matmul_shared_checks_its_arguments() -> None:
    rng = np.random.default_rng(12)
    w = random_weights("Q8_0", 10, 64, rng)
    x = activations(1, 64, rng)[0]
    with pytest.raises(ValueError, match="one format per weight matrix, got 2 matrices and 1"):
        _native.matmul_shared([w, w], ["Q8_0"], x)
    with pytest.raises(ValueError, match="at least one weight matrix"):
        _native.matmul_shared([], [], x)
    with pytest.raises(ValueError, match="Q4_K: row length k=64 must be a positive multiple"):
        _native.matmul_shared([w, w], ["Q8_0", "Q4_K"], x)
    with pytest.raises(ValueError, match="unknown weight format 'Q3_K'"):
        _native.matmul_shared([w], ["Q3_K"], x)
    with pytest.raises(ValueError, match=r"expected a float32 array \[k\] or \[n, k\]"):
        _native.matmul_shared([w], ["Q8_0"], x[None, None])


@pytest.mark.parametrize("fmt", ["Q8_0", "Q4_K"])
def test_the_scalar_path_quantizes_many_activation_rows_on_every_thread(fmt: str) -> None:
    # From 32 activation rows on, the rows are quantized by the pool's threads too, into the
    # calling thread's buffer (a CPU without AVX2 prefills this way).
    rng = np.random.default_rng(13)
    k = valid_k(fmt, 512)
    w = random_weights(fmt, 40, k, rng)
    x = activations(96, k, rng)
    want, bound = reference(w, fmt, k, x, integer_path=True)
    try:
        with kernel_path(True):
            _native.set_num_threads(1)
            one = _native.matmul(w, fmt, x)
            _native.set_num_threads(3)
            # (repeated: the first job of a new pool may run whole on the caller, before the
            # workers have started)
            three = [_native.matmul(w, fmt, x) for _ in range(5)]
    finally:
        _native.set_num_threads(0)
    check(one, want, bound)
    for got in three:
        np.testing.assert_array_equal(got, one)


def test_out_is_written_in_place_and_checked() -> None:
    rng = np.random.default_rng(6)
    w = random_weights("Q8_0", 10, 64, rng)
    x = activations(3, 64, rng)
    out = np.empty((3, 10), np.float32)
    assert _native.matmul(w, "Q8_0", x, out=out) is out
    np.testing.assert_array_equal(out, _native.matmul(w, "Q8_0", x))
    vec_out = np.empty(10, np.float32)
    assert _native.matvec(w, "Q8_0", x[0], out=vec_out) is vec_out
    with pytest.raises(ValueError, match=r"out: expected shape \(3, 10\)"):
        _native.matmul(w, "Q8_0", x, out=np.empty((10, 3), np.float32))
    with pytest.raises(ValueError, match="out: expected dtype float32"):
        _native.matvec(w, "Q8_0", x[0], out=np.empty(10, np.float64))
    with pytest.raises(ValueError, match="1-D"):
        _native.matvec(w, "Q8_0", x)
    unaligned = np.frombuffer(np.zeros(65 * 4, np.uint8).tobytes(), np.float32, 64, offset=1)
    with pytest.raises(ValueError, match="aligned to 4 bytes"):
        _native.matvec(w, "Q8_0", unaligned)
    with pytest.raises(ValueError, match="whole number of Q8_0 rows of k=96"):
        _native.matvec(w.reshape(-1), "Q8_0", np.zeros(96, np.float32))


@pytest.mark.parametrize("scalar", [False, True], ids=["avx2", "scalar"])
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_get_rows_gathers_unpacked_rows(fmt: str, scalar: bool) -> None:
    rng = np.random.default_rng(8)
    k = valid_k(fmt, 96)
    w = random_weights(fmt, 37, k, rng)
    ids = np.array([0, 36, 5, 5, 17], np.int32)
    with kernel_path(scalar):
        got = _native.get_rows(w, fmt, ids, k)
    want = quants.dequantize(w, fmt, k)[ids]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * float(np.abs(want).max()))
    with pytest.raises(ValueError, match=r"row 37 at position 1 is outside 0\.\.36"):
        _native.get_rows(w, fmt, np.array([1, 37], np.int32), k)
    with pytest.raises(ValueError, match="int32"):
        _native.get_rows(w, fmt, ids.astype(np.int64), k)


@pytest.mark.parametrize("scalar", [False, True], ids=["avx2", "scalar"])
@pytest.mark.parametrize("n_bytes", [0, 7, 4096, 100_003])
def test_stream_read_reads_every_byte(n_bytes: int, scalar: bool) -> None:
    data = np.random.default_rng(n_bytes).integers(0, 256, n_bytes, dtype=np.uint8)
    with kernel_path(scalar):
        assert _native.stream_read(data) == stream_read_checksum(data)


def test_kernels_release_the_gil() -> None:
    # Two Python threads multiplying at once must both finish with the right answer.
    rng = np.random.default_rng(9)
    w = random_weights("Q4_0", 256, 1024, rng)
    x = activations(8, 1024, rng)
    want = _native.matmul(w, "Q4_0", x)
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(20):
            results.append(_native.matmul(w, "Q4_0", x))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_arrays_with_equal_but_distinct_dtype_objects_are_accepted() -> None:
    # gguf's reader hands out memory maps whose dtypes are new objects (newbyteorder views),
    # equal to numpy's canonical ones but not the same object.
    rng = np.random.default_rng(12)
    w = random_weights("Q8_0", 8, 64, rng)
    x = activations(1, 64, rng)[0]
    w_view = w.view(w.dtype.newbyteorder("<"))
    x_view = x.view(x.dtype.newbyteorder("<"))
    assert w_view.dtype is not np.dtype(np.uint8) and x_view.dtype is not np.dtype(np.float32)
    np.testing.assert_array_equal(
        _native.matvec(w_view, "Q8_0", x_view), _native.matvec(w, "Q8_0", x)
    )
    assert _native.dot_f32(x_view, x_view) == _native.dot_f32(x, x)
