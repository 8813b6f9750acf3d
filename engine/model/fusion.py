"""Cross-modal fusion: gated cross-attention between a vision stream and a text stream, both
at joint_dim (seed §3.2, DESIGN decisions 2 and 3).

Per block, every residual branch scaled by tanh(gate), each gate initialised to 0:
  v2l: vision queries read the *prompt* text        v = v + tanh(g_v2l) * xattn(v, t[:prompt])
  l2v: text queries read the vision stream          t = t + tanh(g_l2v) * xattn(t, v)
  mlp: one SwiGLU over both streams ("concat")      v, t = v, t + tanh(g_mlp) * mlp(v, t)

The text stream starts as t0 = text_in(norm(h)) from the language stream h, and fusion hands
back h + text_out(t - t0): only the change that the gated branches made, so with every gate at
0 the language stream passes through bit for bit (a pretrained backbone stays exact). The
joint embeddings that the JEPA head reads are t.

Causality. The text side of a block reads nothing but the vision stream, position by position,
so the only way text reaches another text position is through v2l. v2l reads text positions
< prompt_len only. Hence logits at positions >= prompt_len - 1 depend on tokens up to their own
position only (positions before that see the whole prompt, as in a prefix LM). `prompt_len`
may be an int or a (B,) tensor; 0 means the vision stream reads no text at all.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.config import ModelConfig
from engine.model.layers import CrossAttention, RMSNorm, SwiGLU


def prompt_key_mask(prompt_len: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) prompt lengths -> (B, T) bool, True for the text positions the vision may read.
    A row with an empty prompt gets key 0 switched on so attention stays finite; its v2l branch
    is zeroed by the caller."""
    pos = torch.arange(T, device=prompt_len.device)
    mask = pos[None, :] < prompt_len[:, None]  # (B, T)
    mask[:, 0] |= prompt_len == 0
    return mask


class FusionBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.v2l_q_norm, self.v2l_kv_norm = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.v2l = CrossAttention(dim, dim, n_heads)
        self.l2v_q_norm, self.l2v_kv_norm = RMSNorm(dim, eps), RMSNorm(dim, eps)
        self.l2v = CrossAttention(dim, dim, n_heads)
        self.mlp_norm = RMSNorm(dim, eps)
        self.mlp = SwiGLU(dim, hidden)
        # Flamingo gates: 0 at init so the block starts as the identity on both streams.
        self.v2l_gate = nn.Parameter(torch.zeros(1))
        self.l2v_gate = nn.Parameter(torch.zeros(1))
        self.mlp_gate = nn.Parameter(torch.zeros(1))

    def forward(self, v: torch.Tensor, t: torch.Tensor, prompt_len: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """v (B, N, D) vision stream, t (B, T, D) text stream, prompt_len (B,)."""
        if bool((prompt_len > 0).any()):
            mask = prompt_key_mask(prompt_len, t.shape[1])  # (B, T)
            read = self.v2l(self.v2l_q_norm(v), self.v2l_kv_norm(t), mask)  # (B, N, D)
            read = read * (prompt_len > 0).to(read.dtype)[:, None, None]
            v = v + torch.tanh(self.v2l_gate) * read
        t = t + torch.tanh(self.l2v_gate) * self.l2v(self.l2v_q_norm(t), self.l2v_kv_norm(v))
        mlp_gate = torch.tanh(self.mlp_gate)
        v = v + mlp_gate * self.mlp(self.mlp_norm(v))
        t = t + mlp_gate * self.mlp(self.mlp_norm(t))
        return v, t


class Fusion(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        fc, eps = cfg.fusion, cfg.epsilon
        d_lang, d_vis, D = cfg.language.hidden_size, cfg.vision.vision_hidden_dim, fc.joint_dim
        self.vision_in = nn.Linear(d_vis, D, bias=False)
        self.text_norm = RMSNorm(d_lang, eps)
        self.text_in = nn.Linear(d_lang, D, bias=False)
        self.blocks = nn.ModuleList(
            FusionBlock(D, fc.num_attention_heads, fc.intermediate_size, eps)
            for _ in range(fc.num_fusion_blocks))
        self.text_out = nn.Linear(D, d_lang, bias=False)

    def joint(self, h: torch.Tensor) -> torch.Tensor:
        """Language stream (B, T, d_lang) -> text joint embeddings t0 (B, T, D); with no image
        these are the joint embeddings."""
        return self.text_in(self.text_norm(h))

    def forward(self, h: torch.Tensor, vision: torch.Tensor, prompt_len: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, T, d_lang), vision tokens (B, N, d_vis), prompt_len (B,)
        -> (language stream for the AR head (B, T, d_lang), joint embeddings (B, T, D))."""
        v = self.vision_in(vision)  # (B, N, D)
        t0 = self.joint(h)  # (B, T, D)
        t = t0
        for block in self.blocks:
            v, t = block(v, t, prompt_len)
        return h + self.text_out(t - t0), t
