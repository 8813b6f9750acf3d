"""The prefill matrix-matrix product on each kernel build, in one process:
`python bench/bench_int_gemm.py [--n 512] [--threads 1] [--rounds 5] [--formats Q4_K Q8_0 ...]`.

512 activation rows against random weights of the 1.5B shape's two matrix shapes (8960x1536,
the gate and up projections; 1536x8960, the down projection), per format, on the float tiles over
unpacked weights (as prefill ran before the integer kernels: `set_no_int_gemm`) and on each
build of the integer kernels this CPU can run. The builds take turns round after round; a
figure is the median over rounds, in GMAC/s (multiply-adds per second). At one thread the time
is the process's CPU time, which other load on a shared machine disturbs far less than the wall
clock; at more, the wall clock. Prints one JSON row per format and shape.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SHAPES = [(8960, 1536), (1536, 8960)]


def _builds() -> dict[str, Callable[[], None]]:
    """Build name -> a function that selects it (each resets the others' switches)."""
    from engine import _native

    cpu = _native.cpu_features()

    def select(
        no_int: bool = False, avx2: bool = False, no_512: bool = False, no_amx: bool = True
    ) -> Callable[[], None]:
        def apply() -> None:
            _native.set_no_int_gemm(no_int)
            _native.set_force_avx2(avx2)
            _native.set_no_avx512_vnni(no_512)
            _native.set_no_amx(no_amx)

        return apply

    builds = {"float": select(no_int=True), "avx2": select(avx2=True)}
    if cpu["avx_vnni"]:
        builds["avx-vnni"] = select(no_512=True)
    if cpu["avx512vnni"] and cpu["kernels"] == "avx512":
        builds["avx512-vnni"] = select()
    if cpu["amx"] and cpu["kernels"] == "avx512":
        builds["amx"] = select(no_amx=False)
    return builds


def measure(fmt: str, rows: int, k: int, n: int, threads: int, rounds: int) -> dict[str, Any]:
    from engine import _native
    from tests.quant_cases import random_weights

    rng = np.random.default_rng(0)
    w = random_weights(fmt, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    clock = time.process_time if threads == 1 else time.perf_counter
    builds = _builds()
    seconds: dict[str, list[float]] = {name: [] for name in builds}
    try:
        for select in builds.values():  # warm-up
            select()
            _native.matmul(w, fmt, x)
        for _ in range(rounds):
            for name, select in builds.items():
                select()
                t0 = clock()
                _native.matmul(w, fmt, x)
                seconds[name].append(clock() - t0)
    finally:
        _builds()["float"]()
        _native.set_no_int_gemm(False)
        _native.set_no_amx(False)
    macs = n * rows * k
    row: dict[str, Any] = {"format": fmt, "shape": f"{rows}x{k}", "n": n, "threads": threads}
    for name, s in seconds.items():
        row[f"{name}_gmac_s"] = round(macs / statistics.median(s) / 1e9, 1)
    best = max((name for name in seconds if name != "float"), key=lambda b: row[f"{b}_gmac_s"])
    row["best_over_float"] = round(row[f"{best}_gmac_s"] / row["float_gmac_s"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512, help="activation rows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--formats", nargs="+", default=["Q4_K", "Q6_K", "Q8_0", "Q4_0"])
    args = parser.parse_args(argv)
    from engine import _native

    _native.set_num_threads(args.threads)
    for fmt in args.formats:
        for rows, k in SHAPES:
            row = measure(fmt, rows, k, args.n, args.threads, args.rounds)
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
