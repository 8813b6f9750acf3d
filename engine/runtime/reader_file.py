"""Where the code reader's weights are stored, and reading them back: the float16 arrays,
the reader's config and its training record, from either of the two files that carry them.

- reader.npz: what `cromwell train reader` writes and the package ships (engine/assets);
  `__config__` and `__meta__` hold JSON, every other array is a weight under its torch name.
- a `cromwell` GGUF: `cromwell models fetch` builds the shipped reader into cromwell-smol, each
  weight as the F16 tensor `reader.<torch name>`, the config and record as JSON strings under
  CONFIG_KEY / META_KEY, and the sha256 of the reader.npz it was built from under SHA_KEY (so
  a rebuild is due when the shipped reader changes).
"""

from __future__ import annotations

import gc
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TENSOR_PREFIX = "reader."
CONFIG_KEY = "cromwell.reader.config"
META_KEY = "cromwell.reader.meta"
SHA_KEY = "cromwell.reader.sha256"


@dataclass(frozen=True)
class ReaderFile:
    """The reader's weights as stored (float16, torch names), its config and training record."""

    config: dict
    meta: dict
    arrays: dict[str, np.ndarray]
    source: str  # the file they came from, for messages


def file_sha256(path: str | Path) -> str:
    # Imported here: hashlib loads OpenSSL (3.5 MiB resident), which reading a screenshot
    # never needs; only `models fetch` hashes the shipped reader.
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_npz(path: str | Path) -> ReaderFile:
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a reader weights file: {err}") from None
    try:
        config = json.loads(arrays.pop("__config__").tobytes())
        meta = json.loads(arrays.pop("__meta__").tobytes())
    except KeyError:
        raise ValueError(f"{path}: not a reader weights file (no __config__)") from None
    return ReaderFile(config, meta, arrays, str(path))


def write_npz(stored: ReaderFile, path: str | Path) -> None:
    """`stored` as a reader.npz, written beside `path` then renamed into place (a reader of the
    file never sees half of it)."""
    path = Path(path)
    arrays = {k: np.asarray(v, dtype=np.float16) for k, v in stored.arrays.items()}
    arrays["__config__"] = np.frombuffer(json.dumps(stored.config).encode(), np.uint8)
    arrays["__meta__"] = np.frombuffer(json.dumps(stored.meta).encode(), np.uint8)
    tmp = path.with_suffix(".partial.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def read_any(path: str | Path) -> ReaderFile:
    """A reader.npz, or a GGUF model file that carries a reader."""
    return read_gguf(path) if str(path).endswith(".gguf") else read_npz(path)


def gguf_value(path: str | Path, key: str) -> object | None:
    """Metadata `key` of the GGUF file `path` (None: not there, or no GGUF file at all)."""
    from engine.runtime.gguf_file import GGUFError, GGUFFile

    try:
        return GGUFFile(path).get(key)
    except (GGUFError, OSError):
        return None


def gguf_has_reader(path: str | Path) -> bool:
    """Whether the GGUF file `path` carries a reader (False for any file that is not one)."""
    return gguf_value(path, CONFIG_KEY) is not None


def gguf_reader_sha(path: str | Path) -> str | None:
    """The sha256 of the reader.npz built into the GGUF `path` (None: none is)."""
    value = gguf_value(path, SHA_KEY)
    return None if value is None else str(value)


def read_gguf(path: str | Path) -> ReaderFile:
    """The reader built into a GGUF file (copied out of the mapping: it is small)."""
    from engine.runtime.gguf_file import GGUFFile

    f = GGUFFile(path)
    config, meta = f.get(CONFIG_KEY), f.get(META_KEY)
    if config is None:
        raise ValueError(f"{path}: this model file carries no screenshot reader")
    spans = [(t.name[len(TENSOR_PREFIX):], t.offset, t.shape, t.data.dtype)
             for t in f if t.name.startswith(TENSOR_PREFIX)]
    if not spans:
        raise ValueError(f"{path}: the reader's config is there but none of its tensors")
    if any(dtype != np.float16 for *_, dtype in spans):
        raise ValueError(f"{path}: the reader's tensors must be F16")
    # The header is parsed into many short-lived objects; copies made while they live would
    # be scattered among them and keep the heap from shrinking afterwards (about 3 MiB of a
    # process's memory). So the parse is dropped first, and the weights are then read from
    # the file into one block.
    del f
    gc.collect()
    total = sum(math.prod(shape) for _, _, shape, _ in spans)
    block = np.empty(total, np.float16)
    arrays: dict[str, np.ndarray] = {}
    at = 0
    with open(path, "rb") as file:
        for name, offset, shape, _ in spans:
            n = math.prod(shape)
            file.seek(offset)
            file.readinto(memoryview(block[at : at + n]).cast("B"))
            arrays[name] = block[at : at + n].reshape(shape)
            at += n
    return ReaderFile(json.loads(config), json.loads(meta or "{}"), arrays, str(path))


def gguf_parts(npz: str | Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """A reader.npz as what a GGUF writer adds: the metadata (config, record, sha256) and the
    F16 tensors under their GGUF names. Deterministic: the same file gives the same parts."""
    stored = read_npz(npz)
    metadata = {CONFIG_KEY: json.dumps(stored.config, sort_keys=True),
                META_KEY: json.dumps(stored.meta, sort_keys=True),
                SHA_KEY: file_sha256(npz)}
    tensors = {TENSOR_PREFIX + name: np.ascontiguousarray(a, dtype=np.float16)
               for name, a in sorted(stored.arrays.items())}
    return metadata, tensors
