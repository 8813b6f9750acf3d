"""Fusion at inference, the mirror of engine/model/fusion.py split in two phases (DESIGN 2):

- `prefill(h)` runs once over the prompt: the vision stream reads the prompt text (V->L)
  block by block, and each block's L->V keys/values (from the vision stream as it stands in
  that block) are kept;
- `text(h)` runs for every later token: its text queries read those kept keys/values (L->V)
  and the shared SwiGLU; generated tokens never rewrite the vision stream.

Both hand back h + text_out(t - t0), in place. Every text position is independent of the others
inside fusion, so running the prompt at once and each new token alone gives what the torch
model gives over the whole sequence with prompt_len = the prompt's length.
"""

from __future__ import annotations

import math

import numpy as np

from engine import _native as K
from engine.runtime.cromwell_weights import AttentionWeights, FusionWeights
from engine.runtime.vision_encoder import matmul, rms_norm, swiglu

DECODE_ROWS = 8


class Fusion:
    def __init__(self, weights: FusionWeights, n_heads: int, eps: float) -> None:
        self.w = weights
        self.n_heads = n_heads
        self.eps = eps
        self.dim = weights.text_in.rows
        self.head_dim = self.dim // n_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        # Per block: L->V keys and values (N, heads, head_dim), set by prefill.
        self.kv: list[tuple[np.ndarray, np.ndarray]] = []
        self.vision: np.ndarray | None = None  # the image's tokens (N, d_vis), set_image

    def set_image(self, vision: np.ndarray) -> None:
        self.vision = vision
        self.kv = []

    def _heads(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x).reshape(len(x), self.n_heads, self.head_dim)

    def _kv(self, a: AttentionWeights, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._heads(matmul(a.k, ctx)), self._heads(matmul(a.v, ctx))

    def _attend(
        self, a: AttentionWeights, x: np.ndarray, k: np.ndarray, v: np.ndarray
    ) -> np.ndarray:
        """Cross-attention: queries from x (n, D), all keys readable."""
        q = self._heads(matmul(a.q, x))
        if len(x) <= DECODE_ROWS:
            # A token or a speculative draft: the decode kernel, one query row at a time, is
            # several times faster than the prefill kernel on so few rows.
            att = np.empty_like(q)
            for i in range(len(x)):
                K.attention_decode(q[i], k, v, len(k), self.scale, out=att[i])
        else:
            att = K.attention_prefill(q, k, v, 0, False, self.scale)
        return matmul(a.o, att.reshape(len(x), self.dim))

    def prefill(self, h: np.ndarray) -> None:
        """h (P, d_lang) language stream of the whole prompt, updated in place."""
        if self.vision is None:
            raise RuntimeError("fusion has no image: call set_image first")
        w, eps = self.w, self.eps
        v = matmul(w.vision_in, self.vision)  # (N, D)
        t0 = matmul(w.text_in, rms_norm(h, w.text_norm, eps))  # (P, D)
        t = t0.copy()
        self.kv = []
        last = len(w.blocks) - 1
        for i, b in enumerate(w.blocks):
            k, vv = self._kv(b.v2l, rms_norm(t, b.v2l_kv_norm, eps))
            v += b.v2l_gate * self._attend(b.v2l, rms_norm(v, b.v2l_q_norm, eps), k, vv)
            self.kv.append(self._kv(b.l2v, rms_norm(v, b.l2v_kv_norm, eps)))
            t += b.l2v_gate * self._attend(b.l2v, rms_norm(t, b.l2v_q_norm, eps), *self.kv[-1])
            if i < last:  # the last block's vision MLP feeds nothing the text reads
                v += b.mlp_gate * swiglu(b.mlp, rms_norm(v, b.mlp_norm, eps))
            t += b.mlp_gate * swiglu(b.mlp, rms_norm(t, b.mlp_norm, eps))
        self._hand_back(h, t - t0)

    def text(self, h: np.ndarray) -> None:
        """h (n, d_lang) language stream of tokens after the prompt, updated in place."""
        if not self.kv:
            raise RuntimeError("fusion has no vision keys/values: run prefill first")
        w, eps = self.w, self.eps
        t0 = matmul(w.text_in, rms_norm(h, w.text_norm, eps))
        t = t0.copy()
        for b, (k, vv) in zip(w.blocks, self.kv, strict=True):
            t += b.l2v_gate * self._attend(b.l2v, rms_norm(t, b.l2v_q_norm, eps), k, vv)
            t += b.mlp_gate * swiglu(b.mlp, rms_norm(t, b.mlp_norm, eps))
        self._hand_back(h, t - t0)

    def _hand_back(self, h: np.ndarray, delta: np.ndarray) -> None:
        # With closed gates delta is exactly 0 and so is text_out(0); skipping the product
        # keeps the text path bit-exact whatever the weight format does with an all-zero row.
        if delta.any():
            h += matmul(self.w.text_out, delta)
