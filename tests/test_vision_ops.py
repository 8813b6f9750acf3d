"""Vision ops (NHWC) against torch's conv2d / mean in float64, on the AVX2 and the scalar
path, at odd sizes, with explicit error bounds."""

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from engine import _native

torch = pytest.importorskip("torch")
F = torch.nn.functional

F32 = npt.NDArray[np.float32]


@pytest.fixture(params=[False, True], ids=["avx2", "scalar"])
def path(request: pytest.FixtureRequest) -> Iterator[bool]:
    _native.set_force_scalar(request.param)
    yield request.param
    _native.set_force_scalar(False)


def randn(*shape: int, seed: int) -> F32:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def nchw(x: np.ndarray) -> "torch.Tensor":
    return torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]


def nhwc(t: "torch.Tensor") -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


def check(got: F32, want: np.ndarray, k: int) -> None:
    # float32 sums of k products of ~N(0, 1) values: error grows like sqrt(k) ulp.
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6 * np.sqrt(k))


@pytest.mark.parametrize(
    ("h", "w", "cin", "cout", "k", "stride"),
    [
        (4, 4, 3, 1, 4, 4),
        (17, 23, 3, 40, 4, 4),
        (64, 64, 3, 96, 4, 4),
        (9, 7, 5, 33, 3, 2),
        (8, 8, 1, 8, 2, 1),
        (224, 224, 3, 64, 4, 4),
    ],
)
def test_conv_stem(path: bool, h: int, w: int, cin: int, cout: int, k: int, stride: int) -> None:
    x, wt, b = randn(h, w, cin, seed=0), randn(cout, k, k, cin, seed=1), randn(cout, seed=2)
    got = _native.conv_stem(x, wt, b, stride)
    w_torch = torch.from_numpy(wt.astype(np.float64)).permute(0, 3, 1, 2)  # -> [Cout, Cin, kh, kw]
    want = nhwc(F.conv2d(nchw(x), w_torch, torch.from_numpy(b.astype(np.float64)), stride=stride))
    check(got, want, k * k * cin)


def depthwise_reference(x: F32, w: F32, b: F32, stride: int) -> np.ndarray:
    """Zero-pad by 1 and sum the 9 shifted, weighted copies, in float64."""
    h, wd, _ = x.shape
    xp = np.pad(x.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    out = np.broadcast_to(b.astype(np.float64), x.shape).copy()
    for dy in range(3):
        for dx in range(3):
            out += xp[dy : dy + h, dx : dx + wd] * w[dy, dx]
    return out[::stride, ::stride]


@pytest.mark.parametrize(
    ("h", "w", "c"), [(1, 1, 1), (2, 3, 7), (7, 7, 96), (14, 9, 33), (56, 56, 64), (5, 4, 200)]
)
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv3x3(path: bool, h: int, w: int, c: int, stride: int) -> None:
    x, wt, b = randn(h, w, c, seed=3), randn(3, 3, c, seed=4), randn(c, seed=5)
    got = _native.depthwise_conv3x3(x, wt, b, stride)
    check(got, depthwise_reference(x, wt, b, stride), 9)


def test_depthwise_reference_is_torch_grouped_conv() -> None:
    x, wt, b = randn(9, 6, 10, seed=3), randn(3, 3, 10, seed=4), randn(10, seed=5)
    w_torch = torch.from_numpy(wt).permute(2, 0, 1)[:, None]  # [C, 1, 3, 3]
    for stride in (1, 2):
        want = nhwc(
            F.conv2d(
                torch.from_numpy(x).permute(2, 0, 1)[None],
                w_torch,
                torch.from_numpy(b),
                stride=stride,
                padding=1,
                groups=10,
            )
        )
        np.testing.assert_allclose(depthwise_reference(x, wt, b, stride), want, atol=1e-5)
        np.testing.assert_allclose(_native.depthwise_conv3x3(x, wt, b, stride), want, atol=1e-5)


@pytest.mark.parametrize(("h", "w", "c"), [(1, 1, 1), (7, 7, 96), (3, 5, 13), (56, 56, 67)])
def test_global_avg_pool(path: bool, h: int, w: int, c: int) -> None:
    x = randn(h, w, c, seed=6) + 3.0
    want = x.astype(np.float64).mean(axis=(0, 1))
    got = _native.global_avg_pool(x)
    assert got.shape == (c,)
    np.testing.assert_allclose(got, want, rtol=2e-6 * np.sqrt(h * w), atol=1e-7)


def test_out_is_written_in_place(path: bool) -> None:
    x, wt, b = randn(6, 5, 9, seed=0), randn(3, 3, 9, seed=1), randn(9, seed=2)
    out = np.empty((6, 5, 9), np.float32)
    assert _native.depthwise_conv3x3(x, wt, b, 1, out=out) is out
    pooled = np.empty(9, np.float32)
    assert _native.global_avg_pool(out, out=pooled) is pooled


def test_bad_input_says_what_was_expected() -> None:
    x = randn(8, 8, 3, seed=0)
    with pytest.raises(ValueError, match=r"w: expected Cin 3"):
        _native.conv_stem(x, randn(16, 4, 4, 4, seed=1), randn(16, seed=2), 4)
    with pytest.raises(ValueError, match=r"b: expected shape \(16,\)"):
        _native.conv_stem(x, randn(16, 4, 4, 3, seed=1), randn(15, seed=2), 4)
    with pytest.raises(ValueError, match="at least as large as the kernel"):
        _native.conv_stem(x[:3], randn(16, 4, 4, 3, seed=1), randn(16, seed=2), 4)
    with pytest.raises(ValueError, match="stride"):
        _native.conv_stem(x, randn(16, 4, 4, 3, seed=1), randn(16, seed=2), 0)
    with pytest.raises(ValueError, match=r"w: expected shape \(3, 3, 3\)"):
        _native.depthwise_conv3x3(x, randn(3, 3, 4, seed=1), randn(3, seed=2))
    with pytest.raises(ValueError, match=r"3-D array \[H, W, C\]"):
        _native.global_avg_pool(x[0])
    with pytest.raises(ValueError, match="C-contiguous"):
        _native.global_avg_pool(x.transpose(1, 0, 2))
