"""The text path of a `cromwell` (or llama) GGUF as a lean torch model for fine-tuning: token
embedding, the decoder blocks (language encoder and AR head in one run, as the runtime runs
them), the final norm, and the LM head tied to the embedding. Weights are dequantised from the
file the runtime reads, so training starts from exactly the weights it serves.

Rows are packed: several examples share a row, each with its own positions (RoPE restarts at
0) and a block-diagonal causal mask, so no example attends to another. The LM head is applied
only where a loss is taken. The 4 FIM tokens are new to the vocabulary: their embedding rows
are a trainable parameter of their own (`new_rows`), used both for lookup and, the embedding
being tied, as the LM head's rows for those tokens.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.model.gguf_names import gguf_to_hf_qk
from engine.model.layers import DecoderBlock, RMSNorm, apply_rope, rope_cache
from engine.model.lora import TARGETS, LoRALinear

_MODULES = {"attn_q": "attn.q_proj", "attn_k": "attn.k_proj", "attn_v": "attn.v_proj",
            "attn_output": "attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj", "attn_norm": "attn_norm", "ffn_norm": "mlp_norm"}


def _field(reader: gguf.GGUFReader, key: str) -> float:
    field = reader.fields.get(key)
    if field is None:
        raise ValueError(f"the GGUF file lacks the key {key}")
    return float(field.parts[field.data[0]][0])


class TextModel(nn.Module):
    def __init__(self, vocab: int, dim: int, layers: int, heads: int, kv_heads: int,
                 hidden: int, eps: float, rope_base: float, max_len: int = 4096) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(vocab, dim), requires_grad=False)
        self.layers = nn.ModuleList(
            DecoderBlock(dim, heads, kv_heads, hidden, eps) for _ in range(layers))
        self.norm = RMSNorm(dim, eps)
        cos, sin = rope_cache(dim // heads, max_len, rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.first_new = vocab  # the first of the trainable new rows (none yet)
        self.new_rows: nn.Parameter | None = None

    # --- adapters --------------------------------------------------------------------------
    def add_lora(self, rank: int, alpha: float) -> None:
        """Freeze every weight; put a LoRA adapter on each block's projections."""
        for p in self.parameters():
            p.requires_grad_(False)
        for block in self.layers:
            for kind in TARGETS:
                parent_name, _, attr = _MODULES[kind].rpartition(".")
                parent = block.get_submodule(parent_name)
                setattr(parent, attr, LoRALinear(getattr(parent, attr), rank, alpha))

    def train_new_rows(self, first: int) -> None:
        """Rows first.. of the (tied) embedding become a trainable parameter."""
        self.first_new = first
        self.new_rows = nn.Parameter(self.embed[first:].detach().clone())

    def adapters(self) -> dict[str, LoRALinear]:
        """GGUF tensor name ("blk.3.attn_q.weight") -> its adapter."""
        out = {}
        for n, block in enumerate(self.layers):
            for kind in TARGETS:
                m = block.get_submodule(_MODULES[kind])
                if isinstance(m, LoRALinear):
                    out[f"blk.{n}.{kind}.weight"] = m
        return out

    # --- forward ---------------------------------------------------------------------------
    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = F.embedding(tokens, self.embed)
        if self.new_rows is None:
            return x
        new = tokens >= self.first_new
        rows = self.new_rows[(tokens - self.first_new).clamp(min=0)]
        return torch.where(new[..., None], rows, x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (N, vocab) for states (N, dim), the new rows in place of the file's."""
        if self.new_rows is None:
            return h @ self.embed.t().to(h.dtype)
        old = h @ self.embed[: self.first_new].t().to(h.dtype)
        return torch.cat([old, h @ self.new_rows.t().to(h.dtype)], dim=-1)

    def hidden(self, tokens: torch.Tensor, positions: torch.Tensor,
               docs: torch.Tensor) -> torch.Tensor:
        """tokens, positions, docs (B, T): the final normed states (B, T, dim). A token
        attends to earlier tokens of its own document (docs equal) only."""
        T = tokens.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        mask = (causal & (docs[:, :, None] == docs[:, None, :]))[:, None]  # (B, 1, T, T)
        cos = self.rope_cos[positions][:, None]  # (B, 1, T, hs)
        sin = self.rope_sin[positions][:, None]
        x = self._embed(tokens)
        for block in self.layers:
            x = x + _attention(block.attn, block.attn_norm(x), cos, sin, mask)
            x = x + block.mlp(block.mlp_norm(x))
        return self.norm(x)

    def token_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of each scored position, and the document (example index) of each."""
        h = self.hidden(batch["tokens"], batch["positions"], batch["docs"])
        labels = batch["labels"]
        where = labels >= 0
        logits = self.head(h[where]).float()
        return F.cross_entropy(logits, labels[where], reduction="none"), batch["docs"][where]


def _attention(attn: nn.Module, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
    B, T, _ = x.shape
    hs = attn.head_dim
    q = attn.q_proj(x).view(B, T, attn.n_heads, hs).transpose(1, 2)
    k = attn.k_proj(x).view(B, T, attn.n_kv_heads, hs).transpose(1, 2)
    v = attn.v_proj(x).view(B, T, attn.n_kv_heads, hs).transpose(1, 2)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                       enable_gqa=attn.n_kv_heads != attn.n_heads)
    return attn.o_proj(y.transpose(1, 2).reshape(B, T, -1))


def _dequantised(t: gguf.ReaderTensor) -> np.ndarray:
    shape = [int(d) for d in reversed(t.shape)]
    return np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32
                    ).reshape(shape)


@torch.no_grad()
def load_text_model(path: str | Path, variant: str = "") -> TextModel:
    """The text path of the GGUF at `path` (architecture `cromwell` or `llama`); `variant`
    ("tuned."): the file's second copy of the matrices it holds one of (an adapter merged in
    beside the base, engine/train/export.py) in place of the base's."""
    reader = gguf.GGUFReader(str(path))
    arch_field = reader.fields["general.architecture"]
    arch = bytes(arch_field.parts[arch_field.data[0]]).decode()
    heads = int(_field(reader, f"{arch}.attention.head_count"))
    kv = int(_field(reader, f"{arch}.attention.head_count_kv"))
    tensors = {t.name: t for t in reader.tensors}
    embed = _dequantised(tensors.get(variant + "token_embd.weight", tensors["token_embd.weight"]))
    model = TextModel(
        vocab=embed.shape[0], dim=embed.shape[1],
        layers=int(_field(reader, f"{arch}.block_count")), heads=heads, kv_heads=kv,
        hidden=int(_field(reader, f"{arch}.feed_forward_length")),
        eps=_field(reader, f"{arch}.attention.layer_norm_rms_epsilon"),
        rope_base=_field(reader, f"{arch}.rope.freq_base"))
    model.embed.copy_(torch.from_numpy(embed))
    model.norm.weight.copy_(torch.from_numpy(_dequantised(tensors["output_norm.weight"])))
    if "output.weight" in tensors:
        raise ValueError(f"{path}: an untied LM head; the text model ties it to the embedding")
    for n, block in enumerate(model.layers):
        for kind, module in _MODULES.items():
            name = f"blk.{n}.{kind}.weight"
            w = _dequantised(tensors.get(variant + name, tensors[name]))
            if kind in ("attn_q", "attn_k"):
                w = gguf_to_hf_qk(w, heads if kind == "attn_q" else kv)
            block.get_submodule(module).weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    return model
