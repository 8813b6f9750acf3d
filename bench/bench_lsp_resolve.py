"""Latency from `codeAction/resolve` to the WorkspaceEdit, through a real `cromwell lsp` over
stdio, for "Add docstring" on a 20-line function, on the embedded default model.

    python bench/bench_lsp_resolve.py [--repeat 5] [--json]

The first resolve includes loading the model; the rest are warm. Each resolve is a fresh
request on an unchanged document, so every one runs the whole path: context, prompt,
generation, patch, validation.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo_session.py"
_spec = importlib.util.spec_from_file_location("demo_session", DEMO)
assert _spec is not None and _spec.loader is not None
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

FUNCTION = '''from collections.abc import Sequence


def summarize(values: Sequence[float], trim: float = 0.1) -> dict[str, float]:
    if not values:
        raise ValueError("no values")
    if not 0 <= trim < 0.5:
        raise ValueError("trim must be in [0, 0.5)")
    ordered = sorted(values)
    cut = int(len(ordered) * trim)
    kept = ordered[cut : len(ordered) - cut] or ordered
    count = len(kept)
    mean = sum(kept) / count
    variance = sum((v - mean) ** 2 for v in kept) / count
    middle = count // 2
    if count % 2:
        median = kept[middle]
    else:
        median = (kept[middle - 1] + kept[middle]) / 2
    return {
        "count": float(count),
        "mean": mean,
        "median": median,
        "std": variance**0.5,
    }
'''


async def measure(repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "workspace"
        shutil.copytree(demo.WORKSPACE, workspace)
        target = workspace / "geometry" / "stats.py"
        target.write_text(FUNCTION)
        client = demo.make_client()
        await client.start_io(sys.executable, "-m", "cromwell_cli", "lsp")
        await client.initialize_async(
            types.InitializeParams(
                capabilities=demo.capabilities(),
                root_uri=workspace.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="bench")],
            )
        )
        client.initialized(types.InitializedParams())
        uri = target.as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=FUNCTION
                )
            )
        )
        here = types.Position(9, 8)  # inside summarize's body
        started = time.perf_counter()
        listed = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(here, here),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        list_ms = (time.perf_counter() - started) * 1000
        action = next(a for a in listed or [] if a.title == "Cromwell: Add docstring")
        timings, diff = [], ""
        for _ in range(repeat):
            started = time.perf_counter()
            resolved = await client.code_action_resolve_async(action)
            timings.append((time.perf_counter() - started) * 1000)
            annotations = (resolved.edit.change_annotations or {}) if resolved.edit else {}
            diff = "".join(a.description or "" for a in annotations.values())
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return {
        "action": "Add docstring",
        "function_lines": 22,
        "list_ms": round(list_ms, 1),
        "first_resolve_ms": round(timings[0], 1),
        "warm_resolve_ms_median": round(statistics.median(timings[1:] or timings), 1),
        "warm_resolve_ms_min": round(min(timings[1:] or timings), 1),
        "diff": diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    row = asyncio.run(measure(max(1, args.repeat)))
    if args.json:
        print(json.dumps(row))
        return
    print(row.pop("diff"))
    for key, value in row.items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
