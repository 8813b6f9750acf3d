"""Shared inputs for the weight-format and matrix-kernel tests: random weights in every format,
including random valid k-quant super-blocks, and a switch for the scalar path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from engine import _native, quants

KQUANTS = ("Q4_K", "Q5_K", "Q6_K")
ALL_FORMATS = quants.FORMATS


@contextlib.contextmanager
def kernel_path(scalar: bool, avx2_only: bool = False) -> Iterator[None]:
    """Runs the body on the scalar reference kernels (scalar=True), on the AVX2 kernels even
    where AVX-512 is available (avx2_only=True), or on the best available."""
    _native.set_force_scalar(scalar)
    _native.set_force_avx2(avx2_only)
    try:
        yield
    finally:
        _native.set_force_scalar(False)
        _native.set_force_avx2(False)


HAS_AVX512 = _native.cpu_features()["kernels"] == "avx512"
# the matrix-vector rows kernels built with AVX-VNNI or AVX-512 VNNI are in use
HAS_VNNI = _native.cpu_features()["matvec_kernels"] in ("avx-vnni", "avx512-vnni")


def random_kquant_rows(
    fmt: str, rows: int, k: int, rng: np.random.Generator, max_scale: float = 2e-2
) -> np.ndarray:
    """Random valid k-quant rows: every byte random except the half-float scales, which are
    set to finite values of a realistic size (up to `max_scale`)."""
    elems, nbytes = quants.BLOCK[fmt]
    blocks = rng.integers(0, 256, size=(rows * k // elems, nbytes), dtype=np.uint8)
    low = max_scale / 200

    def halves() -> np.ndarray:
        return rng.uniform(low, max_scale, size=blocks.shape[0]).astype(np.float16).reshape(-1, 1)

    if fmt == "Q6_K":
        blocks[:, nbytes - 2 :] = halves().view(np.uint8)
    else:
        blocks[:, 0:2] = halves().view(np.uint8)
        blocks[:, 2:4] = halves().view(np.uint8)  # dmin
    return blocks.reshape(rows, k // elems * nbytes)


def random_weights(fmt: str, rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weights [rows, k] in fmt, as a GGUF file would hold them."""
    if fmt in KQUANTS:
        return random_kquant_rows(fmt, rows, k, rng)
    x = (rng.standard_normal((rows, k)) * 0.05).astype(np.float32)
    return quants.quantize(x, fmt)


def valid_k(fmt: str, k: int) -> int:
    """The nearest row length at or above k that fmt can hold."""
    elems = quants.BLOCK[fmt][0]
    return max(elems, (k + elems - 1) // elems * elems)


def stream_read_checksum(data: np.ndarray) -> int:
    """What `_native.stream_read` returns for `data`: its little-endian 8-byte words XORed
    together, then each byte past the last whole word."""
    whole = len(data) - len(data) % 8
    acc = int(np.bitwise_xor.reduce(data[:whole].view("<u8"))) if whole else 0
    for b in data[whole:]:
        acc ^= int(b)
    return acc
