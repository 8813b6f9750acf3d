"""Runtime decode/prefill benchmark: `python bench/bench_decode.py [--model PATH]`.

Prints one JSON row per thread count (the rows of `cromwell bench decode --json`), the format
docs/BENCHMARKS.md records. Peers measured on the same file in the same run join these rows.
"""

from __future__ import annotations

import argparse
import json

from engine.runtime.bench import bench_decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="GGUF file (default: the default model)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for threads in args.threads:
        print(json.dumps(bench_decode(args.model, threads)), flush=True)


if __name__ == "__main__":
    main()
