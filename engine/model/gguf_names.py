"""Names of llama-architecture GGUF tensors in Cromwell's model, both ways, and the Q/K row
order. Torch-free (numpy only), so the runtime and the exporter share it with the trainer.

A llama GGUF (SmolLM2 in cromwell-smol) holds `n_layers` blocks. The first `n_encoder_layers`
are the language encoder, the rest the AR head:

    token_embd.weight          language.embed.weight
    blk.N.attn_norm.weight     {stack}.layers.{i}.attn_norm.weight
    blk.N.attn_q.weight        {stack}.layers.{i}.attn.q_proj.weight   (rows permuted, below)
    blk.N.attn_k.weight        {stack}.layers.{i}.attn.k_proj.weight   (rows permuted, below)
    blk.N.attn_v.weight        {stack}.layers.{i}.attn.v_proj.weight
    blk.N.attn_output.weight   {stack}.layers.{i}.attn.o_proj.weight
    blk.N.ffn_norm.weight      {stack}.layers.{i}.mlp_norm.weight
    blk.N.ffn_gate.weight      {stack}.layers.{i}.mlp.gate_proj.weight
    blk.N.ffn_up.weight        {stack}.layers.{i}.mlp.up_proj.weight
    blk.N.ffn_down.weight      {stack}.layers.{i}.mlp.down_proj.weight
    output_norm.weight         ar_head.norm.weight
    output.weight              lm_head.weight   (absent when the embeddings are tied)

with {stack}, i = ("language", N) for N < n_encoder_layers, else ("ar_head", N - n_encoder_layers).

Q/K row order. Our model (like HF transformers) applies RoPE in the "half" layout: frequency j
rotates the pair (x[j], x[j + head_dim/2]) of each head. ggml's llama RoPE rotates adjacent pairs
(x[2j], x[2j+1]). llama.cpp's converter therefore stores attn_q and attn_k with the rows of each
head permuted, HF row j -> GGUF row 2j, HF row j + head_dim/2 -> GGUF row 2j + 1
(`hf_to_gguf_qk`; Q uses n_head, K uses n_head_kv). Loading a llama GGUF into this model applies
the inverse, `gguf_to_hf_qk`; exporting applies `hf_to_gguf_qk`. The attention scores are the
same either way: the permutation is applied to q and k alike.
"""

from __future__ import annotations

import re

import numpy as np

_BLOCK = {
    "attn_norm": "attn_norm",
    "attn_q": "attn.q_proj",
    "attn_k": "attn.k_proj",
    "attn_v": "attn.v_proj",
    "attn_output": "attn.o_proj",
    "ffn_norm": "mlp_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL = {
    "token_embd": "language.embed",
    "output_norm": "ar_head.norm",
    "output": "lm_head",
}
_BLK_RE = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")
_OURS_RE = re.compile(r"(language|ar_head)\.layers\.(\d+)\.([\w.]+)\.(weight|bias)")


def llama_to_cromwell(gguf_name: str, n_encoder_layers: int) -> str | None:
    """'blk.25.attn_q.weight' -> 'ar_head.layers.1.attn.q_proj.weight' (24 encoder layers).
    None for a tensor this mapping does not know (e.g. rope_freqs)."""
    m = _BLK_RE.fullmatch(gguf_name)
    if m:
        n, kind, suffix = int(m.group(1)), m.group(2), m.group(3)
        if kind not in _BLOCK:
            return None
        stack, i = ("language", n) if n < n_encoder_layers else ("ar_head", n - n_encoder_layers)
        return f"{stack}.layers.{i}.{_BLOCK[kind]}.{suffix}"
    base, _, suffix = gguf_name.rpartition(".")
    return f"{_GLOBAL[base]}.{suffix}" if base in _GLOBAL else None


def cromwell_to_llama(name: str, n_encoder_layers: int) -> str | None:
    """The inverse of llama_to_cromwell; None for tensors llama has no name for (vision,
    fusion, JEPA: those get Cromwell's own GGUF keys)."""
    m = _OURS_RE.fullmatch(name)
    if m:
        stack, i, kind, suffix = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        inverse = {v: k for k, v in _BLOCK.items()}
        if kind not in inverse:
            return None
        n = i if stack == "language" else i + n_encoder_layers
        return f"blk.{n}.{inverse[kind]}.{suffix}"
    base, _, suffix = name.rpartition(".")
    inverse_global = {v: k for k, v in _GLOBAL.items()}
    return f"{inverse_global[base]}.{suffix}" if base in inverse_global else None


def hf_to_gguf_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder the rows of a Q or K weight (n_heads * head_dim, in) from the half RoPE layout to
    ggml's interleaved one. Pass n_head for Q, n_head_kv for K."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)


def gguf_to_hf_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of hf_to_gguf_qk."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(
        w.shape)
