"""The decoder's hyper-parameters, read from a GGUF file's metadata.

One dataclass for the llama family as llama.cpp names it (`llama`, `qwen2`, `qwen3`,
`starcoder2`): the architecture name only switches what differs between them (QKV biases,
RMSNorm of each Q and K head, LayerNorm and a GELU MLP with biases, the RoPE pair layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.runtime.gguf_file import GGUFError, GGUFFile

# `cromwell` files hold their language path and AR head as one llama stack (export.py), so the
# same decoder runs them; the vision encoder and fusion are loaded beside it (cromwell.py).
SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "qwen3", "starcoder2", "cromwell")

# The architectures the fused native decode step (_native.DecodeStep) runs: RMSNorm and a SwiGLU
# MLP. starcoder2 (LayerNorm with biases, a GELU MLP with biases, an output-projection bias)
# decodes on the per-kernel Python loop, the fused step's twin.
FUSED_ARCHITECTURES = ("llama", "qwen2", "qwen3", "cromwell")

# Architectures normalized by LayerNorm with a bias (epsilon `attention.layer_norm_epsilon`) and
# with an ungated GELU MLP whose every projection has a bias; the others use RMSNorm and SwiGLU.
LAYER_NORM_ARCHITECTURES = ("starcoder2",)

# llama.cpp's converter permutes the Q/K rows of llama-architecture models so that ggml's
# "normal" RoPE (rotating adjacent pairs 2i, 2i+1) reproduces HF's rotate-half; qwen2 files
# keep HF's order and are run with NEOX RoPE (pairs i, i + n_rot/2).
ROPE_LAYOUTS = {
    "llama": "interleaved", "qwen2": "half", "qwen3": "half", "starcoder2": "half",
    "cromwell": "interleaved",
}  # fmt: skip

# `rope.scaling.type` values the runtime runs: none, and linear (positions / factor). YaRN and
# LongRoPE are refused by name rather than run with the wrong angles.
ROPE_SCALINGS = ("none", "linear")

# The KV cache is preallocated for the whole context; larger trained contexts are capped here
# (an editor request is a 4096-token context) so memory stays bounded.
MAX_CONTEXT = 8192


@dataclass
class DecoderConfig:
    arch: str
    n_layers: int
    dim: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab_size: int
    n_ctx_train: int
    rope_base: float
    norm_eps: float
    head_dim: int = 0  # 0: dim // n_heads
    n_rot: int = 0  # 0: head_dim
    qkv_bias: bool = False
    # qwen3: each Q and K head is RMS-normed (attn_q_norm / attn_k_norm, [head_dim]) before RoPE
    qk_norm: bool = False
    # starcoder2: LayerNorm with biases instead of RMSNorm, an ungated GELU MLP (ffn_up, ffn_down)
    # and biases on every projection
    layer_norm: bool = False
    tied_embeddings: bool = True
    # Linear RoPE scaling (`rope.scaling.type = linear`, DeepSeek-Coder): positions are
    # multiplied by 1 / `rope.scaling.factor`. Llama 3's per-frequency factors are a tensor
    # (`rope_freqs.weight`, DecoderWeights.rope_freqs), not a config value.
    rope_freq_scale: float = 1.0
    # `attention.sliding_window` (Mistral): a token attends to at most this many positions,
    # itself included; 0: the whole context.
    sliding_window: int = 0
    rope_layout: str = field(init=False)
    q_dim: int = field(init=False)
    kv_dim: int = field(init=False)

    def __post_init__(self) -> None:
        if self.arch not in SUPPORTED_ARCHITECTURES:
            raise ValueError(
                f"architecture {self.arch!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
            )
        self.head_dim = self.head_dim or self.dim // self.n_heads
        self.n_rot = self.n_rot or self.head_dim
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"{self.n_heads} query heads do not divide into {self.n_kv_heads} key/value heads"
            )
        if not self.rope_freq_scale > 0:
            raise ValueError(f"RoPE scaling factor {1 / self.rope_freq_scale} is not positive")
        if self.sliding_window < 0:
            raise ValueError(f"sliding window {self.sliding_window} is negative")
        self.rope_layout = ROPE_LAYOUTS[self.arch]
        self.q_dim = self.n_heads * self.head_dim
        self.kv_dim = self.n_kv_heads * self.head_dim

    @property
    def fused_step_runs_it(self) -> bool:
        """Whether the fused native decode step computes this architecture."""
        return self.arch in FUSED_ARCHITECTURES

    @property
    def default_n_ctx(self) -> int:
        return min(self.n_ctx_train, MAX_CONTEXT)

    @classmethod
    def from_gguf(cls, f: GGUFFile) -> DecoderConfig:
        arch = f.architecture
        if arch not in SUPPORTED_ARCHITECTURES:
            raise GGUFError(
                f"{f.path}: 'general.architecture' is {arch!r}, which this runtime "
                f"does not run (supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
            )

        def key(name: str) -> str:
            return f"{arch}.{name}"

        # llama.cpp reads an absent scaling type as "linear" and an absent or zero factor as
        # 1, so a file with neither is unscaled either way.
        scaling = f.get(key("rope.scaling.type"), "none")
        if scaling not in ROPE_SCALINGS:
            raise GGUFError(
                f"{f.path}: {key('rope.scaling.type')!r} is {scaling!r}; supported RoPE "
                f"scalings: {', '.join(ROPE_SCALINGS)} (and Llama 3's rope_freqs tensor)"
            )
        factor = float(f.get(key("rope.scaling.factor"), 0.0) or 0.0)
        if scaling == "none" or factor == 0.0:
            factor = 1.0
        n_heads = int(f.require(key("attention.head_count")))
        embd = f.tensor("token_embd.weight")
        if len(embd.shape) != 2:
            raise GGUFError(
                f"{f.path}: tensor 'token_embd.weight' has shape "
                f"{list(embd.shape)}, expected [vocab, dim]"
            )
        dim = int(f.require(key("embedding_length")))
        try:
            return cls(
                arch=arch,
                n_layers=int(f.require(key("block_count"))),
                dim=dim,
                n_heads=n_heads,
                n_kv_heads=int(f.get(key("attention.head_count_kv"), n_heads)),
                ffn_dim=int(f.require(key("feed_forward_length"))),
                vocab_size=int(embd.shape[0]),
                n_ctx_train=int(f.get(key("context_length"), 2048)),
                rope_base=float(f.get(key("rope.freq_base"), 10000.0)),
                norm_eps=float(
                    f.require(
                        key("attention.layer_norm_epsilon")
                        if arch in LAYER_NORM_ARCHITECTURES
                        else key("attention.layer_norm_rms_epsilon")
                    )
                ),
                head_dim=int(f.get(key("attention.key_length"), 0)),
                n_rot=int(f.get(key("rope.dimension_count"), 0)),
                qkv_bias=arch in ("qwen2", "starcoder2"),
                qk_norm=arch == "qwen3",
                layer_norm=arch in LAYER_NORM_ARCHITECTURES,
                tied_embeddings="output.weight" not in f.tensors,
                rope_freq_scale=1.0 / factor,
                sliding_window=int(f.get(key("attention.sliding_window"), 0) or 0),
            )
        except ValueError as err:
            raise GGUFError(f"{f.path}: {err}") from None
