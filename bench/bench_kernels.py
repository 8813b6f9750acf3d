"""Kernel benchmark: how close the native kernels come to the machine and to the peers a user
would otherwise reach for. A measurement, not a test: every figure is reported beside a peer
measured in the same run, on the same thread count.

- stream_read: the machine's read bandwidth, a native wide-load read of a buffer larger than
  the caches (the ceiling for decode, which reads every weight once per token);
- matvec (decode) for every weight format on the real models' shapes, in GB/s of weight bytes,
  over a pool of copies too large to stay cached, beside stream_read over the same bytes (in
  one call: the target's peer; and in one call per matrix, as the kernel reads them);
  and matvec-cached, one matrix multiplied repeatedly (its compute rate, weights in cache);
- matmul (prefill, vision) F32 and Q8_0 at 512 x 768 -> 3072, in GFLOP/s, beside numpy's BLAS
  and torch; where the CPU has AVX-512, also matmul-avx2 (the kernels held to AVX2) beside
  numpy's BLAS held to AVX2 (OPENBLAS_CORETYPE=Haswell);
- attention_decode at 512, 2048 and 4096 cached tokens with a float and a half cache, when the
  module has it, and over every layer's own cache as a decode step meets it (SmolLM2-135M's
  heads at 3,000 tokens, Qwen2.5-Coder-1.5B's at 4,096 with a half cache).

Each thread count runs in its own process, so that BLAS and torch start with that many threads.

    python bench/bench_kernels.py [--json] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

# rows x k, as the models' linear layers have them (out features x in features)
MATVEC_SHAPES = [(576, 1536), (1536, 576), (768, 3072), (49152, 576), (50000, 768)]
# Q5_0 and Q5_1: llama.cpp's fallback in K-quant files for rows that are not a multiple of 256
MATVEC_FORMATS = [
    "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K",
]
CACHED_SHAPE = (768, 3072)  # 2.4 MB in Q8_0: stays in L2 + L3 between calls
PREFILL = (512, 768, 3072)  # activation rows n, k, weight rows
ATTENTION_CTX = [512, 2048, 4096]
ATTENTION_LAYERS = (30, 8192, 3000)  # layers, cache capacity, filled positions (SmolLM2-135M)
ATTENTION_HEADS = (9, 3, 64)  # query heads, key/value heads, head size
# Qwen2.5-Coder-1.5B's attention at a 4K context, half cache (the runtime's default)
ATTENTION_LAYERS_1P5B = (28, 4096, 4096)
ATTENTION_HEADS_1P5B = (12, 2, 128)
POOL_BYTES = 512 << 20  # larger than the caches a process gets here: passes read from memory

Row = dict[str, Any]
PROGRESS = "progress: "  # a worker's stderr lines that say what it measures now


def say(message: str) -> None:
    """Tell the parent process what this worker measures now (it shows it as a status line)."""
    print(PROGRESS + message, file=sys.stderr, flush=True)


def best_time(fn: Callable[[], object], repeats: int, min_seconds: float = 0.0) -> float:
    """The fastest of several runs: the shared machine only ever adds time."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50 * repeats:
            break
    return min(times)


def row(
    kernel: str,
    fmt: str,
    shape: str,
    threads: int,
    unit: str,
    value: float,
    peer_name: str | None,
    peer: float | None,
) -> Row:
    ratio = round(value / peer, 3) if peer else None
    return {
        "kernel": kernel,
        "format": fmt,
        "shape": shape,
        "threads": threads,
        unit: round(value, 2),
        "peer_name": peer_name,
        "peer": round(peer, 2) if peer else None,
        "ratio": ratio,
    }


def weights_for(fmt: str, rows: int, k: int, rng: Any) -> Any:
    """A weight matrix in fmt with realistic contents (valid scales, varied values)."""
    import numpy as np

    from engine import _native, quants

    if fmt in quants.PACKABLE:
        return _native.quantize((rng.standard_normal((rows, k)) * 0.05).astype(np.float32), fmt)
    elems, nbytes = quants.BLOCK[fmt]
    blocks = rng.integers(0, 256, size=(rows * k // elems, nbytes), dtype=np.uint8)
    halves = rng.uniform(1e-4, 2e-2, size=(blocks.shape[0], 2)).astype(np.float16)
    if fmt == "Q6_K":
        blocks[:, -2:] = halves[:, :1].view(np.uint8)
    else:
        blocks[:, 0:4] = halves.view(np.uint8)
    return blocks.reshape(rows, -1)


def bench_matvec(threads: int, pool: Any, rng: Any) -> list[Row]:
    import numpy as np

    from engine import _native

    rows_out: list[Row] = []
    for rows, k in MATVEC_SHAPES:
        for fmt in MATVEC_FORMATS:
            if k % _native.block_size(fmt):
                continue  # k-quants need rows of whole 256-element super-blocks
            say(f"matvec {fmt} {rows}x{k}")
            one = weights_for(fmt, rows, k, rng).view(np.uint8).reshape(-1)
            copies = max(1, POOL_BYTES // one.size)
            mats = pool[: copies * one.size].reshape(copies, one.size)
            mats[:] = one  # the same valid matrix, copied across the pool
            x = rng.standard_normal(k).astype(np.float32)
            y = np.empty(rows, np.float32)

            def one_pass(mats: Any = mats, fmt: str = fmt, x: Any = x, y: Any = y) -> None:
                for m in mats:
                    _native.matvec(m, fmt, x, out=y)

            # The peer reads the very same bytes, interleaved with the kernel so that both see
            # the same machine: the fastest of three passes each. A second peer reads them one
            # matrix per call, as the kernel does: what the memory system gives a call of this
            # size, thread wake-up and prefetch ramp included.
            def read_per_call(mats: Any = mats) -> None:
                for m in mats:
                    _native.stream_read(m)

            t_kernel, t_read, t_calls = float("inf"), float("inf"), float("inf")
            for _ in range(3):
                t_read = min(t_read, best_time(lambda mats=mats: _native.stream_read(mats), 1))
                t_calls = min(t_calls, best_time(read_per_call, 1))
                t_kernel = min(t_kernel, best_time(one_pass, 1))
            kernel_gbps = mats.nbytes / t_kernel / 1e9
            for peer_name, t_peer in (("stream_read", t_read), ("stream_read-per-call", t_calls)):
                rows_out.append(
                    row(
                        "matvec",
                        fmt,
                        f"{rows}x{k}",
                        threads,
                        "gbps",
                        kernel_gbps,
                        peer_name,
                        mats.nbytes / t_peer / 1e9,
                    )
                )
    return rows_out


def bench_matvec_cached(threads: int, rng: Any) -> list[Row]:
    """One matrix multiplied over and over, so its bytes stay in cache: the kernels' compute
    rate, beside a read of the same cached bytes."""
    import numpy as np

    from engine import _native

    rows, k = CACHED_SHAPE
    out: list[Row] = []
    for fmt in MATVEC_FORMATS:
        say(f"matvec-cached {fmt} {rows}x{k}")
        w = weights_for(fmt, rows, k, rng)
        x = rng.standard_normal(k).astype(np.float32)
        y = np.empty(rows, np.float32)
        t_kernel, t_read = float("inf"), float("inf")
        for _ in range(3):
            t_read = min(t_read, best_time(lambda w=w: _native.stream_read(w), 50))
            t_kernel = min(
                t_kernel, best_time(lambda w=w, f=fmt, x=x, y=y: _native.matvec(w, f, x, out=y), 50)
            )
        out.append(
            row(
                "matvec-cached",
                fmt,
                f"{rows}x{k}",
                threads,
                "gbps",
                w.nbytes / t_kernel / 1e9,
                "stream_read",
                w.nbytes / t_read / 1e9,
            )
        )
    return out


def bench_matmul(threads: int, rng: Any) -> list[Row]:
    import numpy as np

    from engine import _native

    n, k, rows = PREFILL
    say(f"matmul {n}x{k}x{rows}")
    flops = 2.0 * n * k * rows
    x = rng.standard_normal((n, k)).astype(np.float32)
    wf = (rng.standard_normal((rows, k)) * 0.05).astype(np.float32)
    numpy_gflops = flops / best_time(lambda: x @ wf.T, repeats=5, min_seconds=0.5) / 1e9
    torch_gflops = None
    try:
        import torch

        torch.set_num_threads(threads)
        xt, wt = torch.from_numpy(x), torch.from_numpy(wf)
        with torch.no_grad():
            tt = best_time(lambda: torch.nn.functional.linear(xt, wt), repeats=5, min_seconds=0.5)
        torch_gflops = flops / tt / 1e9
    except ImportError:
        pass
    out: list[Row] = []
    shape = f"{n}x{k}x{rows}"
    # "matmul": the best kernel set this CPU has; "matmul-avx2": held to AVX2 where that is
    # AVX-512, the like-for-like entry for numpy's BLAS held to AVX2 (see run()).
    held = [False, True] if _native.cpu_features()["kernels"] == "avx512" else [False]
    for fmt in ("F32", "Q8_0"):
        w = _native.quantize(wf, fmt)
        y = np.empty((n, rows), np.float32)
        for avx2_only in held:
            _native.set_force_avx2(avx2_only)
            try:
                t = best_time(lambda w=w, fmt=fmt, y=y: _native.matmul(w, fmt, x, out=y), 5, 0.5)
            finally:
                _native.set_force_avx2(False)
            gflops = flops / t / 1e9
            if avx2_only:
                out.append(row("matmul-avx2", fmt, shape, threads, "gflops", gflops, None, None))
                continue
            out.append(row("matmul", fmt, shape, threads, "gflops", gflops, "numpy", numpy_gflops))
            if torch_gflops is not None:
                out.append(
                    row("matmul", fmt, shape, threads, "gflops", gflops, "torch", torch_gflops)
                )
    return out


def bench_numpy_only(threads: int, rng: Any) -> float:
    import numpy as np

    n, k, rows = PREFILL
    x = rng.standard_normal((n, k)).astype(np.float32)
    wf = rng.standard_normal((rows, k)).astype(np.float32)
    return 2.0 * n * k * rows / best_time(lambda: x @ wf.T, repeats=5, min_seconds=0.5) / 1e9


def bench_attention(threads: int, rng: Any) -> list[Row]:
    import numpy as np

    from engine import _native

    if not hasattr(_native, "attention_decode"):
        return []
    hq, hkv, hd = ATTENTION_HEADS
    out: list[Row] = []
    for dtype, fmt in ((np.float32, "F32"), (np.float16, "F16")):
        for n_ctx in ATTENTION_CTX:
            say(f"attention_decode {fmt} ctx{n_ctx}")
            q = rng.standard_normal((hq, hd)).astype(np.float32)
            kc = rng.standard_normal((n_ctx, hkv, hd)).astype(dtype)
            vc = rng.standard_normal((n_ctx, hkv, hd)).astype(dtype)
            scale = 1.0 / hd**0.5
            t = best_time(
                lambda q=q, kc=kc, vc=vc, n=n_ctx, s=scale: _native.attention_decode(
                    q, kc, vc, n, s
                ),
                20,
            )
            tr = best_time(
                lambda kc=kc, vc=vc: (_native.stream_read(kc), _native.stream_read(vc)), 20
            )
            nbytes = kc.nbytes + vc.nbytes
            out.append(
                row(
                    "attention_decode",
                    fmt,
                    f"ctx{n_ctx}:{hq}/{hkv}x{hd}",
                    threads,
                    "gbps",
                    nbytes / t / 1e9,
                    "stream_read",
                    nbytes / tr / 1e9,
                )
            )
    return (
        out
        + bench_attention_layers(threads, rng, ATTENTION_LAYERS, ATTENTION_HEADS, np.float32)
        + bench_attention_layers(
            threads, rng, ATTENTION_LAYERS_1P5B, ATTENTION_HEADS_1P5B, np.float16
        )
    )


def bench_attention_layers(
    threads: int,
    rng: Any,
    cache: tuple[int, int, int],
    heads: tuple[int, int, int],
    dtype: Any,
) -> list[Row]:
    """Decode attention as a decode step meets it at a long context: one call per layer, each
    on its own layer's cache (`cache`: layers, rows of capacity, rows filled), after a read of
    POOL_BYTES that leaves none of it in the caches (in a decode step the weights pass through
    them between two layers' attention; a 4K cache of 117 MB otherwise stays in a large L3), so
    the keys and values come from memory."""
    import numpy as np

    from engine import _native

    hq, hkv, hd = heads
    layers, capacity, n_ctx = cache
    fmt = "F16" if dtype == np.float16 else "F32"
    say(f"attention_decode {fmt} over {layers} layers at ctx{n_ctx}")
    q = rng.standard_normal((hq, hd)).astype(np.float32)
    k = rng.standard_normal((layers, capacity, hkv, hd)).astype(dtype)
    v = rng.standard_normal((layers, capacity, hkv, hd)).astype(dtype)
    out = np.empty((hq, hd), np.float32)
    scale = 1.0 / hd**0.5

    def attend() -> None:
        for layer in range(layers):
            _native.attention_decode(q, k[layer], v[layer], n_ctx, scale, out=out)

    def read() -> None:
        for layer in range(layers):
            _native.stream_read(k[layer, :n_ctx])
            _native.stream_read(v[layer, :n_ctx])

    flush = np.ones(POOL_BYTES // 4, np.float32)

    def cold(fn: Callable[[], None]) -> float:
        _native.stream_read(flush)
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    t, tr = float("inf"), float("inf")
    for _ in range(6):  # interleaved, so both see the same machine
        t = min(t, cold(attend))
        tr = min(tr, cold(read))
    nbytes = 2 * layers * n_ctx * hkv * hd * k.itemsize
    shape = f"{layers}x ctx{n_ctx}:{hq}/{hkv}x{hd}"
    value, peer = nbytes / t / 1e9, nbytes / tr / 1e9
    return [
        row("attention_decode-layers", fmt, shape, threads, "gbps", value, "stream_read", peer)
    ]


def worker(threads: int, numpy_only: bool) -> list[Row]:
    import numpy as np

    from engine import _native

    _native.set_num_threads(threads)
    rng = np.random.default_rng(0)
    if numpy_only:
        say("numpy matmul")
        return [{"numpy_gflops": bench_numpy_only(threads, rng)}]
    say("stream_read")
    pool = np.empty(POOL_BYTES, np.uint8)
    pool[:] = 1  # touch every page before timing
    read_gbps = pool.nbytes / best_time(lambda p=pool: _native.stream_read(p), repeats=5) / 1e9
    rows: list[Row] = [
        row("stream_read", "-", f"{POOL_BYTES >> 20}MiB", threads, "gbps", read_gbps, None, None)
    ]
    rows += bench_matvec(threads, pool, rng)
    del pool
    rows += bench_matvec_cached(threads, rng)
    rows += bench_matmul(threads, rng)
    rows += bench_attention(threads, rng)
    return rows


def run_worker(
    threads: int, numpy_only: bool = False, extra_env: dict[str, str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Row]:
    """One worker process's rows; its progress lines go to `progress` as they come."""
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.update(extra_env or {})
    args = [sys.executable, os.path.abspath(__file__), "--worker", str(threads)]
    if numpy_only:
        args.append("--numpy-only")
    # stdout to a file: the parent reads stderr line by line while the worker runs, and a
    # pipe on stdout could fill and stall the worker.
    with tempfile.TemporaryFile("w+") as out:
        worker_proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE,
                                       text=True)
        assert worker_proc.stderr is not None
        errors = []
        for line in worker_proc.stderr:
            if line.startswith(PROGRESS):
                progress(line[len(PROGRESS):].strip())
            else:
                errors.append(line)
        if worker_proc.wait() != 0:
            raise subprocess.CalledProcessError(worker_proc.returncode, args,
                                                stderr="".join(errors))
        out.seek(0)
        return json.loads(out.read())


def run(threads: list[int], progress: Callable[[str], None] = lambda _: None) -> list[Row]:
    """All rows, one worker process per thread count; `progress` hears what runs now."""
    rows: list[Row] = []
    for n in threads:
        at = f"{n} thread{'s' if n > 1 else ''}"
        part = run_worker(n, progress=lambda step, at=at: progress(f"{at}: {step}"))
        # numpy's BLAS picks AVX-512 kernels where the CPU has them; held to its AVX2
        # (Haswell) kernels it is the like-for-like peer for kernels that target AVX2.
        progress(f"{at}: numpy's BLAS held to AVX2")
        avx2_blas = run_worker(n, numpy_only=True, extra_env={"OPENBLAS_CORETYPE": "Haswell"})
        peer = avx2_blas[0]["numpy_gflops"]
        held = [r for r in part if r["kernel"] == "matmul-avx2"]
        ours_avx2 = held or [
            r for r in part if r["kernel"] == "matmul" and r["peer_name"] == "numpy"
        ]
        part = [r for r in part if r["kernel"] != "matmul-avx2"]
        for r in ours_avx2:
            part.append(
                row(
                    r["kernel"],
                    r["format"],
                    r["shape"],
                    n,
                    "gflops",
                    r["gflops"],
                    "numpy-avx2",
                    peer,
                )
            )
        rows += part
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| kernel | format | shape | threads | result | peer | peer result | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(
        rows,
        key=lambda r: (r["kernel"], r["shape"], r["format"], r["threads"], str(r["peer_name"])),
    ):
        value = f"{r['gbps']} GB/s" if "gbps" in r else f"{r['gflops']} GFLOP/s"
        unit = "GB/s" if "gbps" in r else "GFLOP/s"
        peer = f"{r['peer']} {unit}" if r["peer"] is not None else ""
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        lines.append(
            f"| {r['kernel']} | {r['format']} | {r['shape']} | {r['threads']} | {value} | "
            f"{r['peer_name'] or ''} | {peer} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON row per line")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma separated")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--numpy-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.numpy_only)))
        return 0
    try:
        threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        parser.error(f"--threads {args.threads!r}: expected thread counts such as 1,2")
    from rich.console import Console

    # A status line on stderr (silent when stderr is no terminal).
    with Console(stderr=True).status("kernels") as status:
        rows = run(threads, progress=status.update)
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
