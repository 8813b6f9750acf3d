"""Decode step time on each kernel set the CPU offers, measured in one process:
`python bench/bench_kernel_sets.py [--model PATH] [--threads N] [--rounds R]`.

The best kernels (AVX-VNNI matrix-vector and AVX-512 matrix-matrix kernels where the CPU has
them) and the same kernels held to plain AVX2 (`set_force_avx2`) take turns, round after round,
so that both see the same machine: on a shared machine, two processes minutes apart differ by
more than the kernels do. Each round decodes STEPS greedy tokens after a short prompt; a round's
figure is the mean of its fastest half of steps, and the row reports the median over rounds.
Prints one JSON row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

PROMPT_TOKENS = 16
STEPS = 64


def _round_ms(decoder: Any, prompt: list[int]) -> float:
    """One round: STEPS greedy steps after the prompt; the mean of the fastest half, in ms."""
    decoder.cache.rollback(0)
    token = int(decoder.forward(prompt).argmax())
    steps: list[float] = []
    for _ in range(STEPS):
        t0 = time.perf_counter()
        token = int(decoder.forward([token]).argmax())
        steps.append(time.perf_counter() - t0)
    fastest = sorted(steps)[: STEPS // 2]
    return sum(fastest) / len(fastest) * 1e3


def measure(path: str | None, threads: int, rounds: int) -> dict[str, Any]:
    import engine.runtime
    from engine import _native
    from engine.runtime.bench import _prompt_ids

    model = engine.runtime.load(path, threads=threads)
    prompt = _prompt_ids(model, PROMPT_TOKENS)
    best = _native.cpu_features()
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        for _ in range(rounds):
            for held in (False, True):
                _native.set_force_avx2(held)
                times[held].append(_round_ms(model.decoder, prompt))
    finally:
        _native.set_force_avx2(False)
    best_ms, avx2_ms = statistics.median(times[False]), statistics.median(times[True])
    return {
        "model": path or "default",
        "threads": threads,
        "best_kernels": f"{best['matvec_kernels']}/{best['kernels']}",
        "best_step_ms": round(best_ms, 3),
        "avx2_step_ms": round(avx2_ms, 3),
        "speedup": round(avx2_ms / best_ms, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="GGUF file (default: the embedded model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.threads, args.rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
