"""The training objective per step: the model's LM and JEPA losses weighted for the stage,
and the EMA momentum of the JEPA target at each optimiser step (I-JEPA schedule)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from engine.config import ModelConfig
from engine.model.jepa import ema_momentum
from engine.model.losses import IGNORE_INDEX, Losses


def next_token_targets(tokens: torch.Tensor) -> torch.Tensor:
    """Targets for a batch that brings none: each position predicts the next token, the last
    position predicts nothing."""
    targets = torch.full_like(tokens, IGNORE_INDEX)
    targets[:, :-1] = tokens[:, 1:]
    return targets


def batch_losses(model: nn.Module, batch: Mapping[str, Any], jepa_weight: float,
                 lm_weight: float) -> Losses:
    """Forward one batch (`tokens`, optional `image`, `prompt_len`, `targets`) through `model`
    (a VLJEPA, possibly wrapped by DDP/FSDP) -> losses, `total` weighted for the stage."""
    tokens = batch["tokens"]
    targets = batch.get("targets")
    if targets is None:
        targets = next_token_targets(tokens)
    _, losses = model(tokens, image=batch.get("image"), prompt_len=batch.get("prompt_len"),
                      targets=targets)
    assert losses is not None  # targets were given
    total = jepa_weight * losses.jepa + lm_weight * losses.lm
    return Losses(total=total, lm=losses.lm, jepa=losses.jepa)


def ema_momentum_at(step: int, total_steps: int, cfg: ModelConfig) -> float:
    """Momentum of the EMA update after optimiser step `step` (0-based) of `total_steps`."""
    return ema_momentum(step, total_steps, cfg.jepa.ema_momentum_start,
                        cfg.jepa.ema_momentum_end)


def batch_to(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


def count_tokens(batch: Mapping[str, Any]) -> int:
    return int(batch["tokens"].numel())
