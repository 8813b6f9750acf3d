"""HumanEval single-line infilling: the construction reproduces the published split, a task's
own line passes its tests and a wrong one fails, and the command runs end to end."""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

from cromwell_cli.main import main
from engine.eval.humaneval import check_program, load_problems
from engine.eval.infill import (
    PUBLISHED_SINGLE_LINE_TASKS,
    InfillTask,
    program_of,
    single_line_tasks,
    subset,
)


@pytest.fixture(scope="module")
def tasks() -> list[InfillTask]:
    return single_line_tasks(load_problems())


def test_the_split_has_the_published_task_count(tasks: list[InfillTask]) -> None:
    assert len(tasks) == PUBLISHED_SINGLE_LINE_TASKS == 1033


def test_a_task_is_the_solution_with_one_line_taken_out(tasks: list[InfillTask]) -> None:
    for task in tasks[:40]:
        assert task.middle.strip() and "\n" not in task.middle
        assert program_of(task, task.middle) == task.problem.prompt + \
            task.problem.canonical_solution


def test_the_masked_line_passes_and_a_wrong_line_fails(tasks: list[InfillTask]) -> None:
    task = next(t for t in tasks if t.middle.strip().startswith("return"))
    assert check_program(task.problem, program_of(task, task.middle))[0] == "passed"
    indent = task.middle[: len(task.middle) - len(task.middle.lstrip())]
    assert check_program(task.problem, program_of(task, indent + "return None"))[0] != "passed"


def test_the_subset_is_seeded_and_spread_over_problems(tasks: list[InfillTask]) -> None:
    a, b = subset(tasks, 200), subset(tasks, 200)
    assert [t.task_id for t in a] == [t.task_id for t in b]
    assert len({t.problem.task_id for t in a}) > 80
    assert [tasks.index(t) for t in a] == sorted(tasks.index(t) for t in a)


def test_the_command_runs_on_the_default_model() -> None:
    result = CliRunner().invoke(main, ["eval", "infill", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["tasks"] == 2 and report["tasks_in_split"] == 1033
    assert report["prompt"] in ("prefix-only", "psm")
    assert all(r["outcome"] in ("passed", "failed", "timeout") for r in report["results"])


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama_cpp not installed")
def test_the_peer_runs_the_same_prompts_through_llama_cpp_in_this_process() -> None:
    # llama.cpp beside Cromwell's kernels (its extra buffers off: its AMX buffer dies in a
    # process granted the tile state), on SmolLM2's own file, the same prompt ids: greedy on
    # the same weights, most suggestions agree with ours. (The untuned file: the default's
    # infilling runs on its tuned weights, which llama.cpp does not route to.)
    from engine.runtime.model_store import SMOLLM2_135M, cached_path

    untuned = ["--model", str(cached_path(SMOLLM2_135M))]
    ours = CliRunner().invoke(main, ["eval", "infill", "--limit", "6", *untuned, "--json"])
    theirs = CliRunner().invoke(main, ["eval", "infill", "--limit", "6", *untuned, "--peer",
                                       "--json"])
    assert ours.exit_code == 0 and theirs.exit_code == 0, theirs.output
    a, b = json.loads(ours.output), json.loads(theirs.output)
    assert b["engine"].startswith("llama.cpp on SmolLM2-135M-Instruct")
    assert [r["task_id"] for r in a["results"]] == [r["task_id"] for r in b["results"]]
    pairs = zip(a["results"], b["results"], strict=True)
    same = sum(x["completion"] == y["completion"] for x, y in pairs)
    assert same >= 4
