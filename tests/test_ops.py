"""Norms, activations, softmax, residual add and RoPE against numpy (float64) references,
on the AVX2 and the scalar path, at odd sizes, with explicit error bounds."""

from collections.abc import Iterator
from math import erf

import numpy as np
import numpy.typing as npt
import pytest

from engine import _native

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# Lengths that are not multiples of 8 or 32, length 1, and one large enough to be threaded.
SIZES = [1, 7, 8, 33, 100, 4099]
ROW_SHAPES = [(1, 1), (1, 7), (3, 33), (5, 64), (2, 576), (64, 1027)]


@pytest.fixture(params=[False, True], ids=["avx2", "scalar"])
def path(request: pytest.FixtureRequest) -> Iterator[bool]:
    _native.set_force_scalar(request.param)
    yield request.param
    _native.set_force_scalar(False)


def randn(*shape: int, seed: int = 0, scale: float = 1.0) -> F32:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def assert_close(got: F32, want: F64, rtol: float, atol: float) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    err = np.abs(got.astype(np.float64) - want)
    bound = atol + rtol * np.abs(want)
    worst = int(np.argmax(err - bound))
    assert np.all(err <= bound), f"worst at {worst}: got {got.flat[worst]}, want {want.flat[worst]}"


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_rms_norm(path: bool, shape: tuple[int, int]) -> None:
    x = randn(*shape, scale=3.0)
    w = randn(shape[1], seed=1)
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + 1e-5) * w
    assert_close(_native.rms_norm(x, w, 1e-5), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_layer_norm(path: bool, shape: tuple[int, int]) -> None:
    x = randn(*shape, scale=2.0) + 50.0  # a large mean: a one-pass variance would fail here
    w, b = randn(shape[1], seed=1), randn(shape[1], seed=2)
    x64 = x.astype(np.float64)
    norm = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-6)
    assert_close(_native.layer_norm(x, w, b, 1e-6), norm * w + b, rtol=1e-4, atol=1e-4)
    assert_close(_native.layer_norm(x, None, None, 1e-6), norm, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_softmax(path: bool, shape: tuple[int, int]) -> None:
    x = randn(*shape, scale=10.0)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    assert_close(_native.softmax(x), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_softmax_handles_minus_infinity_and_higher_rank(path: bool) -> None:
    x = randn(2, 3, 11)
    x[..., 4:] = -np.inf  # masked entries get exactly zero weight
    got = _native.softmax(x)
    assert np.all(got[..., 4:] == 0.0)
    e = np.exp(x[..., :4].astype(np.float64))
    assert_close(got[..., :4].copy(), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7)


def silu64(x: F32) -> F64:
    x64 = x.astype(np.float64)
    return x64 / (1.0 + np.exp(-x64))


@pytest.mark.parametrize("n", SIZES)
def test_silu(path: bool, n: int) -> None:
    x = randn(n, scale=6.0)
    assert_close(_native.silu(x), silu64(x), rtol=1e-6, atol=1e-7)


def test_activations_at_extremes(path: bool) -> None:
    x = np.array(
        [-200.0, -90.0, -88.0, -20.0, -1e-8, 0.0, 1e-8, 20.0, 88.0, 90.0, 200.0], dtype=np.float32
    )
    assert_close(_native.silu(x), silu64(x), rtol=1e-6, atol=1e-30)
    want = x.astype(np.float64) * 0.5 * (1.0 + np.array([erf(v / np.sqrt(2.0)) for v in x]))
    assert_close(_native.gelu(x), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("n", SIZES)
def test_gelu_matches_erf_gelu(path: bool, n: int) -> None:
    x = randn(n, scale=4.0)
    phi = 0.5 * (1.0 + np.array([erf(float(v) / np.sqrt(2.0)) for v in x]))
    # The AVX2 erf is Abramowitz & Stegun 7.1.26: 1.5e-7 absolute in Phi, times |x|.
    assert_close(_native.gelu(x), x.astype(np.float64) * phi, rtol=2e-6, atol=4e-7)


def test_gelu_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = randn(3, 1001, scale=3.0)
    want = torch.nn.functional.gelu(torch.from_numpy(x).double()).numpy()
    assert_close(_native.gelu(x), want, rtol=2e-6, atol=4e-7)


@pytest.mark.parametrize("n", SIZES)
def test_swiglu_and_add(path: bool, n: int) -> None:
    g, u = randn(n, scale=4.0), randn(n, seed=1)
    assert_close(_native.swiglu(g, u), silu64(g) * u, rtol=1e-6, atol=1e-7)
    assert_close(_native.add(g, u), g.astype(np.float64) + u, rtol=1e-7, atol=0.0)


def test_out_is_written_in_place_and_returned(path: bool) -> None:
    a, b = randn(5, 37), randn(5, 37, seed=1)
    want = a.astype(np.float64) + b
    got = _native.add(a, b, out=a)  # the residual add: h += x
    assert got is a
    assert_close(a, want, rtol=1e-7, atol=0.0)
    out = np.empty((5, 37), np.float32)
    assert _native.silu(b, out=out) is out
    assert _native.rms_norm(b, np.ones(37, np.float32), 1e-6, out=out) is out
    assert _native.softmax(b, out=out) is out


def rope64(x: F32, pos: npt.NDArray[np.int32], base: float, layout: str, n_rot: int) -> F64:
    y = x.astype(np.float64).copy()
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    ang = pos.astype(np.float64)[:, None] * inv  # (n, half)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if layout == "half":
        a, b = y[..., :half].copy(), y[..., half:n_rot].copy()
        y[..., :half], y[..., half:n_rot] = a * c - b * s, b * c + a * s
    else:
        a, b = y[..., 0:n_rot:2].copy(), y[..., 1:n_rot:2].copy()
        y[..., 0:n_rot:2], y[..., 1:n_rot:2] = a * c - b * s, b * c + a * s
    return y


@pytest.mark.parametrize("layout", ["half", "interleaved"])
@pytest.mark.parametrize(
    ("n", "heads", "hd", "n_rot"),
    [
        (1, 1, 2, -1),
        (3, 9, 64, -1),
        (5, 3, 18, -1),
        (7, 2, 64, 22),
        (300, 4, 128, -1),
        (2, 1, 10, 6),
    ],
)
def test_rope(path: bool, layout: str, n: int, heads: int, hd: int, n_rot: int) -> None:
    x = randn(n, heads, hd)
    pos = np.random.default_rng(3).integers(0, 4096, n).astype(np.int32)
    want = rope64(x, pos, 10000.0, layout, hd if n_rot == -1 else n_rot)
    got = _native.rope(x, pos, 10000.0, layout, n_rot)
    assert got is x
    # cos/sin are computed in double and rounded to float: a few ulp per element.
    assert_close(x, want, rtol=1e-6, atol=2e-6)


def test_interleaved_layout_is_the_half_layout_permuted() -> None:
    x_half = randn(4, 2, 16)  # HF layout: pairs (i, i + 8)
    perm = np.concatenate([np.arange(0, 16, 2), np.arange(1, 16, 2)])
    x_inter = np.empty_like(x_half)
    x_inter[..., perm] = x_half  # the same pairs as (2i, 2i + 1)
    pos = np.arange(4, dtype=np.int32) + 7
    half = _native.rope(x_half, pos, 100000.0, "half")
    inter = _native.rope(x_inter, pos, 100000.0, "interleaved")
    np.testing.assert_allclose(inter[..., perm], half, rtol=1e-6, atol=1e-6)


def test_bad_input_says_what_was_expected() -> None:
    x = randn(3, 8)
    with pytest.raises(ValueError, match=r"weight: expected shape \(8,\), got \(7,\)"):
        _native.rms_norm(x, randn(7), 1e-5)
    with pytest.raises(ValueError, match="float32"):
        _native.silu(x.astype(np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        _native.softmax(randn(8, 3).T)
    with pytest.raises(ValueError, match=r"out: expected shape \(3, 8\)"):
        _native.gelu(x, out=np.empty((3, 9), np.float32))
    with pytest.raises(ValueError, match=r"b: expected shape \(3, 8\)"):
        _native.add(x, randn(3, 9))
    with pytest.raises(ValueError, match="layout"):
        _native.rope(randn(2, 1, 8), np.zeros(2, np.int32), 1e4, "neox")
    with pytest.raises(ValueError, match="3-D"):
        _native.rope(randn(2, 8), np.zeros(2, np.int32), 1e4, "half")
    with pytest.raises(ValueError, match="positions"):
        _native.rope(randn(2, 1, 8), np.zeros(3, np.int32), 1e4, "half")
    with pytest.raises(ValueError, match="n_rot"):
        _native.rope(randn(2, 1, 8), np.zeros(2, np.int32), 1e4, "half", 5)
    with pytest.raises(ValueError, match="aligned"):
        _native.silu(np.zeros(140, np.uint8)[2:130].view(np.float32))


def test_vectorised_exp_is_within_a_few_ulp_of_exp(path: bool) -> None:
    # softmax([0, x]) = [1, e^x] / (1 + e^x): the second entry is e^x to within the division's
    # rounding, so this checks the exp polynomial over the whole range softmax feeds it.
    x = np.linspace(-87.0, 0.0, 4001)
    rows = np.stack([np.zeros_like(x), x], axis=1).astype(np.float32)
    x64 = rows[:, 1].astype(np.float64)
    want = np.exp(x64) / (1.0 + np.exp(x64))
    got = _native.softmax(rows)[:, 1]
    rel = np.abs(got - want) / want
    assert rel.max() <= 4 * np.finfo(np.float32).eps, rel.max()
