"""Deterministic synthetic batches for smoke runs and tests of the training machinery.

Each row is an arithmetic sequence of token ids, `(a + b * i) % vocab`, with a random start
`a` and stride `b`: a model can learn it (the next token follows from the two before), so a
falling loss means the loop trains. Rows may carry a random image. Batch `n` of rank `r`
depends only on (seed, r, n), so the source resumes exactly from `state_dict()` and ranks see
different batches. Real training reads `engine.data.pipeline`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


class SyntheticBatches:
    def __init__(self, vocab_size: int, batch_size: int, seq_len: int, seed: int = 0,
                 rank: int = 0, image_size: int = 0, max_stride: int = 7) -> None:
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8, got {image_size}")
        self.vocab_size, self.batch_size, self.seq_len = vocab_size, batch_size, seq_len
        self.seed, self.rank, self.image_size = seed, rank, image_size
        self.max_stride = max_stride
        self.index = 0

    def batch(self, n: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(hash((self.seed, self.rank, n)) & 0x7FFF_FFFF)
        B, T = self.batch_size, self.seq_len
        a = torch.randint(0, self.vocab_size, (B, 1), generator=g)
        b = torch.randint(1, self.max_stride + 1, (B, 1), generator=g)
        tokens = (a + b * torch.arange(T)[None, :]) % self.vocab_size  # (B, T)
        out: dict[str, Any] = {"tokens": tokens}
        if self.image_size:
            s = self.image_size
            out["image"] = torch.rand(B, 3, s, s, generator=g)
            out["prompt_len"] = T // 4
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            batch = self.batch(self.index)
            self.index += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.index = int(state["index"])
