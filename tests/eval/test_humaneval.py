"""HumanEval harness: the sandbox really runs the tests, answers become programs, and the
`cromwell eval humaneval` command runs end to end on the real default model."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from cromwell_cli.main import main
from engine.eval.humaneval import Problem, build_program, check_program, load_problems, parses
from engine.eval.sandbox import run_program


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return load_problems()


def test_the_package_ships_all_164_problems(problems: list[Problem]) -> None:
    assert len(problems) == 164
    assert problems[0].task_id == "HumanEval/0"
    assert all(p.entry_point in p.prompt for p in problems)


def test_canonical_solutions_pass(problems: list[Problem]) -> None:
    for p in problems[:3]:
        outcome, detail = check_program(p, p.prompt + p.canonical_solution)
        assert outcome == "passed", detail


def test_a_wrong_solution_fails(problems: list[Problem]) -> None:
    p = problems[2]  # truncate_number: returns the fractional part
    outcome, detail = check_program(p, p.prompt + "    return number\n")
    assert outcome == "failed"
    assert "AssertionError" in detail


def test_a_hanging_solution_times_out(problems: list[Problem]) -> None:
    p = problems[2]
    t0 = time.perf_counter()
    outcome, _ = check_program(p, p.prompt + "    while True:\n        pass\n", timeout_s=2.0)
    assert outcome == "timeout"
    assert time.perf_counter() - t0 < 10


def test_the_sandbox_refuses_network_and_processes_and_runs_in_a_fresh_directory() -> None:
    assert run_program("import socket\nsocket.socket()\n").outcome == "failed"
    assert run_program("import os\nos.system('true')\n").outcome == "failed"
    assert run_program("import os\nassert os.listdir('.') == ['program.py']\n").outcome == "passed"


def test_the_sandbox_limits_memory() -> None:
    result = run_program("x = bytearray(4 << 30)\n")
    assert result.outcome == "failed"
    assert "MemoryError" in result.detail


def test_a_fenced_full_function_replaces_the_stub(problems: list[Problem]) -> None:
    p = problems[2]
    answer = (
        "Here is the function:\n\n```python\ndef truncate_number(number: float) -> float:\n"
        "    return number % 1.0\n\nprint(truncate_number(3.5))\n```\nIt returns the decimals."
    )
    program = build_program(p, answer)
    assert "print(" not in program
    assert parses(program)
    assert check_program(p, program)[0] == "passed"


def test_a_bare_continuation_is_cut_at_the_next_top_level_line(problems: list[Problem]) -> None:
    p = problems[2]
    program = build_program(p, "    return number % 1.0\n\ndef unrelated():\n    return 1\n")
    assert "unrelated" not in program
    assert check_program(p, program)[0] == "passed"


def test_an_unparsable_answer_is_counted(problems: list[Problem]) -> None:
    assert not parses(build_program(problems[2], "```python\ndef truncate_number(:\n```"))


def test_cli_runs_end_to_end_and_reports_json() -> None:
    result = CliRunner().invoke(
        main, ["eval", "humaneval", "--limit", "2", "--max-tokens", "24", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["benchmark"] == "humaneval"
    assert report["problems"] == 2
    assert report["model"].endswith(".gguf")
    assert 0.0 <= report["pass_at_1"] <= 1.0 and 0.0 <= report["parse_rate"] <= 1.0
    assert [r["task_id"] for r in report["results"]] == ["HumanEval/0", "HumanEval/1"]
    for r in report["results"]:
        assert r["outcome"] in ("passed", "failed", "timeout")
        assert 1 <= r["completion_tokens"] <= 24
    assert report["passed"] == sum(r["outcome"] == "passed" for r in report["results"])
