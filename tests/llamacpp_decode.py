"""Greedy decoding with llama.cpp (llama-cpp-python) on given token ids: the reference side of
tests/test_llamacpp_agreement.py and tests/make_llamacpp_decode_reference.py.

The KV cache is kept in F32 (llama.cpp's default is F16) so that, on F16 weights, the two
engines differ only in how the matrix products round, not in a lossy cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Code and text an editor sends; each becomes one greedy run.
PROMPTS: tuple[str, ...] = (
    "def fibonacci(n):\n    ",
    "import numpy as np\n\ndef normalize(v):\n    \"\"\"Scale v to unit length.\"\"\"\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n",
    "The capital of France is",
    "# Read a CSV file and print the sum of the second column\nimport csv\n",
    "for (int i = 0; i < n; i++) {\n",
    "Once upon a time, in a small village by the sea,",
    "SELECT name, COUNT(*) FROM orders\n",
)
DECODE_TOKENS = 32
TOP = 8  # logits recorded per position for the quantized file


def open_llama(path: Path | str, threads: int = 1) -> Any:
    import llama_cpp

    from engine.eval.llama_cpp_load import without_extra_buffers

    # No weight repacking and no AMX buffer, as the benchmarks run llama.cpp: the build made
    # here dies in its AMX buffer's first product.
    with without_extra_buffers():
        return _open(llama_cpp, path, threads)


def _open(llama_cpp: Any, path: Path | str, threads: int) -> Any:
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=256,
        n_batch=256,
        n_threads=threads,
        n_threads_batch=threads,
        type_k=0,  # GGML_TYPE_F32
        type_v=0,
        verbose=False,
    )


def _last_logits(llm: Any) -> np.ndarray:
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()


def greedy(llm: Any, ids: list[int], n: int = DECODE_TOKENS) -> tuple[list[int], list[np.ndarray]]:
    """llama.cpp's n greedy tokens after `ids`, and the logits each was chosen from."""
    llm.reset()
    llm.eval(ids)
    out: list[int] = []
    logits: list[np.ndarray] = []
    for _ in range(n):
        row = _last_logits(llm)
        token = int(row.argmax())
        out.append(token)
        logits.append(row)
        llm.eval([token])
    return out, logits


def top_logits(row: np.ndarray, k: int = TOP) -> tuple[list[int], list[float]]:
    ids = np.argsort(-row, kind="stable")[:k]
    return [int(i) for i in ids], [round(float(row[i]), 4) for i in ids]


def margin(row: np.ndarray) -> float:
    """The gap between the best and second-best logit: how near a tie the choice was."""
    a, b = np.partition(row, -2)[-2:]
    return float(abs(b - a))
