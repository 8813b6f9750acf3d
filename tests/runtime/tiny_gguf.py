"""Small GGUF files written with `gguf.GGUFWriter` for the runtime's tests: tiny random decoders
of each supported architecture's tensor layout (fast to run against the numpy reference), and
broken variants of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, Keys
from gguf.quants import quantize

from tests.quant_cases import KQUANTS, random_kquant_rows

TINY = {"dim": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "ffn_dim": 96, "vocab": 128}


def tiny_tensors(
    arch: str, seed: int = 0, sizes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """name -> f32 array in numpy order ([rows, k] for matrices); `sizes` overrides TINY's."""
    rng = np.random.default_rng(seed)
    size = TINY | (sizes or {})
    d, ff, v = size["dim"], size["ffn_dim"], size["vocab"]
    hd = size.get("head_dim") or d // size["n_heads"]  # qwen3 heads need not tile dim
    q, kv = size["n_heads"] * hd, size["n_kv_heads"] * hd

    def mat(rows: int, k: int) -> np.ndarray:
        return (rng.standard_normal((rows, k)) / np.sqrt(k)).astype(np.float32)

    def norm(n: int = d) -> np.ndarray:
        return (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    t = {"token_embd.weight": mat(v, d), "output_norm.weight": norm()}
    for i in range(size["n_layers"]):
        p = f"blk.{i}."
        t |= {
            p + "attn_norm.weight": norm(),
            p + "attn_q.weight": mat(q, d),
            p + "attn_k.weight": mat(kv, d),
            p + "attn_v.weight": mat(kv, d),
            p + "attn_output.weight": mat(d, q),
            p + "ffn_norm.weight": norm(),
            p + "ffn_gate.weight": mat(ff, d),
            p + "ffn_up.weight": mat(ff, d),
            p + "ffn_down.weight": mat(d, ff),
        }
        if arch == "starcoder2":  # LayerNorms and projections with biases, an ungated MLP
            del t[p + "ffn_gate.weight"]
            t |= {
                p + "attn_norm.bias": 0.1 * mat(1, d)[0],
                p + "attn_q.bias": 0.1 * mat(1, q)[0],
                p + "attn_k.bias": 0.1 * mat(1, kv)[0],
                p + "attn_v.bias": 0.1 * mat(1, kv)[0],
                p + "attn_output.bias": 0.1 * mat(1, d)[0],
                p + "ffn_norm.bias": 0.1 * mat(1, d)[0],
                p + "ffn_up.bias": 0.1 * mat(1, ff)[0],
                p + "ffn_down.bias": 0.1 * mat(1, d)[0],
            }
        if arch in ("gemma2", "gemma3"):  # norms of the attention and MLP outputs
            t |= {p + "post_attention_norm.weight": norm(), p + "post_ffw_norm.weight": norm()}
        if arch in ("qwen3", "qwen3moe", "gemma3"):  # RMSNorm of each Q and K head before RoPE
            t |= {p + "attn_q_norm.weight": norm(hd), p + "attn_k_norm.weight": norm(hd)}
        if arch == "qwen2":
            t |= {
                p + "attn_q.bias": 0.1 * mat(1, q)[0],
                p + "attn_k.bias": 0.1 * mat(1, kv)[0],
                p + "attn_v.bias": 0.1 * mat(1, kv)[0],
            }
    if arch == "starcoder2":
        t["output_norm.bias"] = 0.1 * mat(1, d)[0]
    if arch == "phi3":  # Q, K, V as one matrix; gate and up as one of 2 * ffn_dim rows
        for i in range(size["n_layers"]):
            p = f"blk.{i}."
            parts = [t.pop(p + f"attn_{x}.weight") for x in "qkv"]
            t[p + "attn_qkv.weight"] = np.concatenate(parts)
            gate, up = t.pop(p + "ffn_gate.weight"), t.pop(p + "ffn_up.weight")
            t[p + "ffn_up.weight"] = np.concatenate([gate, up])
    if arch == "qwen3moe":  # the MLP as routed experts: a router and [n_expert, rows, k] tensors
        n_exp, ffe = size.get("n_expert", 4), size.get("expert_ffn_dim", 32)
        for i in range(size["n_layers"]):
            p = f"blk.{i}."
            for name in ("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"):
                del t[p + name]
            t |= {
                p + "ffn_gate_inp.weight": mat(n_exp, d),
                p + "ffn_gate_exps.weight": np.stack([mat(ffe, d) for _ in range(n_exp)]),
                p + "ffn_up_exps.weight": np.stack([mat(ffe, d) for _ in range(n_exp)]),
                p + "ffn_down_exps.weight": np.stack([mat(d, ffe) for _ in range(n_exp)]),
            }
    if arch.startswith("gemma"):
        # Gemma multiplies the embedding by sqrt(dim): rows of the others' size swamp the
        # tiny layers' outputs, and every greedy step (the embedding tied to the output)
        # repeats the last token. Halved, the runs vary while llama.cpp's top-1 leads stay
        # several times its logit gap to ours.
        t["token_embd.weight"] /= np.float32(2.0)
    return t


def write_tiny_gguf(
    path: Path,
    arch: str = "llama",
    fmt: str = "F32",
    drop: Iterable[str] = (),
    reshape: dict[str, tuple[int, ...]] | None = None,
    metadata_arch: str | None = None,
    formats: dict[str, str] | None = None,
    extra: Callable[[GGUFWriter], None] | None = None,
    sizes: dict[str, int] | None = None,
    extra_tensors: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a tiny decoder; `drop` leaves tensors out, `reshape` replaces a tensor by a zero
    tensor of another shape, `metadata_arch` overrides general.architecture, `formats` stores
    the named matrices in another format than `fmt` (as mixed files like Q4_K_M do); `extra`
    adds metadata (a vocabulary, say); `sizes` overrides TINY's; `extra_tensors` adds (or
    replaces) float32 tensors, kept in F32 when 1-D (Llama 3's rope_freqs, say). Matrices in
    a k-quant (which the `gguf` package cannot quantize to) are random valid super-blocks
    whose values are of the float matrices' size."""
    size = TINY | (sizes or {})
    writer = GGUFWriter(str(path), metadata_arch or arch)
    writer.add_block_count(size["n_layers"])
    writer.add_context_length(256)
    writer.add_embedding_length(size["dim"])
    writer.add_feed_forward_length(size["ffn_dim"])
    writer.add_head_count(size["n_heads"])
    writer.add_head_count_kv(size["n_kv_heads"])
    writer.add_rope_freq_base(10000.0)
    if arch == "starcoder2":
        writer.add_layer_norm_eps(1e-5)
    else:
        writer.add_layer_norm_rms_eps(1e-5)
    if arch == "qwen3moe":
        writer.add_expert_count(size.get("n_expert", 4))
        writer.add_expert_used_count(size.get("n_expert_used", 2))
        writer.add_expert_feed_forward_length(size.get("expert_ffn_dim", 32))
    if "head_dim" in size:
        writer.add_key_length(size["head_dim"])
        writer.add_value_length(size["head_dim"])
    if extra is not None:
        extra(writer)
    rng = np.random.default_rng(1)
    tensors = tiny_tensors(arch, sizes=sizes) | (extra_tensors or {})
    for name, value in tensors.items():
        if name in drop:
            continue
        qtype = GGMLQuantizationType[(formats or {}).get(name, fmt)]
        if name.endswith("ffn_gate_inp.weight"):  # routers stay F32, as llama.cpp keeps them
            qtype = GGMLQuantizationType.F32
        if reshape and name in reshape:
            value = np.zeros(reshape[name], np.float32)
        if value.ndim == 2 and qtype.name in KQUANTS:
            # d scale q - dmin min with d <= 1e-4: a few hundredths, near the float matrices'
            # 1 / sqrt(k) (larger, random blocks' common offset makes attention nearly one-hot
            # and a comparison with the reference ill-conditioned)
            rows, k = value.shape
            blocks = random_kquant_rows(qtype.name, rows, k, rng, max_scale=1e-4)
            writer.add_tensor(name, blocks, raw_dtype=qtype)
        elif value.ndim >= 2 and qtype != GGMLQuantizationType.F32:
            writer.add_tensor(name, quantize(value, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def llama3_rope_factors(
    head_dim: int,
    base: float = 10000.0,
    factor: float = 8.0,
    low_freq_factor: float = 1.0,
    high_freq_factor: float = 4.0,
    original_context: int = 8192,
) -> np.ndarray:
    """Llama 3.1's per-frequency RoPE divisors as Hugging Face defines them (rope_type
    "llama3"), the values llama.cpp's converter stores as `rope_freqs.weight`: 1 for
    wavelengths shorter than original_context / high_freq_factor, `factor` for those longer
    than original_context / low_freq_factor, a smooth blend between."""
    factors = []
    for i in range(head_dim // 2):
        wavelength = 2 * math.pi * base ** (2 * i / head_dim)
        if wavelength < original_context / high_freq_factor:
            factors.append(1.0)
        elif wavelength > original_context / low_freq_factor:
            factors.append(factor)
        else:
            smooth = (original_context / wavelength - low_freq_factor) / (
                high_freq_factor - low_freq_factor
            )
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, np.float32)


def no_vocabulary(writer: GGUFWriter) -> None:
    """A file without a tokenizer, sized by `{arch}.vocab_size`, which llama.cpp loads (as
    `tokenizer.ggml.model = none`) and runs on token ids: enough for a comparison of
    decoders that never tokenizes text."""
    writer.add_tokenizer_model("none")
    writer.add_uint32(Keys.LLM.VOCAB_SIZE.format(arch=writer.arch), TINY["vocab"])
