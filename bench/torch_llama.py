"""A minimal PyTorch eager llama with a KV cache, over a GGUF file's weights dequantized to
float32: the torch peer of `cromwell bench decode --peers`.

engine/model computes the llama as the language path of the training model, without a KV
cache, so it is no fair decode peer; this is the plain eager loop a PyTorch user would write.
Q and K weights stay in ggml's row order, whose RoPE rotates adjacent pairs (x[2i], x[2i+1]).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
import torch.nn.functional as F


class TorchLlama:
    def __init__(self, path: str | Path, n_ctx: int = 1024) -> None:
        reader = gguf.GGUFReader(str(path))

        def meta(key: str) -> float:
            return float(reader.fields[f"llama.{key}"].contents())

        self.n_layers = int(meta("block_count"))
        self.n_heads = int(meta("attention.head_count"))
        self.n_kv = int(meta("attention.head_count_kv"))
        dim = int(meta("embedding_length"))
        self.head_dim = dim // self.n_heads
        self.eps = meta("attention.layer_norm_rms_epsilon")
        w: dict[str, torch.Tensor] = {}
        for t in reader.tensors:
            shape = [int(d) for d in reversed(t.shape)]
            data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            w[t.name] = torch.from_numpy(data.reshape(shape).copy())
        self.w = w
        self.embed = w["token_embd.weight"]
        self.head = w.get("output.weight", self.embed)  # tied in SmolLM2
        half = self.head_dim // 2
        inv = meta("rope.freq_base") ** (-torch.arange(half, dtype=torch.float64) / half)
        angles = torch.arange(n_ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.cos, self.sin = angles.cos().float(), angles.sin().float()
        shape = (self.n_layers, n_ctx, self.n_kv, self.head_dim)
        self.k_cache, self.v_cache = torch.zeros(shape), torch.zeros(shape)
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def _rope(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        n = x.shape[0]
        cos, sin = self.cos[pos : pos + n, None, :], self.sin[pos : pos + n, None, :]
        pairs = x.view(n, x.shape[1], -1, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).view_as(x)

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    @torch.inference_mode()
    def forward(self, ids: list[int]) -> torch.Tensor:
        """Run `ids` at the next positions; returns the last token's logits."""
        pos, n, w = self.length, len(ids), self.w
        x = self.embed[torch.tensor(ids)]
        for i in range(self.n_layers):
            p = f"blk.{i}."
            h = self._norm(x, w[p + "attn_norm.weight"])
            q = F.linear(h, w[p + "attn_q.weight"]).view(n, self.n_heads, self.head_dim)
            k = F.linear(h, w[p + "attn_k.weight"]).view(n, self.n_kv, self.head_dim)
            v = F.linear(h, w[p + "attn_v.weight"]).view(n, self.n_kv, self.head_dim)
            self.k_cache[i, pos : pos + n] = self._rope(k, pos)
            self.v_cache[i, pos : pos + n] = v
            keys = self.k_cache[i, : pos + n].transpose(0, 1)  # heads, time, dim
            values = self.v_cache[i, : pos + n].transpose(0, 1)
            mask = torch.ones(n, pos + n, dtype=torch.bool).tril(diagonal=pos)
            attn = F.scaled_dot_product_attention(
                self._rope(q, pos).transpose(0, 1), keys, values, attn_mask=mask,
                enable_gqa=True,
            )
            x = x + F.linear(attn.transpose(0, 1).reshape(n, -1), w[p + "attn_output.weight"])
            h = self._norm(x, w[p + "ffn_norm.weight"])
            gate = F.silu(F.linear(h, w[p + "ffn_gate.weight"]))
            x = x + F.linear(gate * F.linear(h, w[p + "ffn_up.weight"]), w[p + "ffn_down.weight"])
        self.length = pos + n
        return F.linear(self._norm(x[-1], w["output_norm.weight"]), self.head)
