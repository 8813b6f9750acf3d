"""The hybrid objective (seed §3.3): L = jepa_weight * L_JEPA + lm_weight * L_LM."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Targets equal to this are not scored (padding, prompt positions); torch's own default.
IGNORE_INDEX = -100


@dataclass
class Losses:
    total: torch.Tensor
    lm: torch.Tensor
    jepa: torch.Tensor


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy; logits (B, T, V), targets (B, T) with IGNORE_INDEX holes."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(),
                           ignore_index=IGNORE_INDEX)


def jepa_loss(pred: torch.Tensor, target_z: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """MSE between predictions and layer-normed target embeddings.

    pred (B, T, S, D): pred[:, t, k-1] predicts z_{t+k}. target_z (B, T, D), no gradient.
    scored (B, T) bool: positions whose next token is scored (targets != IGNORE_INDEX). Step k
    at position t counts when t is scored and so is t+k-1, i.e. the token at t+k is real.
    """
    T, S, D = pred.shape[1], pred.shape[2], pred.shape[3]
    tgt = F.layer_norm(target_z.detach().float(), (D,))  # (B, T, D)
    total = pred.new_zeros((), dtype=torch.float32)
    count = pred.new_zeros((), dtype=torch.float32)
    for k in range(1, min(S, T - 1) + 1):
        err = (pred[:, : T - k, k - 1].float() - tgt[:, k:]).pow(2).mean(-1)  # (B, T-k)
        mask = (scored[:, : T - k] & scored[:, k - 1 : T - 1]).float()  # (B, T-k)
        total = total + (err * mask).sum()
        count = count + mask.sum()
    return total / count.clamp(min=1.0)


def hybrid_loss(lm: torch.Tensor, jepa: torch.Tensor, jepa_weight: float,
                lm_weight: float) -> Losses:
    return Losses(total=jepa_weight * jepa + lm_weight * lm, lm=lm, jepa=jepa)
