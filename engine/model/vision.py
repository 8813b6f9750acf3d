"""Vision encoder: CNN-ViT hybrid (seed §3.2).

image (B, 3, H, W) in [0, 1]
 -> normalise (config mean/std)
 -> stem: conv 4x4 stride 4                    (B, stem, H/4, W/4)
 -> MBConv x cnn_blocks (first one stride 2)   (B, cnn, H/8, W/8)
 -> projection cnn -> hidden                   (B, H/8 * W/8, hidden)
 -> ViT blocks, attention inside 16x16 windows (B, N, hidden)

H and W must be multiples of 8 (one token per 8x8 pixels). The token grid is padded up to whole
windows; padded tokens are masked out as keys and dropped at the end. Windows are not shifted:
global mixing happens in the fusion blocks, where every text query sees every vision token.

Norms are RMSNorm (per pixel over channels in the CNN) rather than BatchNorm, so the encoder
behaves the same in training and inference and at any batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ModelConfig
from engine.model.layers import RMSNorm, SwiGLU


class ChannelRMSNorm(nn.Module):
    """RMSNorm over the channel axis of an NCHW map."""

    def __init__(self, channels: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight[:, None, None]


class SqueezeExcite(nn.Module):
    """Channel gate from the globally pooled map (EfficientNet)."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Linear(channels, squeezed)
        self.expand = nn.Linear(squeezed, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))  # (B, C)
        s = torch.sigmoid(self.expand(F.silu(self.reduce(s))))  # (B, C)
        return x * s[:, :, None, None]


class MBConv(nn.Module):
    """Inverted bottleneck: 1x1 expand -> 3x3 depthwise -> SE -> 1x1 project, pre-norm, with a
    residual when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int, se_ratio: float,
                 eps: float) -> None:
        super().__init__()
        wide = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.norm = ChannelRMSNorm(c_in, eps)
        self.expand = nn.Conv2d(c_in, wide, 1)
        self.depthwise = nn.Conv2d(wide, wide, 3, stride=stride, padding=1, groups=wide)
        # se_ratio 0: no squeeze-excitation (the line reader, whose batches are padded).
        self.se: nn.Module = (SqueezeExcite(wide, max(1, int(c_in * se_ratio)))
                              if se_ratio > 0 else nn.Identity())
        self.project = nn.Conv2d(wide, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.silu(self.expand(self.norm(x)))  # (B, wide, H, W)
        y = F.silu(self.depthwise(y))  # (B, wide, H/stride, W/stride)
        y = self.project(self.se(y))  # (B, c_out, H/stride, W/stride)
        return x + y if self.residual else y


class WindowAttention(nn.Module):
    """Multi-head attention inside w x w windows with a learned relative position bias (Swin)."""

    def __init__(self, dim: int, n_heads: int, window: int) -> None:
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.head_dim = dim // n_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        # One bias per head for each of the (2w-1)^2 relative offsets.
        self.rel_bias = nn.Parameter(torch.zeros(n_heads, (2 * window - 1) ** 2))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)  # (2, w*w)
        rel = coords[:, :, None] - coords[:, None, :] + window - 1  # (2, w*w, w*w)
        self.register_buffer("rel_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor) -> torch.Tensor:
        """x (Bw, w*w, dim) windows; key_pad (Bw, w*w) True where the token is padding."""
        Bw, L, _ = x.shape
        nh, hs = self.n_heads, self.head_dim
        q = self.q_proj(x).view(Bw, L, nh, hs).transpose(1, 2)  # (Bw, nh, L, hs)
        k = self.k_proj(x).view(Bw, L, nh, hs).transpose(1, 2)
        v = self.v_proj(x).view(Bw, L, nh, hs).transpose(1, 2)
        bias = self.rel_bias[:, self.rel_index]  # (nh, L, L)
        bias = bias.unsqueeze(0).masked_fill(key_pad[:, None, None, :], float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.o_proj(y.transpose(1, 2).reshape(Bw, L, -1))  # (Bw, L, dim)


def to_windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of w -> (B * H/w * W/w, w*w, C)."""
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, C)


def from_windows(x: torch.Tensor, B: int, H: int, W: int, w: int) -> torch.Tensor:
    """Inverse of to_windows: (B * H/w * W/w, w*w, C) -> (B, H, W, C)."""
    C = x.shape[-1]
    x = x.view(B, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, C)


class ViTBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, hidden: int, window: int, eps: float) -> None:
        super().__init__()
        self.window = window
        self.attn_norm = RMSNorm(dim, eps)
        self.attn = WindowAttention(dim, n_heads, window)
        self.mlp_norm = RMSNorm(dim, eps)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """x (B, Hp, Wp, dim) on a grid padded to whole windows; pad (B, Hp, Wp) bool."""
        B, Hp, Wp, _ = x.shape
        w = self.window
        win = to_windows(self.attn_norm(x), w)  # (Bw, w*w, dim)
        win_pad = to_windows(pad.unsqueeze(-1), w).squeeze(-1)  # (Bw, w*w)
        x = x + from_windows(self.attn(win, win_pad), B, Hp, Wp, w)
        return x + self.mlp(self.mlp_norm(x))


class VisionEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        vc, eps = cfg.vision, cfg.epsilon
        self.patch_size, self.window = vc.patch_size, vc.window_size
        self.register_buffer("mean", torch.tensor(vc.image_mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(vc.image_std).view(1, 3, 1, 1),
                             persistent=False)
        self.stem = nn.Conv2d(3, vc.stem_channels, kernel_size=4, stride=4)
        widths = [vc.stem_channels] + [vc.cnn_channels] * vc.cnn_blocks
        self.cnn = nn.ModuleList(
            MBConv(widths[i], widths[i + 1], 2 if i == 0 else 1, vc.cnn_expansion,
                   vc.se_ratio, eps)
            for i in range(vc.cnn_blocks))
        self.cnn_norm = ChannelRMSNorm(vc.cnn_channels, eps)
        self.proj = nn.Linear(vc.cnn_channels, vc.vision_hidden_dim)
        self.blocks = nn.ModuleList(
            ViTBlock(vc.vision_hidden_dim, vc.vision_attention_heads,
                     vc.vision_intermediate_size, vc.window_size, eps)
            for _ in range(vc.vit_blocks))
        self.norm = RMSNorm(vc.vision_hidden_dim, eps)

    def check_image(self, image: torch.Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise ValueError("image must be a float tensor (B, 3, H, W) with values in [0, 1], "
                             f"got {tuple(image.shape)} {image.dtype}")
        H, W = image.shape[2:]
        p = self.patch_size
        if H % p or W % p or H == 0 or W == 0:
            raise ValueError(f"image height and width must be positive multiples of {p}, "
                             f"got {H}x{W}")

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """CNN part: (B, 3, H, W) -> (B, H/8, W/8, cnn_channels)."""
        x = (image - self.mean) / self.std
        x = self.stem(x)  # (B, stem, H/4, W/4)
        for block in self.cnn:
            x = block(x)  # (B, cnn, H/8, W/8) after the first block
        return self.cnn_norm(x).permute(0, 2, 3, 1)  # (B, H/8, W/8, cnn)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> vision tokens (B, H/8 * W/8, hidden), row-major."""
        self.check_image(image)
        x = self.proj(self.features(image))  # (B, h, w, hidden)
        B, h, w, _ = x.shape
        ph, pw = -h % self.window, -w % self.window
        x = F.pad(x, (0, 0, 0, pw, 0, ph))  # (B, Hp, Wp, hidden)
        pad = torch.ones(B, h + ph, w + pw, dtype=torch.bool, device=x.device)
        pad[:, :h, :w] = False
        for block in self.blocks:
            x = block(x, pad)
        return self.norm(x[:, :h, :w].reshape(B, h * w, -1))  # (B, N, hidden)
