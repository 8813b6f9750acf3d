"""Low-rank adapters (LoRA, Hu et al. 2021) in peft's LoraLayer shape: a frozen Linear, a
down-projection A (r, in), an up-projection B (out, r) that starts at zero, and a scale
alpha / r. The adapter runs beside the base layer (y = base(x) + scale * B(A(x))) rather than
as a parametrisation of the weight: training then never forms the full weight's gradient,
a third less work per step on a CPU.

`merge` is the one definition of the merged weight, W + scale * (B @ A); the layer's own
`merged_weight`, the export into a GGUF (engine/train/adapter.py) and the tests all use it.
It works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# The projections of a llama block an adapter sits on (the GGUF names' kinds).
TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def merge(weight: Any, a: Any, b: Any, scale: float) -> Any:
    """The merged weight (out, in): weight + scale * (b @ a)."""
    return weight + scale * (b @ a)


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        base.weight.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)  # peft's initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * ((x @ self.lora_A.t().to(x.dtype))
                                            @ self.lora_B.t().to(x.dtype))

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        return merge(self.base.weight.float(), self.lora_A.float(), self.lora_B.float(),
                     self.scale)
