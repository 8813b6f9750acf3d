"""A plain-numpy forward pass of a llama/qwen2/qwen3/qwen3moe/starcoder2/gemma/phi3/granite GGUF
decoder: the runtime's test oracle.

Written to be obviously right rather than fast, and deliberately independent of the runtime's
choices: weights are dequantized by the `gguf` package, llama's Q/K rows are put back in
Hugging Face order (undoing llama.cpp's converter permutation) and RoPE is HF's rotate-half, the
whole sequence is attended with an explicit causal mask, and everything runs in float64. So a
match with the runtime also checks the runtime's RoPE layout convention.

The variants of the llama architecture are read from the file's own metadata here, as Hugging
Face applies them: linear RoPE scaling divides positions by the factor, Llama 3's
`rope_freqs.weight` divides each inverse frequency, and a sliding window masks keys that are
`window` or more positions behind the query. A qwen3 file's `attn_q_norm` / `attn_k_norm`
RMS-normalize each query and key head (over head_dim) before RoPE, as Qwen3Attention does.
A starcoder2 file is run as Hugging Face's Starcoder2: LayerNorm (weight and bias) for the
block and final norms, biases on Q/K/V and the output projection, and an MLP of c_fc (ffn_up,
with bias), GELU in its tanh form (gelu_pytorch_tanh) and c_proj (ffn_down, with bias).
Gemma, Gemma 2 and Gemma 3 files are run as Hugging Face's models: the embedding times
sqrt(dim); RMSNorm by (1 + w), which the file holds as its weight (llama.cpp's converter adds
the 1); gelu_pytorch_tanh(gate) * up; for gemma2/3 the post-attention and post-feedforward
norms; sliding layers where `(i + 1) % pattern != 0` (gemma2: pattern 2, window 4096 unless
the file says; gemma3: pattern 6, no window unless the file has one), with gemma3's sliding
layers on their own RoPE base (rope.freq_base_swa, else 10000) unscaled; gemma2's attention
and final logit soft-capping (50 and 30 unless the file says); queries scaled by
attention.key_length ** -0.5. A phi3 file's fused attn_qkv is cut into Q, K, V rows and its
ffn_up of 2 * ffn_dim rows into gate and up (Phi3MLP's chunk), and its LongRoPE is
Phi3LongRoPEScaledRotaryEmbedding's: inverse frequencies divided by the short factors (the
long ones for a context beyond rope.scaling.original_context_length), cos and sin times
rope.scaling.attn_factor. A granite file is GraniteForCausalLM: the embedding times
embedding_scale, each attention and MLP output times residual_scale before its residual add,
queries scaled by attention.scale, the logits divided by logit_scale. A qwen3moe file's MLP
is Qwen3MoeSparseMoeBlock's: the router's softmax, each token's top expert_used_count experts
with their probabilities renormalized (norm_topk_prob), the weighted sum of their SwiGLU MLPs.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

from engine.runtime.decoder_config import DecoderConfig
from engine.runtime.gguf_file import GGUFFile


def dequant(data: np.ndarray, fmt: str) -> np.ndarray:
    return dequantize(data, GGMLQuantizationType[fmt]).astype(np.float64)


def unpermute_llama(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Inverse of llama.cpp's `permute`: rows (head, dim/2, 2) back to HF's (head, 2, dim/2)."""
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def rope_half(
    x: np.ndarray,
    positions: np.ndarray,
    base: float,
    n_rot: int,
    freq_divisors: np.ndarray | None = None,
    magnitude: float = 1.0,
) -> np.ndarray:
    """HF rotate-half RoPE on x[n, heads, head_dim] over the first n_rot dims; `positions` may
    be fractional (linear scaling), `freq_divisors` divide the inverse frequencies (Llama 3)."""
    half = n_rot // 2
    inv_freq = base ** (-np.arange(half, dtype=np.float64) * 2 / n_rot)
    if freq_divisors is not None:
        inv_freq = inv_freq / freq_divisors
    angles = positions[:, None].astype(np.float64) * inv_freq[None, :]  # (n, half)
    cos = magnitude * np.cos(angles)[:, None, :]  # magnitude: LongRoPE's attention factor
    sin = magnitude * np.sin(angles)[:, None, :]
    out = x.copy()
    a, b = x[..., :half], x[..., half:n_rot]
    out[..., :half] = a * cos - b * sin
    out[..., half:n_rot] = b * cos + a * sin
    return out


class ReferenceDecoder:
    def __init__(self, f: GGUFFile, n_ctx: int | None = None) -> None:
        """`n_ctx`: the context the model runs with (LongRoPE's factors depend on it); by
        default the runtime's for the file."""
        self.cfg = DecoderConfig.from_gguf(f)
        self.f = f
        self.n_ctx = n_ctx or self.cfg.default_n_ctx
        self._cache: dict[str, np.ndarray] = {}

    def matrix(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._load(name)
        return self._cache[name]

    def _load(self, name: str) -> np.ndarray:
        """A weight by name; phi3's Q/K/V and gate/up as the row ranges of its fused ones."""
        cfg, p = self.cfg, name[: name.find(".", 4) + 1]
        fused_qkv, part = p + "attn_qkv.weight", name[len(p) :]
        qkv_part = part in ("attn_q.weight", "attn_k.weight", "attn_v.weight")
        if qkv_part and fused_qkv in self.f.tensors:
            q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
            start, n = {"attn_q.weight": (0, q), "attn_k.weight": (q, kv)}.get(part, (q + kv, kv))
            return self.matrix(fused_qkv)[start : start + n]
        if cfg.arch == "phi3" and name.endswith(("ffn_gate.weight", "ffn_up.weight")):
            gate_up = self.f.tensors[p + "ffn_up.weight"]
            both = dequant(gate_up.data, gate_up.fmt).reshape(gate_up.shape)
            half = len(both) // 2
            return both[:half] if name.endswith("ffn_gate.weight") else both[half:]
        info = self.f.tensors[name]
        return dequant(info.data, info.fmt).reshape(info.shape)

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        """x @ W.T for the weight `name` (for llama Q/K: with HF row order restored)."""
        w = self.matrix(name)
        permuted = self.cfg.arch in ("llama", "granite")  # converted as LlamaModel
        if permuted and name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = self.cfg.n_heads if "attn_q" in name else self.cfg.n_kv_heads
            w = unpermute_llama(w, heads)
        return x @ w.T

    def vector(self, name: str) -> np.ndarray:
        return np.asarray(self.f.tensors[name].data, dtype=np.float64)

    def norm(self, x: np.ndarray, name: str) -> np.ndarray:
        """The norm whose weight is `name`: LayerNorm where the file has its bias, else RMSNorm."""
        bias = name.replace(".weight", ".bias")
        if self.cfg.arch == "starcoder2":
            return layer_norm(x, self.vector(name), self.vector(bias), self.cfg.norm_eps)
        return rms_norm(x, self.vector(name), self.cfg.norm_eps)

    def biased(self, y: np.ndarray, name: str) -> np.ndarray:
        """y plus the bias beside weight `name`, where the file has one."""
        bias = name.replace(".weight", ".bias")
        return y + self.vector(bias) if bias in self.f.tensors else y

    def meta(self, name: str, default: object = None) -> object:
        return self.f.metadata.get(f"{self.cfg.arch}.{name}", default)

    @property
    def gemma(self) -> bool:
        return self.cfg.arch in ("gemma", "gemma2", "gemma3")

    def sliding(self, layer: int) -> bool:
        """Whether `layer` attends through the file's sliding window."""
        arch = self.cfg.arch
        if arch == "gemma2":
            pattern = int(self.meta("attention.sliding_window_pattern", 2))  # type: ignore[arg-type]
            return (layer + 1) % pattern != 0
        if arch == "gemma3":
            if not self.meta("attention.sliding_window", 0):
                return False
            pattern = int(self.meta("attention.sliding_window_pattern", 6))  # type: ignore[arg-type]
            return (layer + 1) % pattern != 0
        return bool(self.meta("attention.sliding_window", 0))

    def window(self) -> int:
        default = 4096 if self.cfg.arch == "gemma2" else 0
        return int(self.meta("attention.sliding_window", default) or 0)  # type: ignore[arg-type]

    def rope_base(self, layer: int) -> float:
        if self.cfg.arch == "gemma3" and self.sliding(layer):
            return float(self.meta("rope.freq_base_swa", 10000.0))  # type: ignore[arg-type]
        return float(self.meta("rope.freq_base", 10000.0))  # type: ignore[arg-type]

    def rope_positions(self, n: int, layer: int) -> np.ndarray:
        positions = np.arange(n, dtype=np.float64)
        local = self.cfg.arch == "gemma3" and self.sliding(layer)  # gemma3's local RoPE
        if self.meta("rope.scaling.type") == "linear" and not local:
            positions = positions / float(self.meta("rope.scaling.factor"))  # type: ignore[arg-type]
        return positions

    def rope_divisors(self) -> np.ndarray | None:
        if "rope_freqs.weight" in self.f.tensors:
            return self.vector("rope_freqs.weight")
        if self.meta("rope.scaling.type") == "longrope":
            original = int(self.meta("rope.scaling.original_context_length"))  # type: ignore[arg-type]
            which = "long" if self.n_ctx > original else "short"
            return self.vector(f"rope_factors_{which}.weight")
        return None

    def rope_magnitude(self) -> float:
        """LongRoPE's factor on cos and sin."""
        return float(self.meta("rope.scaling.attn_factor", 1.0))  # type: ignore[arg-type]

    def attention_mask(self, n: int, layer: int) -> np.ndarray:
        """0 where query i may see key j (j <= i, and i - j < window in a sliding layer), else
        -inf."""
        i, j = np.arange(n)[:, None], np.arange(n)[None, :]
        allowed = j <= i
        if self.sliding(layer) and self.window():
            allowed &= i - j < self.window()
        return np.where(allowed, 0.0, -np.inf)

    def soft_cap(self, x: np.ndarray, key: str, gemma2_default: float) -> np.ndarray:
        default = gemma2_default if self.cfg.arch == "gemma2" else 0.0
        cap = float(self.meta(key, default) or 0.0)  # type: ignore[arg-type]
        return cap * np.tanh(x / cap) if cap else x

    def experts(self, h: np.ndarray, p: str) -> np.ndarray:
        """The routed MLP of h[n, dim], token by token."""
        used = int(self.meta("expert_used_count"))  # type: ignore[arg-type]
        router = self.matrix(p + "ffn_gate_inp.weight")
        gates, ups, downs = (
            self.matrix(p + f"ffn_{w}_exps.weight") for w in ("gate", "up", "down")
        )
        out = np.zeros_like(h)
        for t, row in enumerate(h):
            logits = router @ row
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            top = np.argsort(-probs)[:used]
            for e, weight in zip(top, probs[top] / probs[top].sum(), strict=True):
                gate, up = gates[e] @ row, ups[e] @ row
                out[t] += weight * (downs[e] @ (gate / (1 + np.exp(-gate)) * up))
        return out

    def post_norm(self, y: np.ndarray, name: str) -> np.ndarray:
        return self.norm(y, name) if name in self.f.tensors else y

    def forward(self, ids: list[int]) -> np.ndarray:
        """Logits f64[n, vocab] for every position of `ids`."""
        cfg = self.cfg
        n, hd = len(ids), cfg.head_dim
        divisors = self.rope_divisors()
        embd = self.matrix("token_embd.weight")
        x = embd[np.asarray(ids)]  # (n, dim)
        if self.gemma:
            x = x * np.sqrt(cfg.dim)
        query_scale = 1 / np.sqrt(int(self.meta("attention.key_length", hd)))  # type: ignore[arg-type]
        residual = 1.0
        if cfg.arch == "granite":
            x = x * float(self.meta("embedding_scale"))  # type: ignore[arg-type]
            query_scale = float(self.meta("attention.scale"))  # type: ignore[arg-type]
            residual = float(self.meta("residual_scale"))  # type: ignore[arg-type]
        for i in range(cfg.n_layers):
            p = f"blk.{i}."
            pos, base = self.rope_positions(n, i), self.rope_base(i)
            mask = self.attention_mask(n, i)
            h = self.norm(x, p + "attn_norm.weight")
            q = self.biased(self.linear(h, p + "attn_q.weight"), p + "attn_q.weight")
            k = self.biased(self.linear(h, p + "attn_k.weight"), p + "attn_k.weight")
            v = self.biased(self.linear(h, p + "attn_v.weight"), p + "attn_v.weight")
            q, k = q.reshape(n, cfg.n_heads, hd), k.reshape(n, cfg.n_kv_heads, hd)
            if p + "attn_q_norm.weight" in self.f.tensors:
                q = rms_norm(q, self.vector(p + "attn_q_norm.weight"), cfg.norm_eps)
                k = rms_norm(k, self.vector(p + "attn_k_norm.weight"), cfg.norm_eps)
            q = rope_half(q, pos, base, cfg.n_rot, divisors, self.rope_magnitude())
            k = rope_half(k, pos, base, cfg.n_rot, divisors, self.rope_magnitude())
            v = v.reshape(n, cfg.n_kv_heads, hd)
            group = cfg.n_heads // cfg.n_kv_heads
            k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # (n, hq, hd)
            scores = np.einsum("qhd,khd->hqk", q, k) * query_scale
            scores = self.soft_cap(scores, "attn_logit_softcapping", 50.0) + mask
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            probs = scores / scores.sum(-1, keepdims=True)
            att = np.einsum("hqk,khd->qhd", probs, v).reshape(n, cfg.q_dim)
            o = p + "attn_output.weight"
            attn_out = self.biased(self.linear(att, o), o)
            x = x + residual * self.post_norm(attn_out, p + "post_attention_norm.weight")
            h = self.norm(x, p + "ffn_norm.weight")
            if cfg.arch == "qwen3moe":
                ffn_out = self.experts(h, p)
                x = x + ffn_out
                continue
            up = self.biased(self.linear(h, p + "ffn_up.weight"), p + "ffn_up.weight")
            if cfg.arch == "starcoder2":
                act = gelu_tanh(up)
            elif self.gemma:
                act = gelu_tanh(self.linear(h, p + "ffn_gate.weight")) * up
            else:
                gate = self.linear(h, p + "ffn_gate.weight")
                act = gate / (1 + np.exp(-gate)) * up
            down = p + "ffn_down.weight"
            ffn_out = self.biased(self.linear(act, down), down)
            x = x + residual * self.post_norm(ffn_out, p + "post_ffw_norm.weight")
        x = self.norm(x, "output_norm.weight")
        logits = self.linear(x, "token_embd.weight" if cfg.tied_embeddings else "output.weight")
        if cfg.arch == "granite":
            logits = logits / float(self.meta("logit_scale"))  # type: ignore[arg-type]
        return self.soft_cap(logits, "final_logit_softcapping", 30.0)
