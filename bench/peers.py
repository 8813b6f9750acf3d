"""The decode benchmark's protocol (engine/runtime/bench.py) run on a peer engine: llama.cpp
through llama-cpp-python, or the eager PyTorch llama in torch_llama.py. Same file, same
512-token prompt (our tokenizer's ids, fed to every engine as ids), same 128 greedy steps after
a 16-token prompt, best of `repeats`; one row in the shape of the runtime's rows.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np

from engine.eval.llama_cpp_load import without_extra_buffers
from engine.runtime.bench import DECODE_TOKENS, PREFILL_TOKENS, _peak_rss_mb, _prompt_ids


class PeerEngine(Protocol):
    def reset(self) -> None: ...
    def forward(self, ids: list[int]) -> Any: ...  # the last token's logits


class LlamaCppEngine:
    """llama.cpp at its fastest CPU settings: flash attention on, batch 512; `extra_buffers`
    False loads the weights without llama.cpp's repacked and AMX buffers."""

    def __init__(self, path: str, threads: int, extra_buffers: bool = True) -> None:
        import llama_cpp

        with contextlib.nullcontext() if extra_buffers else without_extra_buffers():
            self.llm = self._load(llama_cpp, path, threads)
        self.n_vocab = self.llm.n_vocab()

    @staticmethod
    def _load(llama_cpp: Any, path: str, threads: int) -> Any:
        return llama_cpp.Llama(
            model_path=path,
            n_ctx=1024,
            n_batch=512,
            n_ubatch=512,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=True,
            verbose=False,
        )

    def reset(self) -> None:
        self.llm.reset()

    def forward(self, ids: list[int]) -> np.ndarray:
        self.llm.eval(ids)
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.n_vocab,))


class TorchEngine:
    def __init__(self, path: str, threads: int) -> None:
        import torch
        from torch_llama import TorchLlama

        torch.set_num_threads(threads)
        self.model = TorchLlama(path)

    def reset(self) -> None:
        self.model.reset()

    def forward(self, ids: list[int]) -> Any:
        return self.model.forward(ids)


ENGINES = {"llama.cpp": LlamaCppEngine, "torch": TorchEngine}


def bench_peer(engine: str, path: str, threads: int, fmt: str, repeats: int = 2) -> dict[str, Any]:
    from engine.tokenizer import from_gguf

    if engine == "llama.cpp":
        import llama_cpp  # noqa: F401  (imported before the clock starts: not load time)
    else:
        import torch  # noqa: F401
        import torch_llama  # noqa: F401
    prompt = _prompt_ids(SimpleNamespace(tokenizer=from_gguf(path)), PREFILL_TOKENS)
    started = time.perf_counter()
    peer: PeerEngine = ENGINES[engine](path, threads)
    load_ms = (time.perf_counter() - started) * 1e3
    prefill_s = decode_s = decode_cpu_s = float("inf")
    for _ in range(repeats):
        peer.reset()
        t0 = time.perf_counter()
        int(peer.forward(prompt).argmax())
        prefill_s = min(prefill_s, time.perf_counter() - t0)
        peer.reset()
        token = int(peer.forward(prompt[:16]).argmax())
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(DECODE_TOKENS):
            token = int(peer.forward([token]).argmax())
        decode_s = min(decode_s, time.perf_counter() - t0)
        decode_cpu_s = min(decode_cpu_s, time.process_time() - c0)
    return {
        "engine": engine,
        "model": Path(path).name,
        "format": fmt,
        "threads": threads,
        "decode_tok_s": round(DECODE_TOKENS / decode_s, 2),
        "prefill_tok_s": round(PREFILL_TOKENS / prefill_s, 2),
        "first_token_ms": round(prefill_s * 1e3, 1),
        "load_ms": round(load_ms, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        # As the runtime's row: CPU seconds, what one uncontended core does (threads=1 only).
        "decode_tok_s_cpu_time": round(DECODE_TOKENS / decode_cpu_s, 2),
    }


def llama_cpp_replay(records: list[dict[str, Any]], path: str, threads: int,
                     extra_buffers: bool = False, uncached_limit: int = 10) -> dict[str, Any]:
    """Ghost-text prompts (`bench typing`'s trace: ids, tokens generated, whether it was a
    prefetch) through llama.cpp in order, greedy, as many tokens as ours made: with its
    prompt cache (the longest common prefix kept, as llama-server's cache_prompt) and
    without (every prompt evaluated whole; the first `uncached_limit` requests only, since
    each is a whole prefill). ms per request, prefetches run but not counted."""
    import llama_cpp

    n_ctx = max(len(r["ids"]) + r["generated_tokens"] for r in records) + 8
    with contextlib.nullcontext() if extra_buffers else without_extra_buffers():
        llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_batch=512, n_ubatch=512,
                              n_threads=threads, n_threads_batch=threads, flash_attn=True,
                              verbose=False)
    out: dict[str, Any] = {}
    for cached in (True, False):
        times = []
        for r in records if cached else [r for r in records if not r["prefetch"]][
                :uncached_limit]:
            started = time.perf_counter()
            if not cached:
                llm.reset()
            n = max(1, r["generated_tokens"])
            for i, _ in enumerate(llm.generate(r["ids"], top_k=1, temp=0.0, reset=True)):
                if i + 1 >= n:
                    break
            if not r["prefetch"]:
                times.append((time.perf_counter() - started) * 1000)
        out["with_cache" if cached else "without_cache"] = times
    return out
