"""Parameter counts per component, computed from the built model (never typed in)."""

from __future__ import annotations

import torch
from torch import nn

from engine.config import ModelConfig

# Reporting order; each name is an attribute of VLJEPA. Token embeddings count in `language`;
# a tied LM head shares them and so counts 0 on its own line.
COMPONENTS = ("vision", "language", "fusion", "jepa", "ar_head", "lm_head")


def count_parameters(model: nn.Module) -> dict[str, int]:
    """{component: parameters} over COMPONENTS, each tensor counted once (the EMA target, a
    training-time copy, is not part of the model's size)."""
    seen: set[int] = set()
    counts: dict[str, int] = {}
    for name in COMPONENTS:
        n = 0
        for p in getattr(model, name).parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
        counts[name] = n
    return counts


def parameter_counts(cfg: ModelConfig) -> dict[str, int]:
    """Build the model on the meta device (no memory, no init cost) and count it."""
    from engine.model.vljepa import VLJEPA

    with torch.device("meta"):
        model = VLJEPA(cfg, ema_target=False)
    return count_parameters(model)


def budget_rows(cfg: ModelConfig, counts: dict[str, int]) -> list[tuple[str, int, int | None]]:
    """(component, parameters, seed budget or None) per line of `cromwell info`, then the total.
    The seed budgets the LM head inside its AR head; here it has its own line and no budget."""
    budgets = {
        "vision": cfg.vision.budget,
        "language": cfg.language.budget,
        "fusion": cfg.fusion.budget,
        "jepa": cfg.jepa.budget,
        "ar_head": cfg.autoregressive.budget,
        "lm_head": None,
    }
    rows = [(name, counts[name], budgets[name]) for name in COMPONENTS]
    return [*rows, ("total", sum(counts.values()), cfg.budget)]
