"""Code-edit quality on held-out code: `cromwell eval edits`.

Tasks (edit_tasks.py): verified edit examples of every synthetic kind the training data makes
(rename a local, rename a function, add a docstring, fill a removed body, fix an injected
syntax error, fix an injected undefined name, restore a broken layout), made by the training
pipeline's own makers from standard-library files that the path-hash split holds out, with a
fixed seed: the same task list on every run of the same interpreter.

The editor is the product's own edit, as `cromwell edit`, the LSP's "Edit selection" and
HTTP's /v1/edit make it (the one edit format of engine/edit_format.py, which training rows
use too; the checked patch, one more sample when the first answer is no edit). The CLI
supplies it (the engine does not import the application). Each answer may take at most
`--max-tokens`, and at most twice the reference region's tokens plus 32 (a correct answer is
about as long as the reference, and a runaway one should not cost minutes).

Each answer is judged three ways (edit_scoring.py):
- applies: the product offers the answer as an edit;
- parses: the edited file compiles (`compile`, which is stricter than `ast.parse`);
- passes, per kind:
  - rename_local, rename_function: the file's syntax tree equals the original's with the
    rename applied (so the old name is gone where it was renamed, the new one present, and
    nothing else changed);
  - fix_syntax, fix_name: the syntax tree equals the original, pre-injection file's;
  - fill_body: the syntax tree equals the original's: the body rewritten as it was, up to
    layout and comments. This is strict: a body that behaves the same but is written
    differently fails. Nothing is executed, so nothing needs the sandbox;
  - add_docstring: some function of the instructed name gains a non-empty docstring and,
    that docstring removed, the syntax tree equals the one the task started from (any
    wording passes; nothing else may change);
  - reformat: the edited file equals the original text exactly. The original is the
    standard library's PEP 8 layout; a syntax-tree test would pass an unchanged copy, and
    no other layout is judged.
Shares are over all tasks (an answer that does not apply neither parses nor passes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.eval.edit_scoring import score_file
from engine.eval.edit_tasks import DEFAULT_SEED, EditTask, build_tasks

DEFAULT_MAX_TOKENS = 512


@dataclass
class TaskResult:
    task_id: str
    kind: str
    path: str
    applies: bool
    parses: bool
    passes: bool
    stop: str
    completion_tokens: int
    detail: str


def task_budget(model: Any, task: EditTask, max_tokens: int) -> int:
    reference = len(model.tokenizer.encode(task.example.region_after))
    return min(max_tokens, 2 * reference + 32)


@dataclass(frozen=True)
class Answer:
    """An editor's answer to a task: the whole file as it leaves it (None: no edit)."""

    edited: str | None
    stop: str  # why the answer ended, in the editor's words
    tokens: int  # tokens the model generated for it
    refused: str = ""  # why there is no edit, when there is none


class Editor(Protocol):
    """What answers edit tasks: the product's pipeline, from the caller (the engine does not
    import the application)."""

    name: str

    def edit(self, task: EditTask) -> Answer: ...


def evaluate(editor: Editor, tasks: list[EditTask]) -> Iterator[TaskResult]:
    for task in tasks:
        a = editor.edit(task)
        s = score_file(task, a.edited, a.refused)
        yield TaskResult(task.task_id, task.kind, task.example.path, s.applies, s.parses,
                         s.passes, a.stop, a.tokens, s.detail)


def _shares(results: Sequence[TaskResult]) -> dict[str, Any]:
    n = len(results)
    counts = {k: sum(getattr(r, k) for r in results) for k in ("applies", "parses", "passes")}

    def share(k: str) -> float:
        return round(counts[k] / n, 4) if n else 0.0

    return {"tasks": n, **counts, "apply_rate": share("applies"), "parse_rate": share("parses"),
            "pass_rate": share("passes")}


def summarize(model_name: str, results: Sequence[TaskResult], seed: int, max_tokens: int,
              seconds: float, prompt: str, benchmark: str = "edits") -> dict[str, Any]:
    """The JSON report of an edit benchmark (`benchmark`): shares overall and per kind, and
    every task's result."""
    kinds = sorted({r.kind for r in results})
    return {
        "benchmark": benchmark,
        "model": model_name,
        "prompt": prompt,
        "seed": seed,
        "max_tokens": max_tokens,
        "seconds": round(seconds, 1),
        "overall": _shares(results),
        "kinds": {k: _shares([r for r in results if r.kind == k]) for k in kinds},
        "results": [asdict(r) for r in results],
    }


def run_benchmark(path: str | None, threads: int | None, benchmark: str,
                  tasks_for: Callable[[], Sequence[Any]],
                  answer: Callable[[Any, Sequence[Any]], Iterator[TaskResult]],
                  editor: Callable[[Any, int], Any], max_tokens: int, seed: int) -> dict[str, Any]:
    """An edit benchmark's run: the model loaded first (a bad file fails at once), its tasks
    (`tasks_for()`), the editor `editor(model, max_tokens)` (it has a `name`), each task
    answered and judged (`answer(editor, tasks)`), and the summary."""
    import engine.runtime

    model = engine.runtime.load(path, threads=threads)
    tasks = tasks_for()
    if not tasks:
        raise RuntimeError(f"the held-out files gave no tasks for {benchmark}")
    chosen = editor(model, max_tokens)
    t0 = time.perf_counter()
    results = list(answer(chosen, tasks))
    return summarize(Path(model.path).name, results, seed, max_tokens,
                     time.perf_counter() - t0, chosen.name, benchmark)


def run_edits(path: str | None, limit: int | None, max_tokens: int = DEFAULT_MAX_TOKENS,
              threads: int | None = None, seed: int = DEFAULT_SEED, *,
              editor: Callable[[Any, int], Editor]) -> dict[str, Any]:
    """`editor(model, max_tokens)` answers the tasks (the CLI's: the product's edit)."""
    return run_benchmark(path, threads, "edits", lambda: build_tasks(seed, limit=limit),
                         evaluate, editor, max_tokens, seed)
