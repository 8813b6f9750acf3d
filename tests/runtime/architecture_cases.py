"""The tiny files of each architecture and variant the runtime reads, shared by its tests
against the numpy reference (test_architectures.py) and against llama.cpp
(test_llamacpp_architectures.py, whose record tests/make_llamacpp_architectures_reference.py
writes from the same files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFWriter, Keys, RopeScalingType
from tiny_gguf import TINY, llama3_rope_factors, no_vocabulary, write_tiny_gguf

HEAD_DIM = TINY["dim"] // TINY["n_heads"]
WINDOW = 4  # a sliding window shorter than the tests' prompts


def linear_rope(writer: GGUFWriter) -> None:
    # As DeepSeek-Coder's files: rope_scaling {"type": "linear", "factor": 4.0}
    writer.add_rope_scaling_type(RopeScalingType.LINEAR)
    writer.add_rope_scaling_factor(4.0)


def sliding_window(writer: GGUFWriter) -> None:
    writer.add_uint32(Keys.Attention.SLIDING_WINDOW.format(arch=writer.arch), WINDOW)


def gemma2_caps(writer: GGUFWriter) -> None:
    sliding_window(writer)
    writer.add_float32(Keys.LLM.ATTN_LOGIT_SOFTCAPPING.format(arch=writer.arch), 0.5)
    writer.add_float32(Keys.LLM.FINAL_LOGIT_SOFTCAPPING.format(arch=writer.arch), 5.0)


def gemma3_layers(writer: GGUFWriter) -> None:
    sliding_window(writer)
    writer.add_uint32(Keys.Attention.SLIDING_WINDOW_PATTERN.format(arch=writer.arch), 2)
    writer.add_float32(Keys.Rope.FREQ_BASE_SWA.format(arch=writer.arch), 100.0)
    writer.add_rope_scaling_type(RopeScalingType.LINEAR)
    writer.add_rope_scaling_factor(8.0)


def longrope(original_context: int) -> dict[str, Any]:
    """phi3's LongRoPE as Phi-3-mini-128k's files hold it: both factor sets, the magnitude
    factor sqrt(1 + ln(scale) / ln(original)), and the original context, which decides the
    set a context of the tiny file's 256 uses (short within it, long beyond)."""

    def metadata(writer: GGUFWriter) -> None:
        writer.add_rope_scaling_type(RopeScalingType.LONGROPE)
        writer.add_rope_scaling_orig_ctx_len(original_context)
        writer.add_float32(Keys.Rope.SCALING_ATTN_FACTOR.format(arch=writer.arch), 1.19)

    half = HEAD_DIM // 2
    return {
        "extra": metadata,
        "extra_tensors": {
            "rope_factors_short.weight": np.linspace(1.0, 1.8, half, dtype=np.float32),
            "rope_factors_long.weight": np.geomspace(1.0, 40.0, half).astype(np.float32),
        },
    }


def granite_multipliers(writer: GGUFWriter) -> None:
    # Granite 3's four multipliers (its files: embedding 12, residual 0.22, attention 1/128,
    # logits / 8), of sizes that leave the tiny model's greedy runs varied
    arch = writer.arch
    writer.add_float32(Keys.LLM.EMBEDDING_SCALE.format(arch=arch), 1.5)
    writer.add_float32(Keys.LLM.RESIDUAL_SCALE.format(arch=arch), 0.7)
    writer.add_float32(Keys.Attention.SCALE.format(arch=arch), 0.125)  # not 1/sqrt(16)
    writer.add_float32(Keys.LLM.LOGIT_SCALE.format(arch=arch), 2.0)


# (architecture, variant) -> write_tiny_gguf's arguments beyond the architecture and format
CASES: dict[tuple[str, str], dict[str, Any]] = {
    ("llama", "plain"): {},
    # Llama 3.1's rope_scaling with an original context short enough that the tiny head's
    # frequencies fall in all three bands (kept, blended, divided by the factor)
    ("llama", "llama3-rope"): {
        "extra_tensors": {"rope_freqs.weight": llama3_rope_factors(HEAD_DIM, original_context=64)}
    },
    ("llama", "linear-rope"): {"extra": linear_rope},
    ("llama", "sliding-window"): {"extra": sliding_window},
    ("qwen3", "plain"): {},
    # As Qwen3's own files: heads wider than dim / n_heads (0.6B: 16 x 128 for dim 1024)
    ("qwen3", "wide-heads"): {"sizes": {"head_dim": 32}},
    ("starcoder2", "plain"): {},
    ("gemma", "plain"): {},
    # Gemma 2 with a window shorter than the tests' prompts (layer 0 windowed, layer 1
    # global) and caps low enough to bend the tiny model's scores and logits (its own files
    # hold 50 and 30)
    ("gemma2", "plain"): {"extra": gemma2_caps},
    # Gemma 3 with one windowed layer to one global (its own pattern is 5 to 1), a local RoPE
    # base of its own (100; the global layer keeps the file's 10000) and linear scaling on the
    # global layer only, as its 4B+ files hold (factor 8)
    ("gemma3", "plain"): {"extra": gemma3_layers},
    ("phi3", "plain"): {},
    ("phi3", "longrope-short"): longrope(original_context=512),
    ("phi3", "longrope-long"): longrope(original_context=128),
    ("granite", "plain"): {"extra": granite_multipliers},
    ("qwen3moe", "plain"): {},  # 4 experts of 32 rows, 2 used per token
}

# The cases recorded from llama.cpp. Not the sliding window: llama.cpp's `llama` architecture
# reads no window (its converter writes none for Mistral), so it attends to the whole context
# where Hugging Face's Mistral, the numpy reference and this runtime apply the window.
LLAMACPP_CASES = [case for case in CASES if case != ("llama", "sliding-window")]

# The prompt of the llama.cpp runs (token ids) and how many greedy tokens follow it.
LLAMACPP_PROMPT = [1, 5, 17, 3, 99, 42, 7, 120, 64, 2, 33]
LLAMACPP_DECODE_TOKENS = 16


def case_name(arch: str, variant: str) -> str:
    return f"{arch}/{variant}"


def write_case(path: Path, arch: str, variant: str, fmt: str, vocabulary: bool = False) -> Path:
    """The case's tiny file (the same bytes for the same arguments: fixed seeds); with
    `vocabulary`, a tokenizer-less vocabulary that llama.cpp loads."""
    kwargs = dict(CASES[(arch, variant)])
    if vocabulary:
        inner = kwargs.get("extra")

        def extra(writer: GGUFWriter) -> None:
            no_vocabulary(writer)
            if inner is not None:
                inner(writer)

        kwargs["extra"] = extra
    return write_tiny_gguf(path, arch, fmt, **kwargs)
