"""The key/value cache: preallocated for the whole context, one slab per layer.

`np.zeros` maps untouched pages lazily, so an 8192-token cache costs resident memory only for
the positions actually written. Rolling back (speculative decoding, prompt-prefix reuse) is
just moving `length`: rows past it are overwritten by the next write.
"""

from __future__ import annotations

import numpy as np

# The cache's element types. Half (the default, as llama.cpp's) halves the bytes every decode
# step reads at long contexts, where attention, not the weights, is most of a step; a row is
# rounded to half once it is final (after RoPE). Float keeps rows as computed.
KV_DTYPES = {"f16": np.float16, "f32": np.float32}


class KVCache:
    def __init__(
        self, n_layers: int, n_ctx: int, n_kv_heads: int, head_dim: int, dtype: str = "f16"
    ) -> None:
        if dtype not in KV_DTYPES:
            raise ValueError(f"KV cache type {dtype!r}: expected one of {', '.join(KV_DTYPES)}")
        self.n_ctx = n_ctx
        self.dtype = dtype
        self.half = dtype == "f16"
        self.k = np.zeros((n_layers, n_ctx, n_kv_heads, head_dim), KV_DTYPES[dtype])
        self.v = np.zeros((n_layers, n_ctx, n_kv_heads, head_dim), KV_DTYPES[dtype])
        # Per-layer views made once, so the decode loop indexes a list, not a 4-d array.
        self.k_layers = list(self.k)  # each f32[n_ctx, n_kv_heads, head_dim]
        self.v_layers = list(self.v)
        self.length = 0  # positions 0..length-1 hold valid keys and values
        self.tokens: list[int] = []  # the token at each valid position (for prefix reuse)

    def rollback(self, length: int) -> None:
        """Forget every position from `length` on."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot roll the cache back to {length}: it holds {self.length}")
        self.length = length
        del self.tokens[length:]

    def check_room(self, n: int) -> None:
        if self.length + n > self.n_ctx:
            raise ValueError(
                f"context full: {self.length} tokens cached + {n} new exceeds "
                f"the context of {self.n_ctx} tokens"
            )

    def common_prefix(self, ids: list[int]) -> int:
        """How many leading tokens of `ids` are already cached."""
        n = 0
        for a, b in zip(self.tokens, ids, strict=False):
            if a != b:
                break
            n += 1
        return n
