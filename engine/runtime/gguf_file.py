"""Open a GGUF file: its metadata and its tensors as memory-mapped numpy views (no copy).

The header is parsed here rather than by `gguf.GGUFReader`, which builds a numpy object for
every element of every metadata array (the 49k-entry vocabulary and merges) and takes over a
second to open a small model; this reader walks the same bytes in a few milliseconds. The
format constants (value types, quantization types, block sizes) come from the `gguf` package,
so both agree on what each byte means; a test checks this reader against GGUFReader.

Large string arrays (the vocabulary and merges, ~49k entries each) are decoded as the header is
walked, unless a `HeaderLayout` from an earlier open of the same file
(engine/runtime/load_cache.py) lets the parser jump over them; they are then decoded on first
access. A layout is used only when the hash of the whole key/value section still matches, so it
can never describe other bytes.

Every problem with a file is a `GGUFError` that names the file and the key or tensor at fault.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# Fixed-size scalar value types: (struct format, numpy dtype) for little-endian files.
_SCALARS: dict[GGUFValueType, tuple[str, str]] = {
    GGUFValueType.UINT8: ("<B", "<u1"),
    GGUFValueType.INT8: ("<b", "<i1"),
    GGUFValueType.UINT16: ("<H", "<u2"),
    GGUFValueType.INT16: ("<h", "<i2"),
    GGUFValueType.UINT32: ("<I", "<u4"),
    GGUFValueType.INT32: ("<i", "<i4"),
    GGUFValueType.FLOAT32: ("<f", "<f4"),
    GGUFValueType.BOOL: ("<?", "<u1"),
    GGUFValueType.UINT64: ("<Q", "<u8"),
    GGUFValueType.INT64: ("<q", "<i8"),
    GGUFValueType.FLOAT64: ("<d", "<f8"),
}

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SHAPES = {n: struct.Struct(f"<{n}Q") for n in range(1, 5)}  # a tensor's ne, by rank
_TYPE_OFFSET = struct.Struct("<IQ")  # a tensor's type and data offset, packed (no padding)
_QTYPES = {int(t): t for t in GGMLQuantizationType}

# numpy dtype of an element for the formats that are plain arrays; block formats are uint8.
_PLAIN_DTYPES: dict[GGMLQuantizationType, type[np.generic]] = {
    GGMLQuantizationType.F32: np.float32,
    GGMLQuantizationType.F16: np.float16,
    GGMLQuantizationType.BF16: np.uint16,
}


# The fewest bytes one entry can take, which bounds a count read from the header against the
# bytes left in the file before anything is allocated or looped over: a metadata entry is a key
# length (8), a value type (4) and a value of at least 1 byte; a tensor entry a name length (8),
# a rank (4), one dimension (8), a type (4) and an offset (8); an array element at least its
# own size (a string: its length, 8; a nested array: its type and count, 12).
MIN_KV_BYTES = 13
MIN_TENSOR_INFO_BYTES = 32
_MIN_ELEMENT_BYTES = {GGUFValueType.STRING: 8, GGUFValueType.ARRAY: 12}


# String arrays with at least this many entries (the vocabulary, the merges) may be skipped by a
# HeaderLayout and decoded lazily; shorter ones (trained parts) are always decoded as read.
LAZY_STRINGS = 1024


class GGUFError(ValueError):
    """A GGUF file that cannot be used: truncated, malformed, or not the model we expect."""


class GGUFNotFoundError(GGUFError, FileNotFoundError):
    """The path names no file (both a GGUFError and a FileNotFoundError for callers)."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the file. `shape` is numpy order (rows last-but-one, row length last),
    the reverse of GGUF's `ne`; `data` is a read-only view of the mapped file:
    uint8[rows, row_bytes] for block formats, float32/float16/uint16 for F32/F16/BF16."""

    name: str
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in the file
    nbytes: int
    data: np.ndarray

    @property
    def fmt(self) -> str:
        return self.qtype.name


@dataclass(frozen=True)
class HeaderLayout:
    """Where the key/value section of one file ends, its CRC-32, and where each large string
    array's entries start and end: what a second open needs to skip walking them."""

    kv_end: int
    kv_crc32: int
    string_arrays: dict[int, tuple[int, int]]  # entries' start -> (count, end)


class _LazyStrings:
    """A string array not decoded yet: `count` entries from byte `start` of the file."""

    __slots__ = ("count", "end", "start")

    def __init__(self, start: int, count: int, end: int) -> None:
        self.start, self.count, self.end = start, count, end


class Metadata(MutableMapping[str, Any]):
    """Key -> value, decoding a lazy string array on first access (then kept)."""

    def __init__(self, file: GGUFFile) -> None:
        self._file = file
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        if isinstance(value, _LazyStrings):
            value = self._values[key] = self._file._decode_strings(value, key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values


# The header is read through a bytes copy of a window of it: this many bytes at first, then
# moved (and at least doubled) where a read needs bytes past its end.
HEADER_WINDOW = 1 << 16


class _Cursor:
    """Reads little-endian values from the start of the mapped file, turning a short read into
    a GGUFError that says what was being read.

    It works on a `bytes` copy of a window of the header: slicing bytes is several times faster
    than slicing the map for its many small values (the 100k-string vocabulary arrays are read
    straight from the map, natively: `string_array`). `pos` is an offset in the file, `base`
    the file offset of the window's first byte. A load that skips
    the vocabulary arrays (a verified HeaderLayout) copies only the windows it reads, not the
    megabytes in between."""

    def __init__(
        self, mapped: np.ndarray, path: Path, skips: dict[int, tuple[int, int]] | None = None
    ) -> None:
        self.mapped = mapped
        self.buf = bytes(mapped[: min(HEADER_WINDOW, mapped.size)])
        self.base = 0
        self.pos = 0
        self.path = path
        self.skips = skips or {}  # from a verified HeaderLayout
        self.string_arrays: dict[int, tuple[int, int]] = {}  # what this walk found

    def need(self, n: int, what: str) -> None:
        """Makes bytes [pos, pos + n) readable in the window."""
        if self.pos + n <= self.base + len(self.buf):
            return
        if self.pos + n > self.mapped.size:
            raise GGUFError(f"{self.path}: truncated file: it ends while reading {what}")
        size = max(n, 2 * len(self.buf), HEADER_WINDOW)
        self.buf = bytes(self.mapped[self.pos : min(self.pos + size, self.mapped.size)])
        self.base = self.pos

    def scalar(self, fmt: str, size: int, what: str) -> Any:
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos - self.base)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar("<I", 4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar("<Q", 8, what))

    def string(self, what: str) -> str:
        n = self.u64(what)
        self.need(n, what)
        at = self.pos - self.base
        self.pos += n
        return self.buf[at : at + n].decode("utf-8", errors="replace")

    def value(self, vtype: int, what: str) -> Any:
        try:
            kind = GGUFValueType(vtype)
        except ValueError:
            raise GGUFError(f"{self.path}: {what} has unknown value type {vtype}") from None
        if kind == GGUFValueType.STRING:
            return self.string(what)
        if kind == GGUFValueType.ARRAY:
            return self.array(what)
        fmt, _ = _SCALARS[kind]
        return self.scalar(fmt, struct.calcsize(fmt), what)

    def array(self, what: str) -> Any:
        etype = self.u32(what)
        count = self.u64(what)
        try:
            kind = GGUFValueType(etype)
        except ValueError:
            raise GGUFError(f"{self.path}: {what} has unknown element type {etype}") from None
        element = (np.dtype(_SCALARS[kind][1]).itemsize if kind in _SCALARS
                   else _MIN_ELEMENT_BYTES[kind])
        left = self.mapped.size - self.pos
        if count * element > left:
            raise GGUFError(f"{self.path}: truncated file or corrupt count: {what} claims "
                            f"{count} entries, more than the {left} bytes left can hold")
        if kind in _SCALARS:
            # Numeric arrays stay views of the mapped file (token types, scores: 49k entries).
            dtype = np.dtype(_SCALARS[kind][1])
            self.need(count * dtype.itemsize, what)
            arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos - self.base)
            self.pos += count * dtype.itemsize
            return arr.astype(bool) if kind == GGUFValueType.BOOL else arr
        if kind == GGUFValueType.STRING:
            start = self.pos
            if count < LAZY_STRINGS:
                return self.string_array(count, what)
            known = self.skips.get(start)
            value: list[str] | _LazyStrings
            if known is not None and known[0] == count:
                self.pos = known[1]
                value = _LazyStrings(start, count, self.pos)
            else:
                value = self.string_array(count, what)
            self.string_arrays[start] = (count, self.pos)
            return value
        return [self.value(etype, f"{what}[{i}]") for i in range(count)]

    def string_array(self, count: int, what: str) -> list[str]:
        from engine import _native

        try:
            out, end = _native.gguf_strings(self.mapped, self.pos, count)
        except ValueError:
            raise GGUFError(f"{self.path}: truncated file: it ends while reading {what}"
                            ) from None
        self.pos = int(end)
        return out  # type: ignore[no-any-return]


class GGUFFile:
    """A GGUF file opened read-only: `metadata` (key -> value) and `tensors` (name -> TensorInfo).

    The tensors are views of one `np.memmap`; the file stays mapped while any view is alive.
    """

    def __init__(self, path: str | Path, layout: HeaderLayout | None = None) -> None:
        """`layout`: what an earlier open of this file found (see HeaderLayout); ignored unless
        the key/value section hashes the same now (`layout_reused` says whether it did)."""
        self.path = Path(path)
        if not self.path.is_file():
            raise GGUFNotFoundError(f"{self.path}: no such file")
        if self.path.stat().st_size < 24:
            raise GGUFError(
                f"{self.path}: truncated file: {self.path.stat().st_size} bytes "
                "is shorter than a GGUF header"
            )
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        # Tensors are sliced from a plain ndarray view of the map: slicing np.memmap itself
        # makes a memmap object per slice, several times slower over hundreds of tensors.
        self._flat = self._map.view(np.ndarray)
        self.layout_reused = layout is not None and self._section_crc32(layout.kv_end) == (
            layout.kv_crc32
        )
        skips = layout.string_arrays if layout is not None and self.layout_reused else None
        cur = _Cursor(self._map, self.path, skips)
        magic = bytes(cur.buf[:4])
        if magic != GGUF_MAGIC:
            raise GGUFError(f"{self.path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
        cur.pos = 4
        self.version = cur.u32("the version")
        if self.version not in (2, 3):
            raise GGUFError(
                f"{self.path}: GGUF version {self.version} is not supported "
                "(2 and 3 are; a big-endian file also reads as a huge version)"
            )
        n_tensors = cur.u64("the tensor count")
        n_kv = cur.u64("the metadata count")
        self._check_count(n_kv, MIN_KV_BYTES, "metadata entries", cur.pos)
        self.metadata = Metadata(self)
        for i in range(n_kv):
            key = cur.string(f"metadata key #{i}")
            self.metadata[key] = cur.value(cur.u32(f"the type of {key!r}"), repr(key))
        self._kv_end = cur.pos
        self._string_arrays = cur.string_arrays
        self._layout = layout if self.layout_reused else None
        self._check_count(n_tensors, MIN_TENSOR_INFO_BYTES, "tensors", cur.pos)
        try:
            infos = self._tensor_table(cur, n_tensors)
        except GGUFError as exc:
            if n_tensors and "general.architecture" not in self.metadata:
                # Every model file has this key: without it the tensor table was read from
                # the wrong place, and what it found there says nothing about the tensors.
                raise GGUFError(
                    f"{self.path}: the header counts {n_kv} metadata entries, which hold no "
                    f"'general.architecture', and the tensor table after them does not read: "
                    f"the metadata count is wrong or the file is corrupt"
                ) from exc
            raise
        alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        if alignment <= 0 or alignment & (alignment - 1):
            raise GGUFError(f"{self.path}: 'general.alignment' is {alignment}, not a power of 2")
        self.data_offset = -(-cur.pos // alignment) * alignment
        self.tensors: dict[str, TensorInfo] = {}
        for name, qtype, shape, rel in infos:
            self.tensors[name] = self._tensor_view(name, qtype, shape, self.data_offset + rel)

    def _check_count(self, count: int, min_bytes: int, what: str, at: int) -> None:
        """Refuse a header count the rest of the file cannot hold before looping over it."""
        left = self._map.size - at
        if count * min_bytes > left:
            raise GGUFError(
                f"{self.path}: the header counts {count} {what}, more than the {left} bytes "
                f"left from byte {at} can hold: the file is corrupt or truncated"
            )

    def _section_crc32(self, end: int) -> int | None:
        # A check that the section is the one the layout was made from, not a defence against
        # a forged file: CRC-32 reads the 2-3 MB of a vocabulary's section in half the time of
        # SHA-1, and any change to it shows.
        if not 0 < end <= self._map.size:
            return None
        return zlib.crc32(memoryview(self._map[:end]))

    @property
    def layout(self) -> HeaderLayout:
        """This file's HeaderLayout, for the next open (hashes the key/value section once)."""
        if self._layout is None:
            crc = self._section_crc32(self._kv_end)
            assert crc is not None
            self._layout = HeaderLayout(self._kv_end, crc, dict(self._string_arrays))
        return self._layout

    def _decode_strings(self, lazy: _LazyStrings, key: str) -> list[str]:
        cur = _Cursor(self._map[lazy.start : lazy.end], self.path)
        return cur.string_array(lazy.count, repr(key))

    def _tensor_table(
        self, cur: _Cursor, n: int
    ) -> list[tuple[str, GGMLQuantizationType, tuple[int, ...], int]]:
        """The n tensor entries after the metadata (see _tensor_info), in one tight loop over
        the header window: hundreds are read on every load. An entry that runs past the window
        (or the file) goes through _tensor_info, which moves the window or names what is cut."""
        out: list[tuple[str, GGMLQuantizationType, tuple[int, ...], int]] = []
        append = out.append
        while len(out) < n:
            buf, base = cur.buf, cur.base
            pos, end = cur.pos - base, len(cur.buf)
            try:
                for _ in range(n - len(out)):
                    (name_len,) = _U64.unpack_from(buf, pos)
                    at = pos + 8 + name_len
                    (n_dims,) = _U32.unpack_from(buf, at)
                    if not 1 <= n_dims <= 4 or at + 16 + 8 * n_dims > end:
                        raise IndexError  # bad rank or cut: _tensor_info says which
                    ne = _SHAPES[n_dims].unpack_from(buf, at + 4)
                    raw_type, offset = _TYPE_OFFSET.unpack_from(buf, at + 4 + 8 * n_dims)
                    qtype = _QTYPES.get(raw_type)
                    if qtype is None:
                        raise IndexError
                    append((buf[pos + 8 : at].decode("utf-8", "replace"), qtype, ne[::-1], offset))
                    pos = at + 16 + 8 * n_dims
            except (IndexError, OverflowError, struct.error):  # a huge name length overflows
                cur.pos = base + pos
                append(self._tensor_info(cur, len(out)))
                continue
            cur.pos = base + pos
        return out

    def _tensor_info(
        self, cur: _Cursor, i: int
    ) -> tuple[str, GGMLQuantizationType, tuple[int, ...], int]:
        name = cur.string(f"the name of tensor #{i}")
        # One bounds check and one unpack per field group, the message built once: hundreds
        # of tensors are read on every load, and per-field f-strings were most of that time.
        what = f"the shape, type and offset of tensor {name!r}"
        cur.need(4, what)
        at = cur.pos - cur.base
        (n_dims,) = _U32.unpack_from(cur.buf, at)
        if not 1 <= n_dims <= 4:
            raise GGUFError(f"{self.path}: tensor {name!r} has rank {n_dims} (1..4 expected)")
        cur.need(4 + 8 * n_dims + 12, what)
        at = cur.pos - cur.base  # need() may have moved the window
        ne = struct.unpack_from(f"<{n_dims}Q", cur.buf, at + 4)
        raw_type, offset = _TYPE_OFFSET.unpack_from(cur.buf, at + 4 + 8 * n_dims)
        cur.pos += 4 + 8 * n_dims + 12
        try:
            qtype = _QTYPES[raw_type]
        except KeyError:
            raise GGUFError(f"{self.path}: tensor {name!r} has unknown type {raw_type}") from None
        return name, qtype, tuple(reversed(ne)), offset

    def _tensor_view(
        self, name: str, qtype: GGMLQuantizationType, shape: tuple[int, ...], offset: int
    ) -> TensorInfo:
        block, block_bytes = GGML_QUANT_SIZES[qtype]
        k = shape[-1]
        if k % block:
            raise GGUFError(
                f"{self.path}: tensor {name!r} ({qtype.name}) has rows of {k} "
                f"elements, not a multiple of the block size {block}"
            )
        row_bytes = k // block * block_bytes
        n_rows = math.prod(shape[:-1])
        nbytes = n_rows * row_bytes
        if offset + nbytes > self._map.size:
            raise GGUFError(
                f"{self.path}: truncated file: tensor {name!r} needs bytes "
                f"{offset}..{offset + nbytes} but the file has {self._map.size}"
            )
        raw = self._flat[offset : offset + nbytes]
        if qtype in _PLAIN_DTYPES:
            data = raw.view(_PLAIN_DTYPES[qtype]).reshape(shape)
        else:
            data = raw.reshape(*shape[:-1], row_bytes)
        return TensorInfo(name, qtype, shape, offset, nbytes, data)

    # --- typed metadata access with errors that name the key ---------------------------------

    @property
    def architecture(self) -> str:
        return str(self.require("general.architecture"))

    def require(self, key: str) -> Any:
        if key not in self.metadata:
            raise GGUFError(f"{self.path}: metadata key {key!r} is missing")
        return self.metadata[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def first_value(self, info: TensorInfo) -> float:
        """The first element of a float tensor, read from the file rather than through the map.
        A scalar far from anything else a load touches (a fusion gate) would cost a page fault
        of the map, about half a millisecond each measured here; a read from the page cache
        costs microseconds."""
        itemsize = info.data.dtype.itemsize  # the view's dtype: its bytes are not touched
        with open(self.path, "rb", buffering=0) as fh:
            raw = os.pread(fh.fileno(), itemsize, info.offset)
        if len(raw) != itemsize:
            raise GGUFError(f"{self.path}: truncated file: tensor {info.name!r} cannot be read")
        return float(np.frombuffer(raw, info.data.dtype)[0])

    def tensor(
        self,
        name: str,
        shape: Sequence[int] | None = None,
        formats: Mapping[str, Any] | Sequence[str] | None = None,
    ) -> TensorInfo:
        """The tensor `name`, checked: present, of the expected numpy-order shape, and (if
        `formats` is given) in one of those formats."""
        info = self.tensors.get(name)
        if info is None:
            raise GGUFError(f"{self.path}: tensor {name!r} is missing")
        if shape is not None and tuple(shape) != info.shape:
            raise GGUFError(
                f"{self.path}: tensor {name!r} has shape {list(info.shape)}, expected {list(shape)}"
            )
        if formats is not None and info.fmt not in formats:
            raise GGUFError(
                f"{self.path}: tensor {name!r} is {info.fmt}, which this runtime "
                f"cannot use here (supported: {', '.join(formats)})"
            )
        return info

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.tensors.values())


def open_gguf(path: str | Path) -> GGUFFile:
    return GGUFFile(path)
