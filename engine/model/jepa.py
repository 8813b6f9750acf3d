"""JEPA head (DESIGN decision 5): from the joint embeddings z_{<=t}, predict z_{t+1..t+k}.

A causal context encoder (decoder layers at joint_dim, so a prediction at t never sees t+1)
followed by one SwiGLU MLP per step. Targets come from an EMA copy of the context path (vision,
language, fusion), layer-normed, under stop-gradient; the momentum follows the I-JEPA schedule,
linear from ema_momentum_start to ema_momentum_end over training.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.config import ModelConfig
from engine.model.layers import DecoderStack, RMSNorm, SwiGLU


class JEPAPredictor(DecoderStack):
    def __init__(self, cfg: ModelConfig) -> None:
        jc = cfg.jepa
        super().__init__(jc.num_context_layers, jc.hidden_dim, jc.num_attention_heads,
                         jc.num_attention_heads, jc.intermediate_size, cfg.epsilon,
                         cfg.language.max_position_embeddings, cfg.rotary_base)
        self.norm = RMSNorm(jc.hidden_dim, cfg.epsilon)
        self.steps = nn.ModuleList(
            SwiGLU(jc.hidden_dim, jc.predictor_intermediate_size)
            for _ in range(jc.prediction_steps))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, T, D) joint embeddings -> predictions (B, T, steps, D); [:, t, k-1] is the
        prediction of z_{t+k}."""
        c = self.norm(self.run_layers(z))  # (B, T, D)
        return torch.stack([step(c) for step in self.steps], dim=2)  # (B, T, S, D)


def ema_momentum(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear momentum schedule (I-JEPA): `start` at step 0, `end` at total_steps and after."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    frac = min(max(step, 0), total_steps) / total_steps
    return start + (end - start) * frac


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
    for p_t, p_o in zip(target.parameters(), online.parameters(), strict=True):
        p_t.lerp_(p_o, 1.0 - momentum)
