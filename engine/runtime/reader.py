"""The code reader on the native kernels, torch-free: the mirror of engine/model/reader.py.

strip (32, W) ink -> conv stem 4x4/4 -> MBConv blocks (1x1 expand, 3x3 depthwise, 1x1
project; RMSNorm over channels) -> RMSNorm -> each column's rows x channels -> projection ->
transformer blocks (relative position bias, key mask) -> RMSNorm -> class scores (W/4, classes).

Everything is NHWC, as in vision_encoder.py. The convolutions run one strip at a time (a strip
is a picture of its own); the per-column work (projections, MLPs, the head) runs on the columns
of all strips at once, and attention per strip and head on the native matmul.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import _native as K
from engine.reader.layout import LINE_HEIGHT, WIDTH_MULTIPLE
from engine.runtime.cromwell_weights import Linear, SwiGLUWeights
from engine.runtime.decoder_weights import Matrix
from engine.runtime.reader_file import ReaderFile, read_any
from engine.runtime.vision_encoder import linear, matmul, rms_norm, swiglu


@dataclass(frozen=True)
class ReaderMBConv:
    norm: np.ndarray
    expand: Linear
    depthwise: np.ndarray  # (3, 3, wide): the kernel's layout
    depthwise_b: np.ndarray
    project: Linear
    residual: bool


@dataclass(frozen=True)
class ReaderBlockWeights:
    attn_norm: np.ndarray
    q: Matrix
    k: Matrix
    v: Matrix
    o: Matrix
    rel_bias: np.ndarray  # (heads, 2 * max_distance + 1)
    mlp_norm: np.ndarray
    mlp: SwiGLUWeights


@dataclass(frozen=True)
class ReaderWeights:
    config: dict
    meta: dict
    stem_w: np.ndarray  # (cout, 4, 4, 1)
    stem_b: np.ndarray
    cnn: list[ReaderMBConv]
    cnn_norm: np.ndarray
    proj: Linear
    blocks: list[ReaderBlockWeights]
    norm: np.ndarray
    head: Linear

    @property
    def nbytes(self) -> int:
        return self._bytes

    _bytes: int = 0


def _matrix(a: np.ndarray) -> Matrix:
    a = np.ascontiguousarray(a, dtype=np.float32)
    return Matrix(a, "F32", a.shape[0], a.shape[1])


def load_reader(path: str | Path) -> ReaderWeights:
    """The reader's weights for the kernels, from a reader.npz (engine/train/reader.py's
    save_weights) or a GGUF model file that carries them (engine/runtime/reader_file.py)."""
    return reader_weights(read_any(path))


def reader_weights(stored: ReaderFile) -> ReaderWeights:
    cfg, meta = stored.config, stored.meta
    f = {k: v.astype(np.float32) for k, v in stored.arrays.items()}

    def lin(p: str) -> Linear:
        b = f.get(p + ".bias")
        return Linear(_matrix(f[p + ".weight"]), b)

    def conv1x1(p: str) -> Linear:
        w = f[p + ".weight"]
        return Linear(_matrix(w.reshape(w.shape[0], w.shape[1])), f[p + ".bias"])

    cnn = []
    widths = [cfg["stem_channels"]] + [cfg["cnn_channels"]] * cfg["cnn_blocks"]
    for i in range(cfg["cnn_blocks"]):
        p = f"cnn.{i}"
        dw = f[p + ".depthwise.weight"]  # (wide, 1, 3, 3)
        cnn.append(ReaderMBConv(
            norm=f[p + ".norm.weight"], expand=conv1x1(p + ".expand"),
            depthwise=np.ascontiguousarray(dw[:, 0].transpose(1, 2, 0)),
            depthwise_b=f[p + ".depthwise.bias"], project=conv1x1(p + ".project"),
            residual=widths[i] == widths[i + 1]))
    blocks = []
    for i in range(cfg["blocks"]):
        p = f"blocks.{i}"
        blocks.append(ReaderBlockWeights(
            attn_norm=f[p + ".attn_norm.weight"], q=_matrix(f[p + ".attn.q_proj.weight"]),
            k=_matrix(f[p + ".attn.k_proj.weight"]), v=_matrix(f[p + ".attn.v_proj.weight"]),
            o=_matrix(f[p + ".attn.o_proj.weight"]), rel_bias=f[p + ".attn.rel_bias"],
            mlp_norm=f[p + ".mlp_norm.weight"],
            mlp=SwiGLUWeights(_matrix(f[p + ".mlp.gate_proj.weight"]),
                              _matrix(f[p + ".mlp.up_proj.weight"]),
                              _matrix(f[p + ".mlp.down_proj.weight"]))))
    stem = f["stem.weight"]  # (cout, 1, 4, 4)
    weights = ReaderWeights(
        config=cfg, meta=meta,
        stem_w=np.ascontiguousarray(stem.transpose(0, 2, 3, 1)), stem_b=f["stem.bias"],
        cnn=cnn, cnn_norm=f["cnn_norm.weight"], proj=lin("proj"), blocks=blocks,
        norm=f["norm.weight"], head=lin("head"))
    object.__setattr__(weights, "_bytes", sum(v.nbytes for v in f.values()))
    return weights


class Reader:
    """Strips -> per-column class scores, on the kernels."""

    def __init__(self, weights: ReaderWeights) -> None:
        self.w = weights
        self.eps = float(weights.config["eps"])
        self.heads = int(weights.config["heads"])
        self.max_distance = int(weights.config["max_distance"])

    def _trunk(self, strip: np.ndarray) -> np.ndarray:
        """(32, W) -> (W/4, dim): the convolutions and the projection of one strip."""
        x = np.ascontiguousarray(strip, dtype=np.float32)[:, :, None]
        x = K.conv_stem(x, self.w.stem_w, self.w.stem_b, 4)  # (8, T, C0)
        for b in self.w.cnn:
            H, W, c = x.shape
            y = linear(b.expand, rms_norm(x, b.norm, self.eps).reshape(H * W, c))
            y = K.silu(y).reshape(H, W, -1)
            y = K.silu(K.depthwise_conv3x3(y, b.depthwise, b.depthwise_b, 1))
            y = linear(b.project, y.reshape(H * W, -1)).reshape(H, W, -1)
            x = x + y if b.residual else y
        x = rms_norm(x, self.w.cnn_norm, self.eps)  # (R, T, C)
        R, T, C = x.shape
        return linear(self.w.proj, np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T, R * C))

    def _bias(self, b: ReaderBlockWeights, T: int) -> np.ndarray:
        pos = np.arange(T)
        offset = np.clip(pos[None, :] - pos[:, None], -self.max_distance, self.max_distance)
        return b.rel_bias[:, offset + self.max_distance]  # (heads, T, T)

    def _attention(self, b: ReaderBlockWeights, x: np.ndarray, spans: list[tuple[int, int]]
                   ) -> np.ndarray:
        rows = rms_norm(x, b.attn_norm, self.eps)
        q, k, v = matmul(b.q, rows), matmul(b.k, rows), matmul(b.v, rows)
        d = x.shape[1]
        nh, hs = self.heads, d // self.heads
        out = np.empty_like(x)
        scale = np.float32(1.0 / np.sqrt(hs))
        for s, e in spans:
            T = e - s
            bias = self._bias(b, T)
            for h in range(nh):
                cols = slice(h * hs, (h + 1) * hs)
                kh = np.ascontiguousarray(k[s:e, cols])
                scores = K.matmul(kh, "F32", np.ascontiguousarray(q[s:e, cols])) * scale
                scores += bias[h]
                scores -= scores.max(-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(-1, keepdims=True)
                vt = np.ascontiguousarray(v[s:e, cols].T)  # (hs, T)
                out[s:e, cols] = K.matmul(vt, "F32", np.ascontiguousarray(scores))
        return x + matmul(b.o, out)

    def __call__(self, strips: list[np.ndarray]) -> list[np.ndarray]:
        """Each (LINE_HEIGHT, W) strip -> (W/4, classes) float32 scores."""
        for s in strips:
            if s.ndim != 2 or s.shape[0] != LINE_HEIGHT or s.shape[1] % WIDTH_MULTIPLE or \
                    s.shape[1] == 0:
                raise ValueError(f"a strip must be ({LINE_HEIGHT}, W) with W a positive "
                                 f"multiple of {WIDTH_MULTIPLE}, got {s.shape}")
        if not strips:
            return []
        parts = [self._trunk(s) for s in strips]
        spans, start = [], 0
        for p in parts:
            spans.append((start, start + p.shape[0]))
            start += p.shape[0]
        x = np.concatenate(parts)
        for b in self.w.blocks:
            x = self._attention(b, x, spans)
            x = x + swiglu(b.mlp, rms_norm(x, b.mlp_norm, self.eps))
        logits = linear(self.w.head, rms_norm(x, self.w.norm, self.eps))
        return [logits[s:e] for s, e in spans]
