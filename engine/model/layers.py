"""Layers shared by every part of the model: RMSNorm, RoPE, SwiGLU, attention, decoder block.

Parameter names follow the llama layout (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj,
down_proj) so pretrained llama weights map one to one (see gguf_names.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 (as llama does) so low-precision training matches the runtime.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_cache(head_dim: int, max_len: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, (max_len, head_dim), in the HF/llama "half" layout: frequency i
    rotates the pair (x[i], x[i + head_dim/2])."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    t = torch.arange(max_len, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)  # (max_len, head_dim/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (max_len, head_dim)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, nh, T, hs); cos, sin (T, hs)."""
    return (x * cos + rotate_half(x) * sin).type_as(x)


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x))."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, out_dim or dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class CausalSelfAttention(nn.Module):
    """Causal grouped-query attention with RoPE (n_kv_heads == 1 is multi-query)."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = dim // n_heads
        self.q_proj = nn.Linear(dim, n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * self.head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        hs = self.head_dim
        q = self.q_proj(x).view(B, T, self.n_heads, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, hs).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rope(q, cos[:T], sin[:T]), apply_rope(k, cos[:T], sin[:T])
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           enable_gqa=self.n_kv_heads != self.n_heads)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))  # (B, T, dim)


class CrossAttention(nn.Module):
    """Queries from one stream, keys/values from another; no positions (the streams carry their
    own). `key_mask` (B, S) bool marks the keys each row may read."""

    def __init__(self, dim: int, kv_dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(kv_dim, dim, bias=False)
        self.v_proj = nn.Linear(kv_dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        S, nh, hs = ctx.shape[1], self.n_heads, self.head_dim
        q = self.q_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(ctx).view(B, S, nh, hs).transpose(1, 2)  # (B, nh, S, hs)
        v = self.v_proj(ctx).view(B, S, nh, hs).transpose(1, 2)  # (B, nh, S, hs)
        mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))  # (B, T, dim)


class DecoderBlock(nn.Module):
    """Pre-norm llama block: x + attn(norm(x)), then + mlp(norm(x))."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, hidden: int,
                 eps: float) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(dim, eps)
        self.attn = CausalSelfAttention(dim, n_heads, n_kv_heads)
        self.mlp_norm = RMSNorm(dim, eps)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class DecoderStack(nn.Module):
    """A run of causal decoder blocks sharing one RoPE table. The language encoder, the AR head
    and the JEPA context encoder extend it, so their weights are named `layers.{i}.attn.q_proj`
    and so on, the same in every part of the model."""

    def __init__(self, n_layers: int, dim: int, n_heads: int, n_kv_heads: int, hidden: int,
                 eps: float, max_len: int, rope_base: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderBlock(dim, n_heads, n_kv_heads, hidden, eps) for _ in range(n_layers))
        cos, sin = rope_cache(dim // n_heads, max_len, rope_base)
        # Derived from the config, so not saved with the weights.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def run_layers(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, dim) -> (B, T, dim), causal."""
        T = x.shape[1]
        if self.rope_cos.shape[0] < T:
            raise ValueError(f"sequence of {T} tokens is longer than max_position_embeddings "
                             f"{self.rope_cos.shape[0]}")
        for layer in self.layers:
            x = layer(x, self.rope_cos, self.rope_sin)
        return x


def init_weights(module: nn.Module, std: float) -> None:
    """Normal(0, std) for every linear and embedding weight, zero biases. Norm weights keep 1
    and the fusion gates keep 0 (they are plain parameters, untouched here)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
