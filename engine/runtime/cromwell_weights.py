"""The vision encoder's and fusion's weights of a `cromwell` GGUF file, checked for presence and
shape against the config stored in the file's metadata, and kept as views of the mapped file.

The language path and AR head are one llama stack (decoder_weights.py reads them); here are the
tensors exported under their PyTorch names (engine/train/export.py): `vision.*` and `fusion.*`.
Matrices may be in any kernel format; norms, biases, gates, convolution kernels and the
relative position bias tables are F32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import ModelConfig
from engine.gguf_config import ARCH, config_from_metadata
from engine.runtime.decoder_weights import MATRIX_FORMATS, VECTOR_FORMATS, Matrix
from engine.runtime.gguf_file import GGUFError, GGUFFile


@dataclass(frozen=True)
class Linear:
    """y = W x (+ b): a (rows, k) matrix in a kernel format and an optional F32 bias."""

    w: Matrix
    b: np.ndarray | None = None


@dataclass(frozen=True)
class MBConvWeights:
    norm: np.ndarray  # f32[c_in]
    expand: Linear  # 1x1 conv as a matrix [wide, c_in]
    depthwise: np.ndarray  # f32[3, 3, wide] (the kernel's layout)
    depthwise_b: np.ndarray  # f32[wide]
    se_reduce: Linear
    se_expand: Linear
    project: Linear  # [c_out, wide]
    stride: int
    residual: bool


@dataclass(frozen=True)
class AttentionWeights:
    q: Matrix
    k: Matrix
    v: Matrix
    o: Matrix


@dataclass(frozen=True)
class SwiGLUWeights:
    gate: Matrix
    up: Matrix
    down: Matrix


@dataclass(frozen=True)
class ViTBlockWeights:
    attn_norm: np.ndarray
    attn: AttentionWeights
    rel_bias: np.ndarray  # f32[n_heads, (2w-1)^2]
    mlp_norm: np.ndarray
    mlp: SwiGLUWeights


@dataclass(frozen=True)
class VisionWeights:
    stem_w: np.ndarray  # f32[c, 4, 4, 3] (the kernel's [cout, kh, kw, cin])
    stem_b: np.ndarray
    cnn: list[MBConvWeights]
    cnn_norm: np.ndarray
    proj: Linear
    blocks: list[ViTBlockWeights]
    norm: np.ndarray


@dataclass(frozen=True)
class FusionBlockWeights:
    v2l_q_norm: np.ndarray
    v2l_kv_norm: np.ndarray
    v2l: AttentionWeights
    l2v_q_norm: np.ndarray
    l2v_kv_norm: np.ndarray
    l2v: AttentionWeights
    mlp_norm: np.ndarray
    mlp: SwiGLUWeights
    v2l_gate: float  # tanh of the stored gate, as the branches use it
    l2v_gate: float
    mlp_gate: float


@dataclass(frozen=True)
class FusionWeights:
    vision_in: Matrix
    text_norm: np.ndarray
    text_in: Matrix
    blocks: list[FusionBlockWeights]
    text_out: Matrix


@dataclass(frozen=True)
class CromwellWeights:
    cfg: ModelConfig
    vision: VisionWeights
    fusion: FusionWeights
    fusion_at: int  # the language layers; fusion runs before the AR head's first layer
    trained_parts: tuple[str, ...]


class _Reader:
    def __init__(self, f: GGUFFile) -> None:
        self.f = f

    def matrix(self, name: str, rows: int, k: int) -> Matrix:
        info = self.f.tensor(name, (rows, k), MATRIX_FORMATS)
        return Matrix(info.data, info.fmt, rows, k)

    def f32(self, name: str, *shape: int) -> np.ndarray:
        return self.f.tensor(name, shape, VECTOR_FORMATS).data

    def linear(self, name: str, rows: int, k: int, bias: bool = True) -> Linear:
        return Linear(
            self.matrix(name + ".weight", rows, k), self.f32(name + ".bias", rows) if bias else None
        )

    def conv1x1(self, name: str, rows: int, k: int) -> Linear:
        w = self.f32(name + ".weight", rows, k, 1, 1).reshape(rows, k)
        return Linear(Matrix(w, "F32", rows, k), self.f32(name + ".bias", rows))

    def attention(self, name: str, dim: int) -> AttentionWeights:
        return AttentionWeights(*(self.matrix(f"{name}.{p}_proj.weight", dim, dim) for p in "qkvo"))

    def swiglu(self, name: str, dim: int, hidden: int) -> SwiGLUWeights:
        return SwiGLUWeights(
            self.matrix(f"{name}.gate_proj.weight", hidden, dim),
            self.matrix(f"{name}.up_proj.weight", hidden, dim),
            self.matrix(f"{name}.down_proj.weight", dim, hidden),
        )

    def gate(self, name: str) -> float:
        return float(np.tanh(self.f.first_value(self.f.tensor(name, (1,), VECTOR_FORMATS))))


def _vision(r: _Reader, cfg: ModelConfig) -> VisionWeights:
    vc = cfg.vision
    widths = [vc.stem_channels] + [vc.cnn_channels] * vc.cnn_blocks
    cnn = []
    for i in range(vc.cnn_blocks):
        p, c_in, c_out = f"vision.cnn.{i}", widths[i], widths[i + 1]
        wide, stride = c_in * vc.cnn_expansion, 2 if i == 0 else 1
        squeezed = max(1, int(c_in * vc.se_ratio))
        dw = r.f32(p + ".depthwise.weight", wide, 1, 3, 3)
        cnn.append(
            MBConvWeights(
                norm=r.f32(p + ".norm.weight", c_in),
                expand=r.conv1x1(p + ".expand", wide, c_in),
                # torch's [C, 1, 3, 3] -> the kernel's [3, 3, C]; a small copy made once at load.
                depthwise=np.ascontiguousarray(dw[:, 0].transpose(1, 2, 0)),
                depthwise_b=r.f32(p + ".depthwise.bias", wide),
                se_reduce=r.linear(p + ".se.reduce", squeezed, wide),
                se_expand=r.linear(p + ".se.expand", wide, squeezed),
                project=r.conv1x1(p + ".project", c_out, wide),
                stride=stride,
                residual=stride == 1 and c_in == c_out,
            )
        )
    d, w = vc.vision_hidden_dim, vc.window_size
    blocks = [
        ViTBlockWeights(
            attn_norm=r.f32(f"vision.blocks.{i}.attn_norm.weight", d),
            attn=r.attention(f"vision.blocks.{i}.attn", d),
            rel_bias=r.f32(
                f"vision.blocks.{i}.attn.rel_bias", vc.vision_attention_heads, (2 * w - 1) ** 2
            ),
            mlp_norm=r.f32(f"vision.blocks.{i}.mlp_norm.weight", d),
            mlp=r.swiglu(f"vision.blocks.{i}.mlp", d, vc.vision_intermediate_size),
        )
        for i in range(vc.vit_blocks)
    ]
    stem = r.f32("vision.stem.weight", vc.stem_channels, 3, 4, 4)
    return VisionWeights(
        stem_w=np.ascontiguousarray(stem.transpose(0, 2, 3, 1)),  # -> [cout, kh, kw, cin]
        stem_b=r.f32("vision.stem.bias", vc.stem_channels),
        cnn=cnn,
        cnn_norm=r.f32("vision.cnn_norm.weight", vc.cnn_channels),
        proj=r.linear("vision.proj", d, vc.cnn_channels),
        blocks=blocks,
        norm=r.f32("vision.norm.weight", d),
    )


def _fusion(r: _Reader, cfg: ModelConfig) -> FusionWeights:
    fc, D = cfg.fusion, cfg.fusion.joint_dim
    d_lang, d_vis = cfg.language.hidden_size, cfg.vision.vision_hidden_dim
    blocks = []
    for i in range(fc.num_fusion_blocks):
        p = f"fusion.blocks.{i}"
        blocks.append(
            FusionBlockWeights(
                v2l_q_norm=r.f32(p + ".v2l_q_norm.weight", D),
                v2l_kv_norm=r.f32(p + ".v2l_kv_norm.weight", D),
                v2l=r.attention(p + ".v2l", D),
                l2v_q_norm=r.f32(p + ".l2v_q_norm.weight", D),
                l2v_kv_norm=r.f32(p + ".l2v_kv_norm.weight", D),
                l2v=r.attention(p + ".l2v", D),
                mlp_norm=r.f32(p + ".mlp_norm.weight", D),
                mlp=r.swiglu(p + ".mlp", D, fc.intermediate_size),
                v2l_gate=r.gate(p + ".v2l_gate"),
                l2v_gate=r.gate(p + ".l2v_gate"),
                mlp_gate=r.gate(p + ".mlp_gate"),
            )
        )
    return FusionWeights(
        vision_in=r.matrix("fusion.vision_in.weight", D, d_vis),
        text_norm=r.f32("fusion.text_norm.weight", d_lang),
        text_in=r.matrix("fusion.text_in.weight", D, d_lang),
        blocks=blocks,
        text_out=r.matrix("fusion.text_out.weight", d_lang, D),
    )


def read_config(f: GGUFFile) -> ModelConfig:
    try:
        # Only this architecture's keys: the others include the (lazily decoded) vocabulary.
        prefix = f"{ARCH}."
        return config_from_metadata({k: f.metadata[k] for k in f.metadata if k.startswith(prefix)})
    except ValueError as err:  # ConfigError names the key at fault
        raise GGUFError(f"{f.path}: bad {ARCH} metadata: {err}") from None


def load_cromwell_weights(f: GGUFFile) -> CromwellWeights:
    """The vision and fusion weights of a `cromwell` file; GGUFError names any missing key or
    tensor and any wrong shape."""
    if f.architecture != ARCH:
        raise GGUFError(f"{f.path}: architecture {f.architecture!r} is not {ARCH!r}")
    cfg = read_config(f)
    lc, ac = cfg.language, cfg.autoregressive
    if (ac.hidden_size, ac.num_attention_heads, ac.num_key_value_heads, ac.intermediate_size) != (
        lc.hidden_size,
        lc.num_attention_heads,
        lc.num_key_value_heads,
        lc.intermediate_size,
    ):
        raise GGUFError(
            f"{f.path}: the AR head's shape differs from the language path's; this "
            "runtime runs both as one llama stack"
        )
    fusion_at = int(f.require(f"{ARCH}.encoder_block_count"))
    if fusion_at != lc.num_layers:
        raise GGUFError(
            f"{f.path}: {ARCH}.encoder_block_count is {fusion_at}, but "
            f"{ARCH}.language.num_layers is {lc.num_layers}"
        )
    r = _Reader(f)
    parts = f.get(f"{ARCH}.trained_parts") or []
    return CromwellWeights(
        cfg, _vision(r, cfg), _fusion(r, cfg), fusion_at, tuple(str(p) for p in parts)
    )
