"""Load a llama-architecture GGUF (SmolLM2 for cromwell-smol) into the language path of a
VLJEPA model: language encoder, AR head, final norm and LM head. Vision, fusion and JEPA keep
their fresh init; with the fusion gates at 0 the model then computes exactly the llama model.

Quantised tensors (Q4_1, Q8_0, ...) are dequantised to float32 with the `gguf` package. Q/K
rows are brought back from ggml's interleaved RoPE order (see gguf_names.py). A vocabulary
larger than the file's (the added special and FIM tokens) keeps the file's rows and starts the
new rows at the mean embedding, a common choice that keeps their first logits unremarkable.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch

from engine.model.gguf_names import gguf_to_hf_qk, llama_to_cromwell
from engine.model.vljepa import VLJEPA


def _field(reader: gguf.GGUFReader, key: str) -> int | float | str:
    field = reader.fields.get(key)
    if field is None:
        raise ValueError(f"GGUF file lacks the key {key}")
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types[0] == gguf.GGUFValueType.STRING else value[0]


def _check_shape(reader: gguf.GGUFReader, model: VLJEPA, path: Path) -> None:
    cfg = model.cfg
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"{path}: architecture {arch!r}, expected 'llama'")
    expected = {
        "llama.block_count": cfg.language.num_layers + cfg.autoregressive.num_layers,
        "llama.embedding_length": cfg.language.hidden_size,
        "llama.feed_forward_length": cfg.language.intermediate_size,
        "llama.attention.head_count": cfg.language.num_attention_heads,
        "llama.attention.head_count_kv": cfg.language.num_key_value_heads,
    }
    for key, want in expected.items():
        got = int(_field(reader, key))
        if got != want:
            raise ValueError(f"{path}: {key} is {got}, the config needs {want}")


def _weight(tensor: gguf.ReaderTensor) -> np.ndarray:
    """The tensor as float32 in torch's (out, in) order (GGUF lists dims innermost first)."""
    shape = [int(d) for d in reversed(tensor.shape)]
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape)


@torch.no_grad()
def load_llama_gguf(model: VLJEPA, path: str | Path) -> list[str]:
    """Copy the llama tensors of `path` into `model`; returns the parameter names loaded.
    Fails, naming the tensor, on any shape that does not fit, and if a language-path weight is
    left without a value."""
    path = Path(path)
    reader = gguf.GGUFReader(path)
    _check_shape(reader, model, path)
    lc = model.cfg.language
    params = dict(model.named_parameters())
    heads = {"attn_q": lc.num_attention_heads, "attn_k": lc.num_key_value_heads}
    loaded = []
    for tensor in reader.tensors:
        name = llama_to_cromwell(tensor.name, lc.num_layers)
        if name is None:
            continue
        w = _weight(tensor)
        kind = tensor.name.split(".")[-2]
        if kind in heads:
            w = gguf_to_hf_qk(w, heads[kind])
        p = params[name]
        if name == "language.embed.weight" and w.shape[0] < p.shape[0]:
            extra = np.repeat(w.mean(0, keepdims=True), p.shape[0] - w.shape[0], axis=0)
            w = np.concatenate([w, extra])
        if tuple(w.shape) != tuple(p.shape):
            raise ValueError(f"{path}: {tensor.name} has shape {w.shape}, {name} needs "
                             f"{tuple(p.shape)}")
        p.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))  # a writable copy
        loaded.append(name)
    wanted = {n for n in params if n.startswith(("language.", "ar_head.", "lm_head."))}
    missing = wanted - set(loaded) - {"ar_head.in_proj.weight"}
    if model.cfg.tie_word_embeddings:
        missing.discard("lm_head.weight")
    if missing:
        raise ValueError(f"{path}: no tensor for {', '.join(sorted(missing))}")
    if model.target is not None:
        model.update_ema(0.0)  # the EMA target starts from the loaded weights
    return loaded
