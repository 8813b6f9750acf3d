"""What a model load learns about a GGUF file, kept for the next load of the same file.

Building the tokenizer (49k tokens, 49k merges) and decoding those arrays from the header
are most of a load. A cache entry holds the checked vocabulary (`VocabSpec`) and the header's
`HeaderLayout`, so the next load skips the arrays and rebuilds the tokenizer from plain lists.

An entry is found by the file's path, size and mtime, and it is trusted only if the SHA-1 of
the file's whole key/value section (every tokenizer key included) still equals the one it
records: a file rewritten in place with the same size and mtime but another vocabulary gets a
new tokenizer. An entry that is truncated, corrupt or of another format is rebuilt, never
used; an entry that cannot be written (read-only cache) only costs the next load the full
build.

Entry format: a magic line, a JSON line (layout, the spec's small fields, the blobs' lengths
and SHA-1), then three blobs: the tokens, the merges' left and right sides, each UTF-8 of the
strings joined by NUL (a vocabulary with a NUL inside a token is not cached). Plain splits,
not JSON, because decoding 150k JSON strings would cost what the cache saves.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.runtime import model_store
from engine.runtime.gguf_file import HeaderLayout
from engine.tokenizers.gguf_import import VocabSpec

MAGIC = b"cromwell-load-cache 1\n"
SEP = "\0"
# Text in a GGUF file may hold invalid UTF-8 kept as surrogates; they must survive the trip.
ENCODING_ERRORS = "surrogatepass"


@dataclass(frozen=True)
class CachedLoad:
    layout: HeaderLayout
    spec: VocabSpec


def cache_dir() -> Path:
    """$CROMWELL_LOAD_CACHE, else load-cache/ in the model cache."""
    return Path(os.environ.get("CROMWELL_LOAD_CACHE") or model_store.cromwell_home() / "load-cache")


def entry_path(gguf_path: Path) -> Path:
    """The entry for the file as it is now (path, size, mtime)."""
    st = gguf_path.stat()
    ident = f"{gguf_path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode(
        "utf-8", ENCODING_ERRORS
    )
    return cache_dir() / f"{hashlib.sha1(ident).hexdigest()}.bin"


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
    lists = (spec.tokens, [m[0] for m in spec.merges], [m[1] for m in spec.merges])
    if any(SEP in s for strings in lists for s in strings):
        return False
    blobs = [SEP.join(strings).encode("utf-8", ENCODING_ERRORS) for strings in lists]
    header = {
        "layout": {
            "kv_end": layout.kv_end,
            "kv_sha1": layout.kv_sha1,
            "string_arrays": [[s, n, e] for s, (n, e) in layout.string_arrays.items()],
        },
        "spec": {
            "n_tokens": len(spec.tokens),
            "n_merges": len(spec.merges),
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
        "blobs_sha1": _sha1(blobs),
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


def _sha1(blobs: list[bytes]) -> str:
    digest = hashlib.sha1()
    for b in blobs:
        digest.update(b)
    return digest.hexdigest()


def _split(blob: bytes, n: int) -> list[str]:
    strings = blob.decode("utf-8", ENCODING_ERRORS).split(SEP) if n else []
    if len(strings) != n:
        raise ValueError(f"expected {n} strings, found {len(strings)}")
    return strings


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
        blobs.append(bytes(body[at : at + n]))
        at += n
    if _sha1(blobs) != header["blobs_sha1"]:
        raise ValueError("blobs do not match their SHA-1")
    lay, sp = header["layout"], header["spec"]
    tokens = _split(blobs[0], int(sp["n_tokens"]))
    lefts = _split(blobs[1], int(sp["n_merges"]))
    rights = _split(blobs[2], int(sp["n_merges"]))
    layout = HeaderLayout(
        kv_end=int(lay["kv_end"]),
        kv_sha1=str(lay["kv_sha1"]),
        string_arrays={int(s): (int(n), int(e)) for s, n, e in lay["string_arrays"]},
    )
    template = sp["chat_template"]
    spec = VocabSpec(
        tokens=tokens,
        merges=list(zip(lefts, rights, strict=True)),
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
    )
    return CachedLoad(layout, spec)
