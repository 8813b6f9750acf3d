"""Read a GGUF file's tokenizer metadata, and nothing else, fast.

`gguf.GGUFReader` builds numpy views of every field and tensor (about 1.6 s for SmolLM2's
49,152-token vocabulary); loading a tokenizer on the editor path needs only the key/value
section at the head of the file, walked once with `struct`.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

# GGUF value types (ggml's gguf.h, enum gguf_type) -> struct format of a scalar.
_SCALARS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}
_STRING = 8
_ARRAY = 9


class GGUFMetadataError(ValueError):
    """The file is not a GGUF file, or its metadata section is malformed."""


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes, source: str) -> None:
        self.buf = buf
        self.pos = 0
        self.source = source

    def unpack(self, fmt: str) -> Any:
        try:
            (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error as e:
            raise GGUFMetadataError(f"{self.source}: metadata truncated at byte {self.pos}") from e
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        end = self.pos + n
        if end > len(self.buf):
            raise GGUFMetadataError(f"{self.source}: string runs past the end at byte {self.pos}")
        raw = self.buf[self.pos : end]
        self.pos = end
        # Invalid UTF-8 can occur in byte-level vocabularies of some converters; keep it
        # lossless rather than fail the whole load.
        return raw.decode("utf-8", errors="surrogateescape")

    def value(self, vtype: int) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.unpack("<I")
            n = self.unpack("<Q")
            if etype == _STRING:
                return self._string_array(n)
            fmt = _SCALARS.get(etype)
            if fmt is None:
                raise GGUFMetadataError(f"{self.source}: unsupported array element type {etype}")
            size = struct.calcsize(fmt)
            values = list(struct.unpack_from(f"<{n}{fmt[1]}", self.buf, self.pos))
            self.pos += n * size
            return values
        fmt = _SCALARS.get(vtype)
        if fmt is None:
            raise GGUFMetadataError(f"{self.source}: unknown value type {vtype} at {self.pos}")
        return self.unpack(fmt)

    def _string_array(self, n: int) -> list[str]:
        # The hot loop of the whole load (two arrays of ~49k strings): local names, no calls
        # through self.
        buf, pos, out = self.buf, self.pos, []
        unpack_len = struct.Struct("<Q").unpack_from
        append = out.append
        try:
            for _ in range(n):
                (length,) = unpack_len(buf, pos)
                pos += 8
                append(buf[pos : pos + length].decode("utf-8", errors="surrogateescape"))
                pos += length
        except struct.error as e:
            raise GGUFMetadataError(f"{self.source}: string array truncated") from e
        self.pos = pos
        return out


def read_metadata(path: str | Path, prefix: str = "") -> dict[str, Any]:
    """All key/value pairs of the GGUF file at `path` whose key starts with `prefix`
    (values of other keys are walked over but not kept)."""
    path = Path(path)
    try:
        f = path.open("rb")
    except OSError as e:
        raise GGUFMetadataError(f"cannot open GGUF file {path}: {e.strerror}") from e
    with f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf, str(path))
        if buf[:4] != GGUF_MAGIC:
            raise GGUFMetadataError(f"{path} is not a GGUF file (magic {bytes(buf[:4])!r})")
        version = cur.unpack("<4xI")
        if version < 2:
            raise GGUFMetadataError(f"{path}: GGUF version {version} is too old (need >= 2)")
        _n_tensors = cur.unpack("<Q")
        n_kv = cur.unpack("<Q")
        out: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            vtype = cur.unpack("<I")
            value = cur.value(vtype)
            if key.startswith(prefix):
                out[key] = value
        return out


def metadata_from_reader(reader: Any, prefix: str = "") -> dict[str, Any]:
    """The same dictionary from an open `gguf.GGUFReader` (for callers that already hold one)."""
    out: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith(prefix):
            out[key] = field.contents()
    return out


def as_metadata(source: str | Path | Mapping[str, Any] | Any, prefix: str) -> dict[str, Any]:
    """Metadata from a path, a GGUFReader, or an already-read mapping of keys to values."""
    if isinstance(source, str | Path):
        return read_metadata(source, prefix)
    if isinstance(source, Mapping):
        return {k: v for k, v in source.items() if k.startswith(prefix)}
    if hasattr(source, "fields"):
        return metadata_from_reader(source, prefix)
    raise TypeError(f"expected a GGUF path, a GGUFReader or a metadata mapping, got {source!r}")
