"""Language encoder: token embedding + causal decoder layers (RoPE, grouped-query attention,
SwiGLU, RMSNorm). No final norm: its output is a residual stream that fusion and the AR head
read through their own pre-norms (for cromwell-smol these are SmolLM2's layers 0..23)."""

from __future__ import annotations

import torch
from torch import nn

from engine.config import ModelConfig
from engine.model.layers import DecoderStack


class LanguageEncoder(DecoderStack):
    def __init__(self, cfg: ModelConfig) -> None:
        lc = cfg.language
        super().__init__(lc.num_layers, lc.hidden_size, lc.num_attention_heads,
                         lc.num_key_value_heads, lc.intermediate_size, cfg.epsilon,
                         lc.max_position_embeddings, cfg.rotary_base)
        self.embed = nn.Embedding(lc.vocab_size, lc.hidden_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int64 -> hidden states (B, T, hidden)."""
        return self.run_layers(self.embed(tokens))
