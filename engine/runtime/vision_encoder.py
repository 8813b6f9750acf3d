"""The vision encoder on the native kernels, the mirror of engine/model/vision.py:

image (H, W, 3) in [0, 1] -> normalise -> conv stem 4x4/4 -> MBConv blocks (1x1 expand, 3x3
depthwise, squeeze-excitation, 1x1 project; RMSNorm over channels) -> RMSNorm -> projection ->
ViT blocks with attention inside w x w windows and a relative position bias -> RMSNorm
-> tokens (H/8 * W/8, hidden), row-major.

Everything is NHWC, so a 1x1 convolution is a matmul over the H*W rows and RMSNorm over channels
is the ordinary row norm. The windowed attention is written out here, per window and head on
the native matmul (its products) with the bias, mask and softmax in numpy: the native
`window_attention_2d` kernel has no relative position bias and no key mask for padded windows.
numpy's own batched matmul is not used for the products: it goes to OpenBLAS, whose threads
spin against the kernels' thread pool on a busy machine (ten times slower on two cores).
"""

from __future__ import annotations

import numpy as np

from engine import _native as K
from engine.config import ModelConfig
from engine.runtime.cromwell_weights import (
    Linear,
    MBConvWeights,
    SwiGLUWeights,
    VisionWeights,
    ViTBlockWeights,
)
from engine.runtime.decoder_weights import Matrix


def matmul(w: Matrix, x: np.ndarray) -> np.ndarray:
    """x (n, k) -> (n, rows)."""
    return K.matmul(w.data, w.fmt, np.ascontiguousarray(x, dtype=np.float32))


def linear(lin: Linear, x: np.ndarray) -> np.ndarray:
    y = matmul(lin.w, x)
    if lin.b is not None:
        y += lin.b
    return y


def swiglu(m: SwiGLUWeights, x: np.ndarray) -> np.ndarray:
    gate = matmul(m.gate, x)
    K.swiglu(gate, matmul(m.up, x), out=gate)
    return matmul(m.down, gate)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Over the last axis of any (..., C) array."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, x.shape[-1])
    return K.rms_norm(flat, weight, eps).reshape(x.shape)


def _silu(x: np.ndarray) -> np.ndarray:
    return K.silu(np.ascontiguousarray(x, dtype=np.float32))


def relative_index(window: int) -> np.ndarray:
    """(w*w, w*w) index into a head's (2w-1)^2 bias table, as WindowAttention builds it."""
    ys, xs = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    coords = np.stack([ys.ravel(), xs.ravel()])  # (2, w*w)
    rel = coords[:, :, None] - coords[:, None, :] + window - 1
    return rel[0] * (2 * window - 1) + rel[1]


class VisionEncoder:
    def __init__(self, weights: VisionWeights, cfg: ModelConfig) -> None:
        self.w = weights
        vc = cfg.vision
        self.eps = cfg.epsilon
        self.patch = vc.patch_size
        self.window = vc.window_size
        self.n_heads = vc.vision_attention_heads
        self.mean = np.asarray(vc.image_mean, np.float32)
        self.std = np.asarray(vc.image_std, np.float32)
        idx = relative_index(self.window)
        # Gathered once: (heads, w*w, w*w) biases per block.
        self.biases = [b.rel_bias[:, idx] for b in weights.blocks]

    def check_image(self, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) floats in [0, 1], got {image.shape}")
        H, W = image.shape[:2]
        p = self.patch
        if H % p or W % p or H == 0 or W == 0:
            raise ValueError(
                f"image height and width must be positive multiples of {p}, got {H}x{W}"
            )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) in [0, 1] -> (H/8 * W/8, hidden) float32."""
        self.check_image(image)
        x = ((np.asarray(image, np.float32) - self.mean) / self.std).astype(np.float32)
        x = K.conv_stem(np.ascontiguousarray(x), self.w.stem_w, self.w.stem_b, 4)
        for block in self.w.cnn:
            x = self._mbconv(block, x)
        x = rms_norm(x, self.w.cnn_norm, self.eps)
        h, w, c = x.shape
        x = linear(self.w.proj, x.reshape(h * w, c)).reshape(h, w, -1)
        for block, bias in zip(self.w.blocks, self.biases, strict=True):
            x = self._vit_block(block, bias, x)
        return rms_norm(x.reshape(h * w, -1), self.w.norm, self.eps)

    def _mbconv(self, b: MBConvWeights, x: np.ndarray) -> np.ndarray:
        H, W, c_in = x.shape
        y = linear(b.expand, rms_norm(x, b.norm, self.eps).reshape(H * W, c_in))
        y = _silu(y).reshape(H, W, -1)
        y = _silu(K.depthwise_conv3x3(y, b.depthwise, b.depthwise_b, b.stride))
        h2, w2, wide = y.shape
        rows = y.reshape(h2 * w2, wide)
        s = _silu(linear(b.se_reduce, K.global_avg_pool(y)[None]))
        s = 1.0 / (1.0 + np.exp(-linear(b.se_expand, s)))  # sigmoid, (1, wide)
        y = linear(b.project, rows * s).reshape(h2, w2, -1)
        return x + y if b.residual else y

    def _vit_block(self, b: ViTBlockWeights, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
        """x (h, w, d) -> (h, w, d). Only the real tokens are projected and run through the
        MLP; q, k, v are zero-padded to whole windows, the padded keys masked out and the
        padded queries' rows dropped (the torch model computes and then drops them)."""
        h, w, d = x.shape
        win, nh = self.window, self.n_heads
        hs = d // nh
        ph, pw = -h % win, -w % win
        rows = rms_norm(x, b.attn_norm, self.eps).reshape(h * w, d)

        def windows(m: Matrix) -> np.ndarray:
            y = np.pad(matmul(m, rows).reshape(h, w, d), ((0, ph), (0, pw), (0, 0)))
            t = to_windows(y, win)  # (Bw, L, d)
            return t.reshape(t.shape[0], t.shape[1], nh, hs).transpose(0, 2, 1, 3)

        q, k, v = windows(b.attn.q), windows(b.attn.k), windows(b.attn.v)  # (Bw, nh, L, hs)
        pad = np.ones((h + ph, w + pw, 1), bool)
        pad[:h, :w] = False
        key_pad = to_windows(pad, win)[:, :, 0]  # (Bw, L)
        scores = _products(q, k) * np.float32(1.0 / np.sqrt(hs))
        scores += bias[None]
        scores[np.broadcast_to(key_pad[:, None, None, :], scores.shape)] = -np.inf
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        att = _products(scores, v.transpose(0, 1, 3, 2)).transpose(0, 2, 1, 3)
        att = att.reshape(-1, win * win, d)
        att = from_windows(att, h + ph, w + pw, win)[:h, :w].reshape(h * w, d)
        flat = x.reshape(h * w, d) + matmul(b.attn.o, att)
        flat += swiglu(b.mlp, rms_norm(flat, b.mlp_norm, self.eps))
        return flat.reshape(h, w, d)


def _products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (B, H, n, k) @ b (B, H, m, k) transposed -> (B, H, n, m), one native matmul per
    (window, head)."""
    bw, nh, n, _ = a.shape
    out = np.empty((bw, nh, n, b.shape[2]), np.float32)
    for i in range(bw):
        for h in range(nh):
            K.matmul(
                np.ascontiguousarray(b[i, h]), "F32", np.ascontiguousarray(a[i, h]), out=out[i, h]
            )
    return out


def to_windows(x: np.ndarray, w: int) -> np.ndarray:
    """(H, W, C) with H, W multiples of w -> (H/w * W/w, w*w, C)."""
    H, W, C = x.shape
    return x.reshape(H // w, w, W // w, w, C).transpose(0, 2, 1, 3, 4).reshape(-1, w * w, C)


def from_windows(x: np.ndarray, H: int, W: int, w: int) -> np.ndarray:
    C = x.shape[-1]
    return x.reshape(H // w, W // w, w, w, C).transpose(0, 2, 1, 3, 4).reshape(H, W, C)
