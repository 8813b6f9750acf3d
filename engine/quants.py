"""Weight formats in numpy: packers that produce the same bytes as the native `quantize` (and as
ggml's reference quantizers), and unpackers. They let Python code (converters, tests) write
weights without the native module, and they are the yardstick the native kernels are tested on.

Formats are named as ggml names them. The k-quants (Q4_K, Q5_K, Q6_K) are read, not written
here: their unpacking is delegated to gguf's own reference implementation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FORMATS = (
    "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K",
)  # fmt: skip
PACKABLE = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1")

# (elements per block, bytes per block), as ggml defines them.
BLOCK: dict[str, tuple[int, int]] = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q8_0": (32, 34),
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
}

F32 = np.float32


def _check_format(fmt: str) -> None:
    if fmt not in BLOCK:
        raise ValueError(f"unknown weight format {fmt!r}: expected one of {', '.join(FORMATS)}")


def row_bytes(fmt: str, k: int) -> int:
    """Bytes of one row of k elements."""
    _check_format(fmt)
    elems, nbytes = BLOCK[fmt]
    if k <= 0 or k % elems:
        raise ValueError(f"{fmt}: row length k={k} must be a positive multiple of {elems}")
    return k // elems * nbytes


def _round_half_away(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """C's roundf: nearest integer, ties away from zero (np.rint breaks ties to even)."""
    t = np.trunc(v)
    tie = np.abs(v - t) == F32(0.5)
    return np.where(tie, t + np.sign(v), np.rint(v)).astype(F32)


def _inverse(d: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    safe = np.where(d != 0, d, F32(1))
    return np.where(d != 0, F32(1) / safe, F32(0)).astype(F32)


def _half_bytes(v: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    return v.astype(np.float16).reshape(-1, 1).view(np.uint8)


def _pack_nibbles(q: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """[blocks, 32] values 0..15 -> [blocks, 16] bytes: element j low, element j + 16 high."""
    return (q[:, :16] | (q[:, 16:] << np.uint8(4))).astype(np.uint8)


def _pack_q5(q: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """[blocks, 32] values 0..31 -> [blocks, 4 + 16] bytes: the fifth bits (bit j of a
    little-endian uint32: element j), then the low nibbles as _pack_nibbles lays them out."""
    qh = np.packbits(q >> np.uint8(4), axis=1, bitorder="little")
    return np.concatenate([qh, _pack_nibbles(q & np.uint8(0x0F))], axis=1)


def _bf16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    u = x.view(np.uint32)
    nan = (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    rounded = (u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)
    quiet = (u >> np.uint32(16)) | np.uint32(64)
    return np.where(nan, quiet, rounded).astype(np.uint16)


def quantize(x: npt.NDArray[np.float32], fmt: str) -> np.ndarray:
    """Packs float32 rows [rows, k] like engine._native.quantize, byte for byte."""
    _check_format(fmt)
    if fmt not in PACKABLE:
        raise ValueError(f"{fmt} weights are read here but not written: pack to {PACKABLE}")
    x = np.ascontiguousarray(x, dtype=F32)
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-D float32 array [rows, k], got shape {x.shape}")
    rows, k = x.shape
    rb = row_bytes(fmt, k)
    if fmt == "F32":
        return x.copy()
    if fmt == "F16":
        return x.astype(np.float16)
    if fmt == "BF16":
        return _bf16(x)
    blocks = x.reshape(-1, 32)
    if fmt == "Q8_0":
        d = np.abs(blocks).max(axis=1) / F32(127)
        q = _round_half_away(blocks * _inverse(d)[:, None]).astype(np.int8).view(np.uint8)
        packed = np.concatenate([_half_bytes(d), q], axis=1)
    elif fmt == "Q4_0":
        # the signed value of largest magnitude (the first, on ties) maps to -8
        peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)[:, 0]
        d = peak / F32(-8)
        q = (blocks * _inverse(d)[:, None] + F32(8.5)).astype(np.int8)
        packed = np.concatenate(
            [_half_bytes(d), _pack_nibbles(np.minimum(q, 15).astype(np.uint8))], axis=1
        )
    elif fmt == "Q5_0":
        # as Q4_0, with the peak mapped to -16
        peak = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)[:, 0]
        d = peak / F32(-16)
        q = (blocks * _inverse(d)[:, None] + F32(16.5)).astype(np.int8)
        packed = np.concatenate(
            [_half_bytes(d), _pack_q5(np.minimum(q, 31).astype(np.uint8))], axis=1
        )
    elif fmt == "Q5_1":
        lo = blocks.min(axis=1)
        d = (blocks.max(axis=1) - lo) / F32(31)
        q = ((blocks - lo[:, None]) * _inverse(d)[:, None] + F32(0.5)).astype(np.int8)
        packed = np.concatenate(
            [_half_bytes(d), _half_bytes(lo), _pack_q5(np.minimum(q, 31).astype(np.uint8))],
            axis=1,
        )
    else:  # Q4_1
        lo = blocks.min(axis=1)
        d = (blocks.max(axis=1) - lo) / F32(15)
        q = ((blocks - lo[:, None]) * _inverse(d)[:, None] + F32(0.5)).astype(np.int8)
        packed = np.concatenate(
            [_half_bytes(d), _half_bytes(lo), _pack_nibbles(np.minimum(q, 15).astype(np.uint8))],
            axis=1,
        )
    return packed.reshape(rows, rb)


def _unpack_nibbles(qs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return np.concatenate([qs & np.uint8(0x0F), qs >> np.uint8(4)], axis=1)


def _unpack_q5(qh_qs: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """[blocks, 4 + 16] bytes (qh, then qs) -> [blocks, 32] values 0..31."""
    high = np.unpackbits(qh_qs[:, :4], axis=1, bitorder="little")
    return _unpack_nibbles(qh_qs[:, 4:]) | (high << np.uint8(4))


def dequantize(w: np.ndarray, fmt: str, k: int) -> npt.NDArray[np.float32]:
    """Unpacks weights of any format to float32 [rows, k]."""
    rb = row_bytes(fmt, k)
    raw = np.ascontiguousarray(w).view(np.uint8).reshape(-1)
    if raw.size % rb:
        raise ValueError(f"w: {raw.size} bytes is not a whole number of {fmt} rows of {rb} bytes")
    rows = raw.size // rb
    if fmt == "F32":
        return raw.view(F32).reshape(rows, k).copy()
    if fmt == "F16":
        return raw.view(np.float16).astype(F32).reshape(rows, k)
    if fmt == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << np.uint32(16)).view(F32).reshape(rows, k)
    if fmt in ("Q4_K", "Q5_K", "Q6_K"):
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize as gguf_dequantize

        out = gguf_dequantize(raw.reshape(rows, rb), GGMLQuantizationType[fmt])
        return np.asarray(out, dtype=F32).reshape(rows, k)
    blocks = raw.reshape(-1, BLOCK[fmt][1])
    d = blocks[:, 0:2].copy().view(np.float16).astype(F32)
    if fmt == "Q8_0":
        vals = blocks[:, 2:].view(np.int8).astype(F32) * d
    elif fmt == "Q4_0":
        vals = (_unpack_nibbles(blocks[:, 2:]).astype(F32) - F32(8)) * d
    elif fmt == "Q5_0":
        vals = (_unpack_q5(blocks[:, 2:]).astype(F32) - F32(16)) * d
    elif fmt == "Q5_1":
        m = blocks[:, 2:4].copy().view(np.float16).astype(F32)
        vals = _unpack_q5(blocks[:, 4:]).astype(F32) * d + m
    else:  # Q4_1
        m = blocks[:, 2:4].copy().view(np.float16).astype(F32)
        vals = _unpack_nibbles(blocks[:, 4:]).astype(F32) * d + m
    return vals.reshape(rows, k)
