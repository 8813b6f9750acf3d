"""What a model load learns about a GGUF file, kept for the next load of the same file.

Decoding the vocabulary's arrays (49k-151k tokens and merges) from the header is most of a
first load. A cache entry holds the checked vocabulary (`VocabSpec`, packed) and the header's
`HeaderLayout`, so the next load skips the arrays and the native tokenizer builds straight
from the entry's blobs.

An entry is found by the file's path, size and mtime, and it is trusted only if the CRC-32 of
the file's whole key/value section (every tokenizer key included) still equals the one it
records: a file rewritten in place with the same size and mtime but another vocabulary gets a
new tokenizer. An entry that is truncated, corrupt or of another format is rebuilt, never
used; an entry that cannot be written (read-only cache) only costs the next load the full
build.

Entry format: a magic line, a JSON line (layout, the spec's small fields, the blobs' lengths
and CRC-32), then three blobs: the tokens as UTF-8 joined by NUL (a vocabulary with a NUL
inside a token is not cached), then the merges' left and right sides as int32 token ids. Not
JSON, because decoding 150k JSON strings would cost what the cache saves; ids, not strings, for
the merges, which is what the native tokenizer's tables hold.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.runtime import model_store
from engine.runtime.gguf_file import HeaderLayout
from engine.tokenizers.gguf_import import VocabSpec, VocabTables

MAGIC = b"cromwell-load-cache 3\n"
SEP = "\0"
# Text in a GGUF file may hold invalid UTF-8 kept as surrogates; they must survive the trip.
ENCODING_ERRORS = "surrogatepass"


# (header layout, vocabulary) as an entry holds them. A plain tuple: a dataclass would be
# compiled when this module is imported, which happens inside the first load.
CachedLoad = tuple[HeaderLayout, VocabSpec]


def cache_dir() -> Path:
    """$CROMWELL_LOAD_CACHE, else load-cache/ in the model cache."""
    return Path(os.environ.get("CROMWELL_LOAD_CACHE") or model_store.cromwell_home() / "load-cache")


def entry_path(gguf_path: Path) -> Path:
    """The entry for the file as it is now (path, size, mtime)."""
    st = gguf_path.stat()
    ident = f"{gguf_path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode(
        "utf-8", ENCODING_ERRORS
    )
    # A name, not a check (two files that shared one would only rebuild each other's entry,
    # whose recorded CRC-32 would not match): two checksums, 64 bits, with no hashlib, whose
    # OpenSSL import alone costs a load 3 ms.
    return cache_dir() / f"{zlib.crc32(ident):08x}{zlib.adler32(ident):08x}.bin"


def read(gguf_path: Path) -> CachedLoad | None:
    """The entry for `gguf_path`, or None if there is none or it does not read back whole.
    The caller still checks `layout` against the file (GGUFFile does)."""
    try:
        raw = entry_path(gguf_path).read_bytes()
    except OSError:
        return None
    try:
        return _decode(raw)
    except (ValueError, KeyError, TypeError, IndexError):  # json errors are ValueErrors
        return None


def write(gguf_path: Path, layout: HeaderLayout, spec: VocabSpec) -> bool:
    """Store the entry for `gguf_path` (atomically: a reader never sees half of one). False
    when it cannot be stored: a NUL inside a token, or a cache that cannot be written."""
    import tempfile  # only a first load writes an entry

    packed = spec.tables
    if packed is not None:  # packed by vocab_spec: no token holds a NUL
        n_tokens, sides = packed.n_tokens, [packed.lefts, packed.rights]
        tokens_utf8 = bytes(packed.tokens_utf8)
    else:
        if any(SEP in t for t in spec.tokens):
            return False
        if spec.merge_ids is None:
            return False  # a merge of strings that are not tokens: the tokenizer rejects it
        n_tokens, sides = len(spec.tokens), list(spec.merge_ids)
        tokens_utf8 = SEP.join(spec.tokens).encode("utf-8", ENCODING_ERRORS)
    sides = [np.ascontiguousarray(a, "<i4") for a in sides]
    blobs = [tokens_utf8] + [a.tobytes() for a in sides]
    header = {
        "layout": {
            "kv_end": layout.kv_end,
            "kv_crc32": layout.kv_crc32,
            "string_arrays": [[s, n, e] for s, (n, e) in layout.string_arrays.items()],
        },
        "spec": {
            "n_tokens": n_tokens,
            "n_merges": len(sides[0]),
            "pre": spec.pre,
            "special": spec.special,
            "user_defined": spec.user_defined,
            "bos_id": spec.bos_id,
            "eos_id": spec.eos_id,
            "pad_id": spec.pad_id,
            "unk_id": spec.unk_id,
            "add_bos": spec.add_bos,
            "add_eos": spec.add_eos,
            "chat_template": spec.chat_template,
        },
        "blobs": [len(b) for b in blobs],
        "blobs_crc32": _crc32(blobs),
    }
    head = json.dumps(header, ensure_ascii=True).encode("ascii")
    try:
        target = entry_path(gguf_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".entry-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(MAGIC + head + b"\n")
                for b in blobs:
                    out.write(b)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def _crc32(blobs: list[bytes] | list[memoryview]) -> int:
    # Against a torn or damaged entry, which is all an entry has to fear (the file it describes
    # is checked separately): CRC-32 is 3x cheaper than SHA-1 here, on the load's path.
    crc = 0
    for b in blobs:
        crc = zlib.crc32(b, crc)
    return crc


def _merge_ids(blob: memoryview, n: int) -> np.ndarray:
    if len(blob) != 4 * n:
        raise ValueError(f"expected {n} merge ids, found {len(blob) // 4}")
    return np.frombuffer(blob, "<i4")


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _decode(raw: bytes) -> CachedLoad:
    if not raw.startswith(MAGIC):
        raise ValueError("not a load-cache entry of this format")
    end = raw.index(b"\n", len(MAGIC))
    header = json.loads(raw[len(MAGIC) : end])
    body = memoryview(raw)[end + 1 :]
    sizes = [int(n) for n in header["blobs"]]
    if len(sizes) != 3 or sum(sizes) != len(body):
        raise ValueError("blob lengths do not add up to the entry's size")
    blobs, at = [], 0
    for n in sizes:
        blobs.append(body[at : at + n])
        at += n
    if _crc32(blobs) != int(header["blobs_crc32"]):
        raise ValueError("blobs do not match their CRC-32")
    lay, sp = header["layout"], header["spec"]
    n_tokens, n_merges = int(sp["n_tokens"]), int(sp["n_merges"])
    # The blobs as they are: the native tokenizer builds from them (it checks the token
    # count and the ids' range), with no Python object per token.
    tables = VocabTables(blobs[0], n_tokens, _merge_ids(blobs[1], n_merges),
                         _merge_ids(blobs[2], n_merges))
    layout = HeaderLayout(
        kv_end=int(lay["kv_end"]),
        kv_crc32=int(lay["kv_crc32"]),
        string_arrays={int(s): (int(n), int(e)) for s, n, e in lay["string_arrays"]},
    )
    template = sp["chat_template"]
    spec = VocabSpec(
        tokens=[],
        merges=[],
        pre=str(sp["pre"]),
        special=[str(t) for t in sp["special"]],
        user_defined=[str(t) for t in sp["user_defined"]],
        bos_id=_optional_int(sp["bos_id"]),
        eos_id=_optional_int(sp["eos_id"]),
        pad_id=_optional_int(sp["pad_id"]),
        unk_id=_optional_int(sp["unk_id"]),
        add_bos=bool(sp["add_bos"]),
        add_eos=bool(sp["add_eos"]),
        chat_template=None if template is None else str(template),
        tables=tables,
    )
    return layout, spec
