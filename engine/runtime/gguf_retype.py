"""Write a copy of a GGUF file with its matrices in another format (F32, F16 or Q8_0).

Every tensor is unpacked to float32 with gguf's reference dequantizers; 2-D tensors are then
stored as `fmt` and 1-D tensors (norm weights, biases) as F32, as llama.cpp's converters do.
The metadata (hyperparameters, vocabulary, chat template) is copied unchanged except
`general.file_type`. Used to compare engines on the same weights at higher precision than a
file ships in, and to benchmark the formats a file does not ship in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import quants

# ggml's llama_ftype numbers for general.file_type.
_FILE_TYPE = {"F32": 0, "F16": 1, "Q8_0": 7}


def retype_gguf(src: str | Path, dst: str | Path, fmt: str) -> Path:
    """Write `src` to `dst` with every matrix stored as `fmt`; returns `dst`."""
    import gguf

    if fmt not in _FILE_TYPE:
        raise ValueError(f"cannot retype to {fmt!r}: choose one of {sorted(_FILE_TYPE)}")
    reader = gguf.GGUFReader(str(src))
    arch = str(reader.fields["general.architecture"].contents())
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".partial")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue  # the writer writes these itself
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    writer.add_file_type(_FILE_TYPE[fmt])
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = tuple(int(d) for d in reversed(t.shape))  # numpy order: rows first
        w = w.reshape(shape)
        if w.ndim == 1 or fmt == "F32":
            writer.add_tensor(t.name, w)
        elif fmt == "F16":
            writer.add_tensor(t.name, w.astype(np.float16))
        else:
            packed = quants.quantize(w, fmt)
            writer.add_tensor(t.name, packed, raw_dtype=gguf.GGMLQuantizationType[fmt])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dst)
    return dst


def retyped_copy(src: str | Path, fmt: str, cache_dir: str | Path) -> Path:
    """`src` retyped to `fmt` inside `cache_dir`, written once and reused afterwards."""
    src = Path(src)
    dst = Path(cache_dir) / f"{src.stem}.as-{fmt}.gguf"
    if not dst.is_file() or dst.stat().st_mtime < src.stat().st_mtime:
        dst.parent.mkdir(parents=True, exist_ok=True)
        retype_gguf(src, dst, fmt)
    return dst
