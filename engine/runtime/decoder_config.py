"""The decoder's hyper-parameters, read from a GGUF file's metadata.

One dataclass for the llama family as llama.cpp names it (`llama`, `qwen2`, `qwen3`,
`starcoder2`): the architecture name only switches what differs between them (QKV biases,
RMSNorm of each Q and K head, LayerNorm and a GELU MLP with biases, the RoPE pair layout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.runtime.gguf_file import GGUFError, GGUFFile

# `cromwell` files hold their language path and AR head as one llama stack (export.py), so the
# same decoder runs them; the vision encoder and fusion are loaded beside it (cromwell.py).
SUPPORTED_ARCHITECTURES = (
    "llama", "qwen2", "qwen3", "qwen3moe", "starcoder2", "gemma", "gemma2", "gemma3", "phi3",
    "granite", "cromwell",
)  # fmt: skip

# The architectures the fused native decode step (_native.DecodeStep) runs: RMSNorm and a SwiGLU
# MLP. starcoder2 (LayerNorm with biases, a GELU MLP with biases, an output-projection bias) and
# the gemma family (a GELU-gated MLP, sandwich norms, soft-capping, sliding-window layers with
# their own RoPE base), granite (its four multipliers) and qwen3moe (routed experts) decode on
# the per-kernel Python loop, the fused step's twin.
FUSED_ARCHITECTURES = ("llama", "qwen2", "qwen3", "phi3", "cromwell")

# Architectures normalized by LayerNorm with a bias (epsilon `attention.layer_norm_epsilon`) and
# with an ungated GELU MLP whose every projection has a bias; the others use RMSNorm and SwiGLU.
LAYER_NORM_ARCHITECTURES = ("starcoder2",)

# Gemma (CodeGemma), Gemma 2 and Gemma 3 as llama.cpp runs them: the embedding scaled by
# sqrt(dim), RMSNorm whose weights already hold Gemma's 1 + w (llama.cpp's converter adds the 1),
# a GELU(tanh)-gated MLP; gemma2/gemma3 add norms after attention and after the MLP
# (post_attention_norm, post_ffw_norm) and sliding-window layers; gemma2 soft-caps attention
# scores and the logits, gemma3 RMS-normalizes each Q and K head.
GEMMA_ARCHITECTURES = ("gemma", "gemma2", "gemma3")

# llama.cpp's converter permutes the Q/K rows of llama-architecture models so that ggml's
# "normal" RoPE (rotating adjacent pairs 2i, 2i+1) reproduces HF's rotate-half; qwen2 files
# keep HF's order and are run with NEOX RoPE (pairs i, i + n_rot/2).
ROPE_LAYOUTS = {
    "llama": "interleaved", "qwen2": "half", "qwen3": "half", "qwen3moe": "half",
    "starcoder2": "half",
    "gemma": "half", "gemma2": "half", "gemma3": "half", "phi3": "half",
    "granite": "interleaved", "cromwell": "interleaved",
}  # fmt: skip

# `rope.scaling.type` values the runtime runs: none, linear (positions / factor), and phi3's
# LongRoPE (per-frequency factors, `rope_factors_short` / `rope_factors_long`, and a magnitude
# factor on the rotation). YaRN is refused by name rather than run with the wrong angles.
ROPE_SCALINGS = ("none", "linear", "longrope")

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
    # Which layers the window applies to, when not all (gemma2/gemma3 alternate windowed and
    # global layers); empty: every layer. Windowed layers turn RoPE by their own base and
    # scale (gemma3: 10000 and unscaled, its global layers 1e6 and linear scaling).
    swa_layers: tuple[bool, ...] = ()
    rope_base_swa: float = 0.0  # 0: rope_base
    rope_freq_scale_swa: float = 0.0  # 0: rope_freq_scale
    # phi3's LongRoPE: the context its short factors are for (rope.scaling.original_context_
    # length; a longer context takes the long ones, as llama.cpp chooses) and the factor its
    # rotations' cos and sin are multiplied by (rope.scaling.attn_factor)
    n_ctx_orig: int = 0  # 0: n_ctx_train
    rope_attn_factor: float = 1.0
    # The MLP's gate activation: "silu" (SwiGLU) or "gelu" (tanh GELU, the gemma family)
    ffn_act: str = "silu"
    post_norms: bool = False  # gemma2/gemma3: attn_post_norm and ffn_post_norm
    embedding_scale: float = 1.0  # the token embedding is multiplied by this (gemma: sqrt(dim))
    attention_scale: float = 0.0  # query scale; 0: 1 / sqrt(head_dim)
    attn_softcap: float = 0.0  # gemma2: scores -> cap * tanh(scores / cap); 0: none
    final_softcap: float = 0.0  # gemma2: logits -> cap * tanh(logits / cap); 0: none
    # granite: each sub-block's output is multiplied by residual_scale before the residual add,
    # and the logits divided by logit_scale
    residual_scale: float = 1.0
    logit_scale: float = 1.0
    # qwen3moe: each token's MLP is the softmax-weighted sum of its n_expert_used best-scored
    # experts' SwiGLU MLPs (of expert_ffn_dim), the weights renormalized over the chosen
    n_expert: int = 0
    n_expert_used: int = 0
    expert_ffn_dim: int = 0
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
        self.rope_base_swa = self.rope_base_swa or self.rope_base
        self.rope_freq_scale_swa = self.rope_freq_scale_swa or self.rope_freq_scale
        self.n_ctx_orig = self.n_ctx_orig or self.n_ctx_train
        if self.arch == "qwen3moe" and not 0 < self.n_expert_used <= self.n_expert:
            raise ValueError(
                f"{self.n_expert_used} experts used per token of {self.n_expert}: expected "
                "1 to expert_count"
            )
        if self.n_expert and not self.expert_ffn_dim:
            self.expert_ffn_dim = self.ffn_dim // self.n_expert_used  # llama.cpp's default
        if self.rope_attn_factor != 1.0 and self.n_rot != self.head_dim:
            raise ValueError(
                f"a RoPE attention factor ({self.rope_attn_factor:.4g}) with partial rotation "
                f"({self.n_rot} of {self.head_dim} dims per head) is not supported"
            )
        # cos and sin times the factor scale every rotated query and key by it: with the whole
        # head rotated, that is the attention scores times its square
        self.attention_scale = (self.attention_scale or 1.0 / math.sqrt(self.head_dim)) * (
            self.rope_attn_factor**2
        )
        if self.swa_layers and len(self.swa_layers) != self.n_layers:
            raise ValueError(
                f"the sliding-window pattern names {len(self.swa_layers)} layers, "
                f"the model has {self.n_layers}"
            )
        self.q_dim = self.n_heads * self.head_dim
        self.kv_dim = self.n_kv_heads * self.head_dim

    def layer_window(self, layer: int) -> int:
        """The sliding window of `layer`, or 0 where it attends to the whole context."""
        if self.swa_layers and not self.swa_layers[layer]:
            return 0
        return self.sliding_window

    def layer_rope(self, layer: int) -> tuple[float, float]:
        """RoPE's (base, linear frequency scale) in `layer`."""
        if self.swa_layers and self.swa_layers[layer]:
            return self.rope_base_swa, self.rope_freq_scale_swa
        return self.rope_base, self.rope_freq_scale

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
        if scaling not in ROPE_SCALINGS or (scaling == "longrope" and arch != "phi3"):
            raise GGUFError(
                f"{f.path}: {key('rope.scaling.type')!r} is {scaling!r}; supported RoPE "
                f"scalings: {', '.join(ROPE_SCALINGS)} (and Llama 3's rope_freqs tensor)"
            )
        factor = float(f.get(key("rope.scaling.factor"), 0.0) or 0.0)
        if scaling in ("none", "longrope") or factor == 0.0:
            factor = 1.0
        n_heads = int(f.require(key("attention.head_count")))
        embd = f.tensor("token_embd.weight")
        if len(embd.shape) != 2:
            raise GGUFError(
                f"{f.path}: tensor 'token_embd.weight' has shape "
                f"{list(embd.shape)}, expected [vocab, dim]"
            )
        dim = int(f.require(key("embedding_length")))
        n_layers = int(f.require(key("block_count")))
        window = int(f.get(key("attention.sliding_window"), 0) or 0)
        gemma = (
            _gemma_settings(f, arch, n_layers, dim, n_heads)
            if arch in GEMMA_ARCHITECTURES
            else _granite_settings(f, arch)
            if arch == "granite"
            else {}
        )
        try:
            return cls(
                arch=arch,
                n_layers=n_layers,
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
                qk_norm=arch in ("qwen3", "qwen3moe", "gemma3"),
                n_expert=int(f.get(key("expert_count"), 0)),
                n_expert_used=int(f.get(key("expert_used_count"), 0)),
                expert_ffn_dim=int(f.get(key("expert_feed_forward_length"), 0)),
                layer_norm=arch in LAYER_NORM_ARCHITECTURES,
                tied_embeddings="output.weight" not in f.tensors,
                rope_freq_scale=1.0 / factor,
                # phi3 files hold Phi-3's window, which llama.cpp ignores (its converter's
                # values are not trusted); so does this runtime, to compute what it computes
                **({"sliding_window": 0 if arch == "phi3" else window} | gemma),
                n_ctx_orig=int(f.get(key("rope.scaling.original_context_length"), 0)),
                rope_attn_factor=float(f.get(key("rope.scaling.attn_factor"), 1.0)),
            )
        except ValueError as err:
            raise GGUFError(f"{f.path}: {err}") from None


def _gemma_settings(
    f: GGUFFile, arch: str, n_layers: int, dim: int, n_heads: int
) -> dict[str, object]:
    """The gemma family's fields, with llama.cpp's defaults for keys a file leaves out."""

    def key(name: str) -> str:
        return f"{arch}.{name}"

    settings: dict[str, object] = {
        "ffn_act": "gelu",
        "embedding_scale": math.sqrt(dim),
        "post_norms": arch != "gemma",
    }
    if arch == "gemma":
        return settings
    window = int(f.get(key("attention.sliding_window"), 4096 if arch == "gemma2" else 0) or 0)
    if window > 0:
        # Every n-th layer is global, the others windowed: gemma2 alternates (n = 2),
        # gemma3 has five windowed layers to one global (n = 6), unless the file says.
        default_pattern = 2 if arch == "gemma2" else 6
        n_pattern = int(f.get(key("attention.sliding_window_pattern"), default_pattern))
        settings["sliding_window"] = window
        settings["swa_layers"] = tuple(
            n_pattern == 0 or i % n_pattern < n_pattern - 1 for i in range(n_layers)
        )
        if arch == "gemma3":  # windowed layers keep the local base, unscaled
            settings["rope_base_swa"] = float(f.get(key("rope.freq_base_swa"), 10000.0))
            settings["rope_freq_scale_swa"] = 1.0
        elif key("rope.freq_base_swa") in f.metadata:
            settings["rope_base_swa"] = float(f.metadata[key("rope.freq_base_swa")])
    if arch == "gemma2":
        settings["attn_softcap"] = float(f.get(key("attn_logit_softcapping"), 50.0))
        settings["final_softcap"] = float(f.get(key("final_logit_softcapping"), 30.0))
    else:
        settings["final_softcap"] = float(f.get(key("final_logit_softcapping"), 0.0))
    # Gemma 2/3 scale queries by query_pre_attn_scalar ** -0.5, which GGUF files do not hold;
    # llama.cpp takes dim / n_heads for the 27B models (46 and 62 layers) and head_dim
    # (attention.key_length) for the others, and so does this.
    if (arch, n_layers) in (("gemma2", 46), ("gemma3", 62)):
        settings["attention_scale"] = 1.0 / math.sqrt(dim / n_heads)
    return settings


def _granite_settings(f: GGUFFile, arch: str) -> dict[str, object]:
    """granite's multipliers (Granite 3's embedding_multiplier, residual_multiplier,
    attention_multiplier and logits_scaling), 0 or absent meaning none, as llama.cpp reads
    them."""

    def scale(name: str) -> float:
        return float(f.get(f"{arch}.{name}", 0.0) or 0.0)

    if f.get(f"{arch}.rope.scaling.finetuned", True) is False:
        # llama.cpp's switch for granite models without RoPE
        raise GGUFError(f"{f.path}: a granite model without RoPE is not supported")
    settings: dict[str, object] = {"logit_scale": scale("logit_scale") or 1.0}
    if scale("embedding_scale"):
        settings["embedding_scale"] = scale("embedding_scale")
    if scale("residual_scale"):
        settings["residual_scale"] = scale("residual_scale")
    if scale("attention.scale"):
        settings["attention_scale"] = scale("attention.scale")
    return settings
