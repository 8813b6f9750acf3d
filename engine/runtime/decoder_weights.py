"""The decoder's weights: every tensor checked for presence, shape and format, and kept as a
view of the memory-mapped GGUF file (nothing is copied or dequantized at load)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.runtime.decoder_config import DecoderConfig
from engine.runtime.gguf_file import GGUFFile, TensorInfo

# The formats the matrix kernels multiply by (KERNEL_API.md); norms and biases are F32.
MATRIX_FORMATS = (
    "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K",
)  # fmt: skip
VECTOR_FORMATS = ("F32",)

# A file may hold a fine-tune's merged matrices (and embedding) a second time, under this
# prefix, for the tasks its metadata key names (engine/train/export.py writes both; the model
# routes by them).
TUNED_PREFIX = "tuned."
TUNED_TASKS_KEY = "cromwell.tuned_tasks"


def tuned_tasks(f: GGUFFile) -> frozenset[str]:
    """The tasks the file's `tuned.*` matrices serve (none when it has none)."""
    tasks = f.metadata.get(TUNED_TASKS_KEY)
    if tasks is None or not any(name.startswith(TUNED_PREFIX) for name in f.tensors):
        return frozenset()
    return frozenset(str(t) for t in tasks)


@dataclass(frozen=True)
class Matrix:
    """A weight matrix W[rows, k] in a ggml format; y = W x."""

    data: np.ndarray  # the mapped bytes, as the kernels take them
    fmt: str
    rows: int
    k: int


def rows(m: Matrix, start: int, n: int) -> Matrix:
    """Rows [start, start + n) of m, a view of the same mapped bytes."""
    return Matrix(m.data[start : start + n], m.fmt, n, m.k)


@dataclass(frozen=True)
class ExpertWeights:
    """qwen3moe's routed MLP: the router and each expert's SwiGLU matrices, views of the
    [n_expert, rows, k] tensors (an expert's matrix is read only when a token chooses it)."""

    router: Matrix  # [n_expert, dim]
    gate: list[Matrix]  # n_expert x [expert_ffn_dim, dim]
    up: list[Matrix]  # n_expert x [expert_ffn_dim, dim]
    down: list[Matrix]  # n_expert x [dim, expert_ffn_dim]


@dataclass(frozen=True)
class LayerWeights:
    attn_norm: np.ndarray  # f32[dim]
    wq: Matrix  # [q_dim, dim]
    wk: Matrix  # [kv_dim, dim]
    wv: Matrix  # [kv_dim, dim]
    bq: np.ndarray | None  # f32[q_dim] (qwen2)
    bk: np.ndarray | None  # f32[kv_dim]
    bv: np.ndarray | None  # f32[kv_dim]
    wo: Matrix  # [dim, q_dim]
    ffn_norm: np.ndarray  # f32[dim]
    w_gate: Matrix | None  # [ffn_dim, dim]; None for an ungated MLP (starcoder2) or experts
    w_up: Matrix | None  # [ffn_dim, dim]; None for experts
    w_down: Matrix | None  # [dim, ffn_dim]; None for experts
    q_norm: np.ndarray | None = None  # f32[head_dim] (qwen3), applied to each Q head
    k_norm: np.ndarray | None = None  # f32[head_dim] (qwen3), applied to each K head
    # starcoder2's biases: of the two LayerNorms, the output projection and the MLP
    attn_norm_b: np.ndarray | None = None  # f32[dim]
    ffn_norm_b: np.ndarray | None = None  # f32[dim]
    bo: np.ndarray | None = None  # f32[dim]
    b_up: np.ndarray | None = None  # f32[ffn_dim]
    b_down: np.ndarray | None = None  # f32[dim]
    # gemma2/gemma3's norms of the attention and MLP outputs, before the residual add
    post_attn_norm: np.ndarray | None = None  # f32[dim]
    post_ffn_norm: np.ndarray | None = None  # f32[dim]
    experts: ExpertWeights | None = None  # qwen3moe's MLP in place of w_gate, w_up, w_down


@dataclass(frozen=True)
class DecoderWeights:
    token_embd: Matrix  # [vocab, dim]
    layers: list[LayerWeights]
    output_norm: np.ndarray  # f32[dim]
    output: Matrix  # [vocab, dim]; the token embedding itself when tied
    output_norm_b: np.ndarray | None = None  # f32[dim], starcoder2's final LayerNorm bias
    # Llama 3's per-frequency RoPE divisors f32[n_rot/2] (llama.cpp's converter turns the
    # `llama3` rope_scaling of a Llama 3.1+ config into this tensor), or None
    rope_freqs: np.ndarray | None = None
    # phi3's LongRoPE factors f32[n_rot/2]: short for contexts up to cfg.n_ctx_orig, long beyond
    rope_factors_short: np.ndarray | None = None
    rope_factors_long: np.ndarray | None = None

    @classmethod
    def from_gguf(cls, f: GGUFFile, cfg: DecoderConfig, variant: str = "") -> DecoderWeights:
        """`variant`: a prefix ("tuned.") under which the file may hold a second copy of some
        matrices (an adapter merged in, engine/train/export.py); those are read in place of
        the base's, every other tensor is the base's own."""
        def matrix(name: str, rows: int, k: int) -> Matrix:
            if variant and variant + name in f.tensors:
                name = variant + name
            info = f.tensor(name, (rows, k), MATRIX_FORMATS)
            return Matrix(info.data, info.fmt, rows, k)

        def vector(name: str, n: int) -> np.ndarray:
            info: TensorInfo = f.tensor(name, (n,), VECTOR_FORMATS)
            return info.data

        def qkv(p: str) -> tuple[Matrix, Matrix, Matrix]:
            """Q, K and V: their own tensors, or row ranges of phi3's fused attn_qkv (Q's rows,
            then K's, then V's), read in place."""
            if p + "attn_qkv.weight" not in f.tensors:
                return (
                    matrix(p + "attn_q.weight", cfg.q_dim, cfg.dim),
                    matrix(p + "attn_k.weight", cfg.kv_dim, cfg.dim),
                    matrix(p + "attn_v.weight", cfg.kv_dim, cfg.dim),
                )
            fused = matrix(p + "attn_qkv.weight", cfg.q_dim + 2 * cfg.kv_dim, cfg.dim)
            return (
                rows(fused, 0, cfg.q_dim),
                rows(fused, cfg.q_dim, cfg.kv_dim),
                rows(fused, cfg.q_dim + cfg.kv_dim, cfg.kv_dim),
            )

        def experts(p: str) -> ExpertWeights:
            n, ff = cfg.n_expert, cfg.expert_ffn_dim

            def each(name: str, rows: int, k: int) -> list[Matrix]:
                info = f.tensor(p + name, (n, rows, k), MATRIX_FORMATS)
                return [Matrix(info.data[e], info.fmt, rows, k) for e in range(n)]

            return ExpertWeights(
                router=matrix(p + "ffn_gate_inp.weight", n, cfg.dim),
                gate=each("ffn_gate_exps.weight", ff, cfg.dim),
                up=each("ffn_up_exps.weight", ff, cfg.dim),
                down=each("ffn_down_exps.weight", cfg.dim, ff),
            )

        def gate_up(p: str) -> tuple[Matrix | None, Matrix | None]:
            """The MLP's gate and up: their own tensors, or phi3's ffn_up of 2 * ffn_dim rows
            (the gate's, then up's, as Phi3MLP chunks gate_up_proj)."""
            if cfg.n_expert:
                return None, None
            if cfg.layer_norm:
                return None, matrix(p + "ffn_up.weight", cfg.ffn_dim, cfg.dim)
            if p + "ffn_gate.weight" in f.tensors or cfg.arch != "phi3":
                return (
                    matrix(p + "ffn_gate.weight", cfg.ffn_dim, cfg.dim),
                    matrix(p + "ffn_up.weight", cfg.ffn_dim, cfg.dim),
                )
            fused = matrix(p + "ffn_up.weight", 2 * cfg.ffn_dim, cfg.dim)
            return rows(fused, 0, cfg.ffn_dim), rows(fused, cfg.ffn_dim, cfg.ffn_dim)

        def factors(name: str) -> np.ndarray | None:
            return vector(name, cfg.n_rot // 2) if name in f.tensors else None

        def post_norm(name: str) -> np.ndarray | None:
            return vector(name, cfg.dim) if cfg.post_norms else None

        def layer(i: int) -> LayerWeights:
            p = f"blk.{i}."
            bias, qk_norm, ln = cfg.qkv_bias, cfg.qk_norm, cfg.layer_norm
            wq, wk, wv = qkv(p)
            w_gate, w_up = gate_up(p)
            w_down = None if cfg.n_expert else matrix(p + "ffn_down.weight", cfg.dim, cfg.ffn_dim)
            return LayerWeights(
                attn_norm=vector(p + "attn_norm.weight", cfg.dim),
                wq=wq,
                wk=wk,
                wv=wv,
                bq=vector(p + "attn_q.bias", cfg.q_dim) if bias else None,
                bk=vector(p + "attn_k.bias", cfg.kv_dim) if bias else None,
                bv=vector(p + "attn_v.bias", cfg.kv_dim) if bias else None,
                wo=matrix(p + "attn_output.weight", cfg.dim, cfg.q_dim),
                ffn_norm=vector(p + "ffn_norm.weight", cfg.dim),
                w_gate=w_gate,
                w_up=w_up,
                w_down=w_down,
                q_norm=vector(p + "attn_q_norm.weight", cfg.head_dim) if qk_norm else None,
                k_norm=vector(p + "attn_k_norm.weight", cfg.head_dim) if qk_norm else None,
                attn_norm_b=vector(p + "attn_norm.bias", cfg.dim) if ln else None,
                ffn_norm_b=vector(p + "ffn_norm.bias", cfg.dim) if ln else None,
                bo=vector(p + "attn_output.bias", cfg.dim) if ln else None,
                b_up=vector(p + "ffn_up.bias", cfg.ffn_dim) if ln else None,
                b_down=vector(p + "ffn_down.bias", cfg.dim) if ln else None,
                post_attn_norm=post_norm(p + "post_attention_norm.weight"),
                post_ffn_norm=post_norm(p + "post_ffw_norm.weight"),
                experts=experts(p) if cfg.n_expert else None,
            )

        token_embd = matrix("token_embd.weight", cfg.vocab_size, cfg.dim)
        output = (
            token_embd if cfg.tied_embeddings else matrix("output.weight", cfg.vocab_size, cfg.dim)
        )
        return cls(
            token_embd=token_embd,
            layers=[layer(i) for i in range(cfg.n_layers)],
            output_norm=vector("output_norm.weight", cfg.dim),
            output=output,
            output_norm_b=vector("output_norm.bias", cfg.dim) if cfg.layer_norm else None,
            rope_freqs=factors("rope_freqs.weight"),
            rope_factors_short=factors("rope_factors_short.weight"),
            rope_factors_long=factors("rope_factors_long.weight"),
        )
