"""Instruction edits with tests, answered as the product answers them: `cromwell eval instruct`.

Tasks (instruction_tasks.py): a function of a held-out standard-library file, an instruction
that changes its behaviour, and tests that fail on the original and pass on a reference edit.
The editor gets the instruction and the function as the user's selection in its file (the
CLI supplies the product's own edit, `domain.propose_edit`, as `cromwell eval edits` does), and
its answer is judged three ways:
- applies: the editor offered an edit;
- parses: the edited file compiles;
- passes: the task's tests pass in the sandbox against the edited file, loaded as a module
  (any code that behaves as asked passes, whatever its layout or wording).
Shares are over all tasks (an answer that does not apply neither parses nor passes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from engine.eval.edit_quality import Answer, TaskResult, run_benchmark
from engine.eval.instruction_tasks import DEFAULT_SEED, TEST_TIMEOUT_S, InstructionTask, build_tasks
from engine.eval.sandbox import run_program

DEFAULT_MAX_TOKENS = 512


class InstructionEditor(Protocol):
    """What answers the tasks: the product's edit, from the caller."""

    name: str

    def edit(self, task: InstructionTask) -> Answer: ...


@dataclass
class InstructionResult(TaskResult):
    """An edit task's result, with the function edited and the instruction given."""

    function: str
    instruction: str


def compiles(text: str) -> bool:
    """`compile`, not `ast.parse`: it also rejects what the parser lets by (`return` outside
    a function, for one)."""
    try:
        compile(text, "<edit>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


def judge(task: InstructionTask, answer: Answer) -> tuple[bool, bool, bool, str]:
    """(applies, parses, passes, why the first check that failed failed)."""
    if answer.edited is None:
        return False, False, False, answer.refused or "no edit"
    if not compiles(answer.edited):
        return True, False, False, "the edited file does not compile"
    result = run_program(task.program(answer.edited), TEST_TIMEOUT_S)
    if result.outcome != "passed":
        return True, True, False, f"tests {result.outcome}: {result.detail[-200:]}".strip()
    return True, True, True, ""


def evaluate(
    editor: InstructionEditor, tasks: list[InstructionTask]
) -> Iterator[InstructionResult]:
    for task in tasks:
        a = editor.edit(task)
        applies, parses, passes, detail = judge(task, a)
        yield InstructionResult(
            task_id=task.task_id,
            kind=task.kind,
            path=task.example.path,
            applies=applies,
            parses=parses,
            passes=passes,
            stop=a.stop,
            completion_tokens=a.tokens,
            detail=detail,
            function=task.function,
            instruction=task.example.instruction,
        )


def run_instruct(
    path: str | None,
    limit: int | None,
    editor: Callable[[Any, int], InstructionEditor],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    threads: int | None = None,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """`editor(model, max_tokens)` answers the tasks (the engine does not import the
    application, so its caller supplies the product's edit)."""
    return run_benchmark(
        path,
        threads,
        "instruct",
        lambda: build_tasks(seed, limit=limit),
        evaluate,
        editor,
        max_tokens,
        seed,
    )
