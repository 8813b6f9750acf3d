"""The line reader: one strip of ink (a text line, LINE_HEIGHT pixels tall) -> per-column
character scores for CTC.

strip (B, 1, 32, W) ink in [0, 1]
 -> stem: conv 4x4 stride 4 (the vision stem's patchify)       (B, stem, 8, W/4)
 -> MBConv blocks, stride 1, no squeeze-excitation             (B, cnn, 8, W/4)
 -> channel RMSNorm, each column's 8 rows x cnn flattened
 -> linear to the sequence width                               (B, W/4, dim)
 -> transformer blocks: attention over the line's columns with a learned relative position
    bias (clipped to +-MAX_DISTANCE columns), SwiGLU MLP, pre-norm
 -> RMSNorm -> linear to the classes (engine/reader/charset.py)  (B, W/4, classes)

One column per 4 pixels of a 32-pixel line: a character cell of a monospace font is 3-4 columns,
enough for CTC to put a blank between two equal characters ("==", indentation's spaces inside a
line). Squeeze-excitation is left out on purpose: its global pool would see the padding of a
batch of lines of different widths, and a line would read differently alone and in a batch.
Padded columns are masked out as attention keys for the same reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.model.layers import RMSNorm, SwiGLU
from engine.model.vision import ChannelRMSNorm, MBConv
from engine.reader.charset import n_classes
from engine.reader.layout import LINE_HEIGHT, WIDTH_MULTIPLE


@dataclass(frozen=True)
class ReaderConfig:
    stem_channels: int = 32
    cnn_channels: int = 48
    cnn_blocks: int = 3
    expansion: int = 3
    dim: int = 192
    heads: int = 4
    hidden: int = 512
    blocks: int = 2
    max_distance: int = 24  # columns: about six characters either side
    classes: int = n_classes()
    eps: float = 1e-5

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ReaderConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


ROWS = LINE_HEIGHT // WIDTH_MULTIPLE  # rows left after the stem


class RelativeAttention(nn.Module):
    def __init__(self, dim: int, heads: int, max_distance: int) -> None:
        super().__init__()
        self.heads, self.max_distance = heads, max_distance
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.rel_bias = nn.Parameter(torch.zeros(heads, 2 * max_distance + 1))

    def bias(self, length: int) -> torch.Tensor:
        """(heads, T, T): the bias of key j for query i, by the clipped offset j - i."""
        pos = torch.arange(length, device=self.rel_bias.device)
        offset = (pos[None, :] - pos[:, None]).clamp(-self.max_distance, self.max_distance)
        return self.rel_bias[:, offset + self.max_distance]

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor) -> torch.Tensor:
        """x (B, T, dim); key_pad (B, T) True at padded columns."""
        B, T, D = x.shape
        nh, hs = self.heads, D // self.heads
        q = self.q_proj(x).view(B, T, nh, hs).transpose(1, 2)
        k = self.k_proj(x).view(B, T, nh, hs).transpose(1, 2)
        v = self.v_proj(x).view(B, T, nh, hs).transpose(1, 2)
        mask = self.bias(T).unsqueeze(0).masked_fill(key_pad[:, None, None, :], float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))
        return self.o_proj(y.transpose(1, 2).reshape(B, T, D))


class ReaderBlock(nn.Module):
    def __init__(self, cfg: ReaderConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.eps)
        self.attn = RelativeAttention(cfg.dim, cfg.heads, cfg.max_distance)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.eps)
        self.mlp = SwiGLU(cfg.dim, cfg.hidden)

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), key_pad)
        return x + self.mlp(self.mlp_norm(x))


class LineReader(nn.Module):
    def __init__(self, cfg: ReaderConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ReaderConfig()
        self.cfg = cfg
        self.stem = nn.Conv2d(1, cfg.stem_channels, kernel_size=4, stride=4)
        widths = [cfg.stem_channels] + [cfg.cnn_channels] * cfg.cnn_blocks
        self.cnn = nn.ModuleList(
            MBConv(widths[i], widths[i + 1], 1, cfg.expansion, 0.0, cfg.eps)
            for i in range(cfg.cnn_blocks))
        self.cnn_norm = ChannelRMSNorm(cfg.cnn_channels, cfg.eps)
        self.proj = nn.Linear(ROWS * cfg.cnn_channels, cfg.dim)
        self.blocks = nn.ModuleList(ReaderBlock(cfg) for _ in range(cfg.blocks))
        self.norm = RMSNorm(cfg.dim, cfg.eps)
        self.head = nn.Linear(cfg.dim, cfg.classes)

    def forward(self, strips: torch.Tensor, widths: torch.Tensor | None = None) -> torch.Tensor:
        """strips (B, 1, LINE_HEIGHT, W) ink, W a multiple of 4; widths (B,) each strip's own
        width in pixels (None: all W). -> logits (B, W/4, classes)."""
        if strips.dim() != 4 or strips.shape[1] != 1 or strips.shape[2] != LINE_HEIGHT:
            raise ValueError(f"strips must be (B, 1, {LINE_HEIGHT}, W), got "
                             f"{tuple(strips.shape)}")
        if strips.shape[3] % WIDTH_MULTIPLE or strips.shape[3] == 0:
            raise ValueError(f"strip width must be a positive multiple of {WIDTH_MULTIPLE}")
        x = self.stem(strips)
        for block in self.cnn:
            x = block(x)
        x = self.cnn_norm(x)  # (B, C, ROWS, T)
        B, C, R, T = x.shape
        x = self.proj(x.permute(0, 3, 2, 1).reshape(B, T, R * C))  # (B, T, dim)
        cols = torch.arange(T, device=x.device)[None, :]
        if widths is None:
            key_pad = torch.zeros(B, T, dtype=torch.bool, device=x.device)
        else:
            key_pad = cols >= (widths[:, None] // WIDTH_MULTIPLE)
        for block in self.blocks:
            x = block(x, key_pad)
        return self.head(self.norm(x))
