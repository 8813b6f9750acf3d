"""KV cache reuse between two prompts that differ in the middle, as ghost text's do: prefill
time and tokens computed for the second prompt from scratch, with the cached prefix only, and
with unchanged runs after the change moved into place (`prefill(..., reuse_min=N)`), with the
logits' cosine similarity to the from-scratch run. Figures, never pass/fail. Beside the wall
time, the process's CPU time (all kernel threads), which a busy shared machine inflates less.

The prompt is real code (a file of Python's standard library, cut to --tokens tokens) split at
its middle; the edits: a character typed at the split (the text after it moves right), and a
chunk of --drop tokens dropped from the head (the rest moves left).

    .venv/bin/python bench/bench_cache_reuse.py [--model PATH] [--threads N] [--tokens N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import engine.runtime
from engine.runtime.cache_reuse import plan_reuse
from engine.runtime.decoder import Decoder
from engine.runtime.generate import prefill

SOURCE = Path(json.__file__).parent.parent / "argparse.py"  # long, plain, stable code
REPEATS = 3
MIN_CHUNKS = (16, 32, 64, 256)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def edits(text: str, encode: Callable[[str], list[int]], drop: int) -> dict[str, tuple]:
    """name -> (old prompt ids, new prompt ids)."""
    mid = len(text) // 2
    mid = text.index("\n", mid) + 1  # at a line's start, after its indentation, as a cursor
    while text[mid] == " ":
        mid += 1
    old = encode(text)
    return {
        "char typed in the middle": (old, encode(text[:mid] + "x" + text[mid:])),
        f"{drop} tokens dropped at the head": (old, old[drop:]),
    }


def measure(decoder: Decoder, old: list[int], new: list[int]) -> list[dict[str, object]]:
    """The second prompt's prefill per mode, best of REPEATS, the first one's cache restored
    before each."""
    cache = decoder.cache
    cache.rollback(0)
    prefill(decoder, old)
    saved_k, saved_v = cache.k[:, : len(old)].copy(), cache.v[:, : len(old)].copy()
    cache.rollback(0)
    reference = prefill(decoder, new).copy()
    modes: list[tuple[str, int | None, bool]] = [("fresh", None, False), ("prefix", None, True)]
    modes += [(f"chunks>={m}", m, True) for m in MIN_CHUNKS]
    rows: list[dict[str, object]] = []
    for mode, reuse_min, cached in modes:
        best, best_cpu, logits = float("inf"), float("inf"), reference
        for _ in range(REPEATS):
            cache.rollback(0)
            if cached:  # the cache as the first prompt left it
                cache.k[:, : len(old)], cache.v[:, : len(old)] = saved_k, saved_v
                cache.extend_moved(old)
            cpu = time.process_time()
            logits = prefill(decoder, new, reuse_min=reuse_min).copy()
            best_cpu = min(best_cpu, time.process_time() - cpu)
            stats = decoder.last_prefill
            assert stats is not None
            best = min(best, stats.seconds)
        started = time.perf_counter()
        plan_reuse(old if cached else [], new, reuse_min)
        plan_ms = 1e3 * (time.perf_counter() - started)
        rows.append(
            {
                "mode": mode,
                "prompt": len(new),
                "prefix": stats.prefix,
                "shifted": stats.shifted,
                "computed": stats.computed,
                "ms": round(1e3 * best, 1),
                "cpu_ms": round(1e3 * best_cpu, 1),
                "plan_ms": round(plan_ms, 2),
                "cosine": round(cosine(logits, reference), 6),
                "same_argmax": bool(logits.argmax() == reference.argmax()),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=1500)
    ap.add_argument("--drop", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = engine.runtime.load(args.model, threads=args.threads, n_ctx=args.tokens + 256)
    decoder, tok = model.decoder, model.tokenizer
    text = tok.decode(tok.encode(SOURCE.read_text(encoding="utf-8"))[: args.tokens])
    rows = []
    for name, (old, new) in edits(text, tok.encode, args.drop).items():
        rows += [{"edit": name} | row for row in measure(decoder, old, new)]
    if args.json:
        print(json.dumps({"model": str(model.path), "threads": args.threads, "rows": rows}))
        return
    print(f"{model.path.name}, {args.threads} threads, {SOURCE.name} cut to {args.tokens} tokens")
    head = f"{'edit':<32}{'mode':<12}{'prefix':>7}{'shifted':>8}{'computed':>9}"
    print(head + f"{'ms':>9}{'cpu ms':>9}{'plan ms':>9}{'cosine':>10}  argmax")
    for r in rows:
        print(
            f"{r['edit']:<32}{r['mode']:<12}{r['prefix']:>7}{r['shifted']:>8}{r['computed']:>9}"
            f"{r['ms']:>9.1f}{r['cpu_ms']:>9.1f}{r['plan_ms']:>9.2f}{r['cosine']:>10.6f}  "
            + ("same" if r["same_argmax"] else "DIFFERS")
        )


if __name__ == "__main__":
    main()
