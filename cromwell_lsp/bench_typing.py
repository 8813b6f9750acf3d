"""`cromwell bench typing`: ghost-text latency as a user feels it, through a real LSP session.

A `cromwell lsp` process is started and driven over stdio as an editor drives it: the
recorded session (typing_session.py) of a ~400-line and a ~2,000-line file of the Python
standard library is replayed key by key at a person's pace, each key a `didChange` followed
by `textDocument/inlineCompletion`, without waiting for the answer (a newer key supersedes an
older request, as in an editor). Reported: latency to the suggestion (p50/p95/max over the
requests no newer key superseded), the share superseded, where answers came from (the
suggestion cache, the model), prompt tokens the model actually ran per request (the rest
came from its KV cache), and the same prompts run by llama.cpp (`llama-cpp-python`) with and
without its prompt cache, in the same run, on the same weights.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types

from .typing_session import Step, make_session

# Standard-library modules of about the two sizes the benchmark wants (~400, ~2,000 lines).
FILES = {"small": "textwrap", "large": "argparse"}


@dataclass
class Request:
    sent: float
    done: float | None = None
    text: str = ""
    superseded: bool = False  # a newer request was sent while this one was in flight


@dataclass
class FileRun:
    name: str
    lines: int
    requests: list[Request] = field(default_factory=list)
    accepted: int = 0
    keys: int = 0


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {"n": len(values), "p50_ms": round(percentile(values, 0.5) or 0, 1),
            "p95_ms": round(percentile(values, 0.95) or 0, 1), "max_ms": round(max(values), 1)}


class Editor:
    """The client side: one open document, its text and cursor, requests in flight."""

    def __init__(self, client: Any, uri: str, text: str) -> None:
        self.client, self.uri, self.text = client, uri, text
        self.version = 1
        self.line = self.column = 0
        self.requests: list[Request] = []

    def offset(self, line: int, column: int) -> int:
        lines = self.text.split("\n")
        return sum(len(x) + 1 for x in lines[:line]) + column

    def change(self, start: tuple[int, int], end: tuple[int, int], new: str) -> None:
        a, b = self.offset(*start), self.offset(*end)
        self.text = self.text[:a] + new + self.text[b:]
        self.version += 1
        rng = types.Range(types.Position(*start), types.Position(*end))
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[types.TextDocumentContentChangePartial(range=rng, text=new)],
        ))
        before = self.text[: a + len(new)]
        self.line, self.column = before.count("\n"), len(before) - (before.rfind("\n") + 1)

    def insert(self, new: str) -> None:
        self.change((self.line, self.column), (self.line, self.column), new)

    def ask(self) -> None:
        for r in self.requests:
            if r.done is None:
                r.superseded = True
        request = Request(time.perf_counter())
        self.requests.append(request)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri),
            position=types.Position(self.line, self.column),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )
        future = asyncio.ensure_future(self.client.text_document_inline_completion_async(params))

        def done(f: asyncio.Future[Any]) -> None:
            request.done = time.perf_counter()
            result = None if f.cancelled() or f.exception() else f.result()
            items = getattr(result, "items", None) or []
            text = items[0].insert_text if items else ""
            request.text = text if isinstance(text, str) else text.value

        future.add_done_callback(done)

    def shown(self) -> str:
        """The suggestion on screen: the newest request's, once it has come."""
        last = self.requests[-1] if self.requests else None
        return last.text if last is not None and last.done is not None else ""


async def replay(editor: Editor, steps: list[Step], run: FileRun) -> None:
    skip = 0  # characters of the line the user accepted and so does not type
    for n, step in enumerate(steps):
        if n % 100 == 0:
            print(f"  {run.name}: step {n} of {len(steps)}, {run.keys} keys, "
                  f"{run.accepted} accepted", file=sys.stderr, flush=True)
        if step.kind == "move":
            editor.line, editor.column, skip = step.line, step.column, 0
            editor.ask()
        elif step.kind == "clear":
            lines = editor.text.split("\n")
            code_at = len(lines[step.line]) - len(lines[step.line].lstrip())
            last = step.line + step.count - 1
            editor.change((step.line, code_at), (last, len(lines[last])), "")
            continue
        elif step.kind in ("type", "typo", "delete"):
            newline = step.text.startswith("\n")
            if skip > 0 and not newline:
                skip -= step.kind == "type"  # accepted already: the user does not type it
                continue
            skip = 0
            if step.kind == "delete":
                editor.change((editor.line, editor.column - 1), (editor.line, editor.column), "")
            else:
                editor.insert(step.text)
            run.keys += 1
            editor.ask()
        elif step.kind == "pause":
            pass  # the user reads; requests in flight finish
        elif step.kind == "accept":
            shown = editor.shown()
            if skip == 0 and shown and step.text.startswith(shown):
                editor.insert(shown)
                run.accepted += 1
                skip = len(shown)
                editor.ask()
        await asyncio.sleep(step.pause_s)
    await asyncio.sleep(1.0)  # the last answers come in


async def drive(model: str | None, threads: int, spots: int, trace: Path,
                files: dict[str, Path], settings: dict[str, Any]
                ) -> tuple[list[FileRun], dict[str, Any]]:
    from pygls.lsp.client import LanguageClient

    settings = {"modelPath": model, "threads": threads, **settings}
    root = Path(tempfile.mkdtemp(prefix="cromwell-typing-"))
    client = LanguageClient("cromwell-bench-typing", "1")

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def configuration(params: types.ConfigurationParams) -> list[Any]:
        return [settings for _ in params.items]

    env = dict(os.environ, CROMWELL_GHOST_TRACE=str(trace))
    await client.start_io(sys.executable, "-m", "cromwell_lsp", env=env)
    caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
        inline_completion=types.InlineCompletionClientCapabilities()))
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=root.as_uri(), initialization_options=settings,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="bench")]))
    client.initialized(types.InitializedParams())
    runs = []
    for name, source in files.items():
        text = source.read_text()
        path = root / source.name
        path.write_text(text)
        uri = path.as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        editor = Editor(client, uri, text)
        print(f"{source.name}: loading the model, first suggestion", file=sys.stderr, flush=True)
        editor.ask()  # the first request loads the model: not part of the figures
        while editor.requests[-1].done is None:
            await asyncio.sleep(0.05)
        editor.requests.clear()
        run = FileRun(name, text.count("\n"))
        await replay(editor, make_session(text, spots), run)
        run.requests = editor.requests
        runs.append(run)
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="cromwell.ghostStats", arguments=[]))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return runs, stats


def peer_rows(trace: Path, gguf: Path, threads: int) -> dict[str, Any]:
    """The traced prompts through llama.cpp (bench/peers.py, beside the sources), with and
    without its prompt cache."""
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / "peers.py"
    if not script.is_file():
        return {"skipped": f"{script} not found: run from a source checkout"}
    replay = runpy.run_path(str(script))["llama_cpp_replay"]
    records = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    times = replay(records, str(gguf), threads)
    return {"file": str(gguf), "prompts": len(records),
            **{key: summarize(values) for key, values in times.items()}}


def peer_file(model: str | None) -> Path | None:
    """The GGUF llama.cpp runs: the model itself, or for the default cromwell model its text
    path, SmolLM2-135M-Instruct (the same weights; llama.cpp cannot read a cromwell file)."""
    if model:
        return Path(model)
    from engine.runtime.model_store import models_dir

    smol = models_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return smol if smol.is_file() else None


def bench_typing(model: str | None, threads: int, spots: int, peers: bool,
                 settings: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's report; `settings` are the language server's (camelCase keys), such
    as inlineMaxTokens and inlinePrefixLines."""
    import importlib

    files = {k: Path(importlib.import_module(m).__file__ or "") for k, m in FILES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.jsonl"
        runs, stats = asyncio.run(drive(model, threads, spots, trace, files, settings))
        report: dict[str, Any] = {"model": model or "embedded default", "threads": threads,
                                  "settings": settings, "files": {}}
        for run in runs:
            answered = [r for r in run.requests if not r.superseded and r.done is not None]
            report["files"][run.name] = {
                "file": f"{FILES[run.name]}.py", "lines": run.lines, "keys": run.keys,
                "requests": len(run.requests), "accepted": run.accepted,
                "superseded_share": round(
                    sum(r.superseded for r in run.requests) / max(1, len(run.requests)), 3),
                "latency": summarize([(r.done - r.sent) * 1000 for r in answered if r.done]),
                "latency_with_suggestion": summarize(
                    [(r.done - r.sent) * 1000 for r in answered if r.done and r.text.strip()]),
            }
        model_requests = stats.get("model_requests", []) if isinstance(stats, dict) else []
        prompt = sum(r["prompt_tokens"] for r in model_requests)
        computed = sum(r["computed_tokens"] for r in model_requests)
        report["server"] = {
            "requests": stats.get("requests"), "from_model": stats.get("from_model"),
            "from_cache": stats.get("from_cache"), "superseded": stats.get("superseded"),
            "prefetched": stats.get("prefetched"),
            "suggestion_cache_share": round(
                (stats.get("from_cache") or 0) / max(1, stats.get("requests") or 0), 3),
            "model_latency": summarize([r["total_ms"] for r in model_requests]),
            "prompt_tokens_mean": round(prompt / max(1, len(model_requests)), 1),
            "computed_tokens": summarize([r["computed_tokens"] for r in model_requests]),
            "kv_reuse_share": round(1 - computed / max(1, prompt), 3),
        }
        if peers:
            gguf = peer_file(model)
            report["llama_cpp"] = (peer_rows(trace, gguf, threads) if gguf is not None
                                   else {"skipped": "no GGUF llama.cpp can read"})
        return report


def format_report(report: dict[str, Any]) -> str:
    out = [f"ghost text through LSP: {report['model']}, {report['threads']} threads, "
           f"settings {json.dumps(report['settings'])}"]
    for f in report["files"].values():
        lat = f["latency"]
        out.append(f"  {f['file']} ({f['lines']} lines): {f['requests']} requests, p50 "
                   f"{lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, max {lat['max_ms']} ms; "
                   f"superseded {f['superseded_share']:.0%}, accepted {f['accepted']}")
    s = report["server"]
    out.append(f"  server: {s['from_model']} from the model (p50 {s['model_latency']['p50_ms']} "
               f"ms, p95 {s['model_latency']['p95_ms']} ms), {s['from_cache']} from the "
               f"suggestion cache, {s['prefetched']} prefetched; prompt {s['prompt_tokens_mean']}"
               f" tokens on average, computed p50 {s['computed_tokens']['p50_ms']} (KV reuse "
               f"{s['kv_reuse_share']:.0%})")
    peer = report.get("llama_cpp")
    if peer and "with_cache" in peer:
        for key in ("with_cache", "without_cache"):
            out.append(f"  llama.cpp {key.replace('_', ' ')}: p50 {peer[key]['p50_ms']} ms, "
                       f"p95 {peer[key]['p95_ms']} ms over the same {peer[key]['n']} prompts")
    return "\n".join(out)
