"""Throughput of the data pipeline on this machine: corpus size and indexing time, edit
examples, fill-in-the-middle examples, code renders, charts and mockups per second, and the
loader with 0 (in-process) against 2 worker processes on the same stream.

    python -m engine.data.bench [--files 120] [--site-packages] [--json]

Figures are rates measured in one run; compare the loader's two rates with each other (the
ratio), not with another machine's.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import time
from collections.abc import Iterable

from engine.edit_format import Messages

from .pipeline import (
    ParallelLoader,
    chart_stream,
    code_corpus,
    edit_stream,
    encoded,
    fim_stream,
    mockup_stream,
    render_stream,
)
from .preview import chatml
from .stream import ExampleStream


class ByteTokenizer:
    """UTF-8 bytes as ids: stands for the real tokenizer's cost floor, not its output; edit
    prompts in ChatML, as the Cromwell tokenizers' template writes them."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def apply_chat_template(self, messages: Messages, add_generation_prompt: bool = True) -> str:
        return chatml(messages, add_generation_prompt)


def _rate(items: Iterable, limit: int | None = None) -> tuple[int, float, list]:
    start = time.perf_counter()
    got = list(itertools.islice(items, limit)) if limit else list(items)
    return len(got), time.perf_counter() - start, got


def _subset(stream: ExampleStream, files: int) -> ExampleStream:
    return ExampleStream(stream.items[:files], stream.make, stream.seed, stream.shard,
                         stream.epochs, stream.shuffle)


def run(files: int, site_packages: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    index = code_corpus(stdlib=True, site_packages=site_packages)
    out["index_seconds"] = time.perf_counter() - start
    out.update({k: float(v) for k, v in index.stats().items()})

    n, dt, got = _rate(_subset(edit_stream(index, seed=0), files))
    out["edit_examples"], out["edit_examples_per_s"] = n, n / dt
    out["edit_files_per_s"] = files / dt
    kinds = collections.Counter(e.kind for e in got)
    out.update({f"edit_kind_{k}": float(v) for k, v in sorted(kinds.items())})

    n, dt, _ = _rate(_subset(fim_stream(index, seed=0), files))
    out["fim_examples_per_s"] = n / dt
    n, dt, _ = _rate(_subset(render_stream(index, seed=0), files))
    out["renders_per_s"] = n / dt
    n, dt, _ = _rate(chart_stream(20, seed=0))
    out["charts_per_s"] = n / dt
    n, dt, _ = _rate(mockup_stream(200, seed=0))
    out["mockups_per_s"] = n / dt

    stream = encoded(_subset(edit_stream(index, seed=1), files), ByteTokenizer())
    for workers in (0, 2):
        n, dt, _ = _rate(ParallelLoader(stream, num_workers=workers))
        out[f"loader_{workers}_workers_examples_per_s"] = n / dt
    out["loader_speedup_2_over_0"] = (out["loader_2_workers_examples_per_s"]
                                      / out["loader_0_workers_examples_per_s"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120, help="corpus files per measurement")
    parser.add_argument("--site-packages", action="store_true",
                        help="index installed packages' sources too")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    figures = run(args.files, args.site_packages)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:42} {value:12.2f}")


if __name__ == "__main__":
    main()
