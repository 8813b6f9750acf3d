"""Attention decode, prefill (causal), cross-attention and windowed 2-D attention against
torch's scaled_dot_product_attention in float64, on the AVX-512, AVX2 and scalar paths, with float32
and float16 KV caches, MHA / GQA / MQA, and odd sizes."""

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from engine import _native

torch = pytest.importorskip("torch")
F = torch.nn.functional

F32 = npt.NDArray[np.float32]

# float32 accumulation over a few hundred keys: well inside this bound (values are ~N(0, 1)).
ATOL, RTOL = 2e-5, 2e-5


@pytest.fixture(params=["simd", "avx2", "scalar"])
def path(request: pytest.FixtureRequest) -> Iterator[bool]:
    """The best SIMD build (AVX-512 where the CPU has it), AVX2, and the scalar reference."""
    _native.set_force_scalar(request.param == "scalar")
    _native.set_force_avx2(request.param == "avx2")
    yield request.param == "scalar"
    _native.set_force_scalar(False)
    _native.set_force_avx2(False)


def randn(*shape: int, seed: int) -> F32:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def sdpa(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """q[n, hq, hd], k/v[T, hkv, hd] -> [n, hq, hd], in float64, GQA by repeating kv heads."""
    group = q.shape[1] // k.shape[1]
    qt = torch.from_numpy(q.astype(np.float64)).transpose(0, 1)
    kt = torch.from_numpy(k.astype(np.float64)).transpose(0, 1).repeat_interleave(group, 0)
    vt = torch.from_numpy(v.astype(np.float64)).transpose(0, 1).repeat_interleave(group, 0)
    m = None if mask is None else torch.from_numpy(mask)
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=m, scale=scale)
    return out.transpose(0, 1).numpy()


def check(got: F32, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


HEADS = [
    (1, 1, 8), (4, 4, 64), (9, 3, 64), (8, 1, 32), (6, 2, 20), (3, 3, 7), (2, 1, 128), (12, 2, 128),
    (7, 1, 16),
]


@pytest.mark.parametrize(("hq", "hkv", "hd"), HEADS)
@pytest.mark.parametrize("n_ctx", [1, 5, 64, 65, 700])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_decode(path: bool, hq: int, hkv: int, hd: int, n_ctx: int, dtype: type) -> None:
    t_max = n_ctx + 3  # rows past n_ctx hold garbage that must not be read
    q = randn(hq, hd, seed=0)
    k = randn(t_max, hkv, hd, seed=1).astype(dtype)
    v = randn(t_max, hkv, hd, seed=2).astype(dtype)
    k[n_ctx:] = 1e4
    v[n_ctx:] = np.nan
    scale = hd**-0.5
    got = _native.attention_decode(q, k, v, n_ctx, scale)
    check(got, sdpa(q[None], k[:n_ctx], v[:n_ctx], scale)[0])


def test_decode_long_context_is_split_and_merged(path: bool) -> None:
    # Long enough that the keys are split over threads and the partial softmaxes merged; the
    # early keys score much higher, so a merge that forgets to rescale would be far off.
    q, k, v = randn(9, 64, seed=0), randn(5000, 3, 64, seed=1), randn(5000, 3, 64, seed=2)
    k[:100] *= 4.0
    got = _native.attention_decode(q, k, v, 4097, 0.125)
    check(got, sdpa(q[None], k[:4097], v[:4097], 0.125)[0])


# Long contexts split into many key ranges: a tile then takes every KV head of its range
# (whole cache rows) when a head has at most 7 queries, else one head; GQA 3 and 7, MHA, an
# 8-query group (one head per tile), odd head sizes, both cache types and thread counts.
@pytest.mark.parametrize(("hq", "hkv", "hd"), [(9, 3, 64), (14, 2, 40), (4, 4, 24), (16, 2, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("threads", [1, 3])
def test_decode_long_context_over_every_head(
    path: bool, hq: int, hkv: int, hd: int, dtype: type, threads: int
) -> None:
    q = randn(hq, hd, seed=3)
    k, v = randn(3100, hkv, hd, seed=4).astype(dtype), randn(3100, hkv, hd, seed=5).astype(dtype)
    k[:50] *= 3.0
    _native.set_num_threads(threads)
    try:
        got = _native.attention_decode(q, k, v, 3001, hd**-0.5)
    finally:
        _native.set_num_threads(0)
    check(got, sdpa(q[None], k[:3001], v[:3001], hd**-0.5)[0])


def causal_mask(n: int, t: int, q_offset: int) -> np.ndarray:
    return np.arange(t)[None, :] <= (q_offset + np.arange(n))[:, None]


@pytest.mark.parametrize(("hq", "hkv", "hd"), HEADS)
@pytest.mark.parametrize(("n", "q_offset"), [(1, 0), (7, 0), (70, 0), (33, 40), (1, 99)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_prefill_causal(
    path: bool, hq: int, hkv: int, hd: int, n: int, q_offset: int, dtype: type
) -> None:
    t = q_offset + n
    q = randn(n, hq, hd, seed=3)
    k, v = randn(t, hkv, hd, seed=4).astype(dtype), randn(t, hkv, hd, seed=5).astype(dtype)
    got = _native.attention_prefill(q, k, v, q_offset, True, hd**-0.5)
    check(got, sdpa(q, k, v, hd**-0.5, causal_mask(n, t, q_offset)))


def test_prefill_of_one_row_equals_decode(path: bool) -> None:
    q, k, v = randn(1, 9, 64, seed=0), randn(50, 3, 64, seed=1), randn(50, 3, 64, seed=2)
    pre = _native.attention_prefill(q, k, v, 49, True, 0.125)[0]
    dec = _native.attention_decode(q[0], k, v, 50, 0.125)
    np.testing.assert_allclose(pre, dec, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("hq", "hkv", "hd"), HEADS)
@pytest.mark.parametrize(("n", "t"), [(1, 1), (5, 49), (100, 13), (64, 200)])
def test_cross_attention(path: bool, hq: int, hkv: int, hd: int, n: int, t: int) -> None:
    q = randn(n, hq, hd, seed=6)
    k, v = randn(t, hkv, hd, seed=7), randn(t, hkv, hd, seed=8)
    got = _native.attention_prefill(q, k, v, 0, False, 0.3)
    check(got, sdpa(q, k, v, 0.3))


def window_reference(q: F32, k: F32, v: F32, window: int, scale: float) -> np.ndarray:
    h, w = q.shape[:2]
    out = np.empty(q.shape, np.float64)
    for y0 in range(0, h, window):
        for x0 in range(0, w, window):
            tile = (slice(y0, y0 + window), slice(x0, x0 + window))
            qt, kt, vt = (a[tile] for a in (q, k, v))
            th, tw = qt.shape[:2]
            flat = [a.reshape(th * tw, *a.shape[2:]) for a in (qt, kt, vt)]
            out[tile] = sdpa(*flat, scale).reshape(th, tw, *q.shape[2:])
    return out


@pytest.mark.parametrize(
    ("h", "w", "heads", "hd", "window"),
    [
        (1, 1, 1, 8, 7),
        (7, 7, 2, 16, 7),
        (9, 13, 3, 20, 4),
        (14, 10, 1, 64, 7),
        (5, 6, 2, 8, 1),
        (16, 16, 4, 32, 8),
        (20, 18, 2, 16, 16),  # 256-token windows: several query chunks; thin edge windows
    ],
)
def test_window_attention_2d(path: bool, h: int, w: int, heads: int, hd: int, window: int) -> None:
    q, k, v = (randn(h, w, heads, hd, seed=s) for s in (9, 10, 11))
    got = _native.window_attention_2d(q, k, v, window, hd**-0.5)
    check(got, window_reference(q, k, v, window, hd**-0.5))


def test_out_is_written_in_place(path: bool) -> None:
    q, k, v = randn(4, 16, seed=0), randn(10, 2, 16, seed=1), randn(10, 2, 16, seed=2)
    out = np.empty((4, 16), np.float32)
    assert _native.attention_decode(q, k, v, 10, 0.25, out=out) is out
    check(out, sdpa(q[None], k, v, 0.25)[0])


def test_bad_input_says_what_was_expected() -> None:
    q, k = randn(4, 16, seed=0), randn(10, 2, 16, seed=1)
    with pytest.raises(ValueError, match="n_ctx: expected 1 <= n_ctx <= 10"):
        _native.attention_decode(q, k, k, 11, 0.25)
    with pytest.raises(ValueError, match="n_ctx"):
        _native.attention_decode(q, k, k, 0, 0.25)
    with pytest.raises(ValueError, match="divides the 4 query heads"):
        _native.attention_decode(q, randn(10, 3, 16, seed=1), randn(10, 3, 16, seed=1), 5, 0.25)
    with pytest.raises(ValueError, match="head_dim 16"):
        _native.attention_decode(q, randn(10, 2, 8, seed=1), randn(10, 2, 8, seed=1), 5, 0.25)
    with pytest.raises(ValueError, match="dtype and shape of k"):
        _native.attention_decode(q, k, k.astype(np.float16), 5, 0.25)
    with pytest.raises(ValueError, match="float32 or float16"):
        _native.attention_decode(q, k.astype(np.float64), k, 5, 0.25)
    with pytest.raises(ValueError, match="3-D"):
        _native.attention_decode(q, k[0], k[0], 1, 0.25)
    with pytest.raises(ValueError, match="q_offset"):
        _native.attention_prefill(randn(3, 4, 16, seed=0), k, k, 8, True, 0.25)
    with pytest.raises(ValueError, match="window"):
        x = randn(2, 2, 1, 4, seed=0)
        _native.window_attention_2d(x, x, x, 0, 0.5)
    with pytest.raises(ValueError, match=r"k: expected shape \(2, 2, 1, 4\)"):
        _native.window_attention_2d(x, randn(2, 3, 1, 4, seed=0), x, 2, 0.5)


@pytest.mark.parametrize("threads", [1, 3])
def test_results_hold_for_any_thread_count(threads: int) -> None:
    # 1 thread: no key splits; 3 threads on this machine: more items than cores, uneven splits.
    q, k, v = randn(9, 64, seed=0), randn(3000, 3, 64, seed=1), randn(3000, 3, 64, seed=2)
    qp = randn(100, 9, 64, seed=3)
    before = _native.num_threads()
    _native.set_num_threads(threads)
    try:
        dec = _native.attention_decode(q, k, v, 2999, 0.125)
        pre = _native.attention_prefill(qp, k[:100], v[:100], 0, True, 0.125)
    finally:
        _native.set_num_threads(before)
    check(dec, sdpa(q[None], k[:2999], v[:2999], 0.125)[0])
    check(pre, sdpa(qp, k[:100], v[:100], 0.125, causal_mask(100, 100, 0)))


def test_large_scores_do_not_overflow(path: bool) -> None:
    # Scores of a few hundred: e^score overflows float32 (e^88 is the largest), so only the
    # running max keeps the exponents <= 0. float32 rounding of such scores (~1e-5 absolute)
    # moves the weights by about as much, hence the looser bound.
    q = randn(9, 64, seed=0) * 12
    k, v = randn(300, 3, 64, seed=1) * 12, randn(300, 3, 64, seed=2)
    got = _native.attention_decode(q, k, v, 300, 0.125)
    np.testing.assert_allclose(got, sdpa(q[None], k, v, 0.125)[0], rtol=1e-4, atol=1e-4)
    qp = randn(40, 9, 64, seed=3) * 12
    got = _native.attention_prefill(qp, k[:40], v[:40], 0, True, 0.125)
    want = sdpa(qp, k[:40], v[:40], 0.125, causal_mask(40, 40, 0))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
