"""The instruction pool for fine-tuning: tasks made from training files by the same builder
`cromwell eval instruct` uses, written one line a task and read back as edit examples whose
reference edit passes the task's tests where the original fails them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_files import HELPERS, instruction_pool

from engine.eval.instruct_kinds import KINDS
from engine.eval.instruct_program import test_program as program_with_tests
from engine.eval.sandbox import run_program
from engine.train.instruct_pool import load_pool, main


def test_a_pool_holds_checked_tasks_round_robin_over_the_kinds(tmp_path: Path) -> None:
    path = instruction_pool(tmp_path, tasks=3)
    examples = load_pool(path)
    assert [e.kind for e in examples] == list(KINDS[:3])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for example, row in zip(examples, rows, strict=True):
        assert example.path == "text_helpers.py" and example.before == HELPERS
        assert example.region_before in HELPERS and example.region_after != example.region_before
        assert f"`{row['function']}`" in example.instruction
        after = example.prefix + example.region_after + example.suffix
        for text, outcome in ((after, "passed"), (HELPERS, "failed")):
            result = run_program(program_with_tests(example.path, text, row["tests"]), 20)
            assert result.outcome == outcome


def test_a_file_that_is_not_a_pool_is_refused_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "upper_result"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1 is not a pool line"):
        load_pool(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="holds no instruction tasks"):
        load_pool(empty)


def test_the_command_refuses_an_empty_pool_in_one_sentence(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    assert main(["--out", str(tmp_path / "p.jsonl"), "--limit", "0"]) == 2
    assert "at least one task" in capsys.readouterr().err
    assert not (tmp_path / "p.jsonl").exists()
