"""Auto-regressive head: causal decoder layers over the fused language stream and a final norm;
the LM head after it is a plain linear layer owned by the whole model (so it can be tied to the
token embedding).

It reads the language stream (language.hidden_size) after fusion has added its gated change,
so with no image the text path is language encoder -> AR head -> LM head, exactly. When its
width differs from the language stream's, an input projection is built."""

from __future__ import annotations

import torch
from torch import nn

from engine.config import ModelConfig
from engine.model.layers import DecoderStack, RMSNorm


class ARHead(DecoderStack):
    def __init__(self, cfg: ModelConfig) -> None:
        ac, d_in = cfg.autoregressive, cfg.language.hidden_size
        super().__init__(ac.num_layers, ac.hidden_size, ac.num_attention_heads,
                         ac.num_key_value_heads, ac.intermediate_size, cfg.epsilon,
                         cfg.language.max_position_embeddings, cfg.rotary_base)
        self.in_proj = (nn.Linear(d_in, ac.hidden_size, bias=False)
                        if d_in != ac.hidden_size else None)
        self.norm = RMSNorm(ac.hidden_size, cfg.epsilon)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, T, language hidden) -> normed states (B, T, AR hidden) for the LM head."""
        if self.in_proj is not None:
            h = self.in_proj(h)
        return self.norm(self.run_layers(h))
