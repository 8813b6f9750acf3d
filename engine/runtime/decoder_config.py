"""The decoder's hyper-parameters, read from a GGUF file's metadata.

One dataclass for the llama family as llama.cpp names it (`llama`, `qwen2`): the architecture
name only switches what differs between them (QKV biases, the RoPE pair layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.runtime.gguf_file import GGUFError, GGUFFile

# `cromwell` files hold their language path and AR head as one llama stack (export.py), so the
# same decoder runs them; the vision encoder and fusion are loaded beside it (cromwell.py).
SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "cromwell")

# llama.cpp's converter permutes the Q/K rows of llama-architecture models so that ggml's
# "normal" RoPE (rotating adjacent pairs 2i, 2i+1) reproduces HF's rotate-half; qwen2 files
# keep HF's order and are run with NEOX RoPE (pairs i, i + n_rot/2).
ROPE_LAYOUTS = {"llama": "interleaved", "qwen2": "half", "cromwell": "interleaved"}

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
    tied_embeddings: bool = True
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
        self.rope_layout = ROPE_LAYOUTS[self.arch]
        self.q_dim = self.n_heads * self.head_dim
        self.kv_dim = self.n_kv_heads * self.head_dim

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

        scaling = f.get(key("rope.scaling.type"), "none")
        if scaling not in ("none", None):
            raise GGUFError(
                f"{f.path}: {key('rope.scaling.type')!r} is {scaling!r}; only "
                "unscaled RoPE is supported"
            )
        if "rope_freqs.weight" in f.tensors:
            raise GGUFError(
                f"{f.path}: tensor 'rope_freqs.weight' (per-frequency RoPE "
                "factors) is not supported"
            )
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
                norm_eps=float(f.require(key("attention.layer_norm_rms_epsilon"))),
                head_dim=int(f.get(key("attention.key_length"), 0)),
                n_rot=int(f.get(key("rope.dimension_count"), 0)),
                qkv_bias=arch == "qwen2",
                tied_embeddings="output.weight" not in f.tensors,
            )
        except ValueError as err:
            raise GGUFError(f"{f.path}: {err}") from None
