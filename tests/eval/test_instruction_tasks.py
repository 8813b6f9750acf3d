"""Instruction edits with tests: every kind makes tasks whose tests fail on the original and
pass on the reference (checked again here, in the sandbox); a change whose tests do not tell
the two apart is dropped; the task list is the same every run and comes from held-out files;
`cromwell eval instruct` runs end to end on the real default model."""

from __future__ import annotations

import ast
import json
import random
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cromwell_cli.main import main
from engine.data.split import is_heldout
from engine.eval.edit_quality import Answer
from engine.eval.instruct_edits import Site, apply_edits, insert_before
from engine.eval.instruct_kinds import KINDS, MAKERS, RAISE_ON_NEGATIVE, RENAME_PARAMETER, Change
from engine.eval.instruct_probe import probe
from engine.eval.instruct_program import Call
from engine.eval.instruction_quality import judge
from engine.eval.instruction_tasks import build_tasks, make_task, probe_sites, sites
from engine.eval.sandbox import run_program

PATH = "pkg/textutil.py"
SOURCE = '''\
"""Small text helpers."""

import re


def words(text):
    """The words of text, in order."""
    parts = re.split(r"[\\s,]+", text)
    return [p for p in parts if p]  # empty pieces come from leading separators


def shout(name):
    greeting = "hello " + name
    return greeting


def repeat(item, times):
    if times < 0:
        raise ValueError("times must not be negative")
    return [item] * times


def pad(text, width):
    """text, right-aligned in width characters."""
    return text.rjust(width)


def doubled(values):
    """Each value twice over."""
    return [v * 2 for v in values]


def evens(limit):
    for n in range(limit):
        if n % 2 == 0:
            yield n
'''
FILES = [(PATH, SOURCE)]


@pytest.fixture(scope="module")
def tasks() -> list:
    return build_tasks(files=FILES)


def site(name: str) -> Site:
    return next(s for s in sites(PATH, SOURCE) if s.name == name)


# ------------------------------------------------------------------------------- the tasks


def test_every_kind_makes_a_task_whose_tests_fail_before_and_pass_after(tasks: list) -> None:
    assert {t.kind for t in tasks} == set(KINDS)
    for task in tasks:
        ex = task.example
        assert ex.before == SOURCE and ex.region_before != ex.region_after
        assert ex.region_before.startswith(f"def {task.function}(")
        assert f"`{task.function}`" in ex.instruction
        assert f"from cromwell_task import {task.function}" in task.tests
        assert run_program(task.program(ex.before)).outcome == "failed", task.task_id
        assert run_program(task.program(ex.after)).outcome == "passed", task.task_id


def test_the_task_list_is_the_same_every_run_and_moves_with_the_seed(tasks: list) -> None:
    again = build_tasks(files=FILES)
    assert [(t.task_id, t.example.instruction, t.tests) for t in tasks] == [
        (t.task_id, t.example.instruction, t.tests) for t in again
    ]
    assert [t.kind for t in tasks[: len(KINDS)]] == list(KINDS)  # round-robin over the kinds
    other = build_tasks(seed=1, files=FILES)
    assert [t.tests for t in other] != [t.tests for t in tasks]


def test_the_reference_keeps_the_rest_of_the_file(tasks: list) -> None:
    rename = next(t for t in tasks if t.kind == RENAME_PARAMETER)
    ex = rename.example
    assert ex.prefix + ex.suffix == SOURCE.replace(ex.region_before, "")
    w = site("words")
    guard = insert_before(w, w.node.body[1], ["if not text:", "    return None"])
    words = apply_edits(SOURCE, [guard])
    assert "    if not text:\n        return None\n    parts = re.split" in words
    assert "# empty pieces come from leading separators" in words
    ast.parse(words)


def test_a_change_whose_tests_do_not_tell_before_from_after_is_dropped() -> None:
    repeat = site("repeat")
    probed = probe_sites(PATH, SOURCE, [repeat], seed=0)["repeat"]
    first = repeat.node.body[0]
    # repeat already raises ValueError for a negative count: a guard that does the same
    # changes nothing a test can see.
    guard = insert_before(repeat, first, ["if times < 0:", "    raise ValueError('negative')"])
    same = Change(
        RAISE_ON_NEGATIVE,
        "Make `repeat` raise ValueError when `times` is negative.",
        (guard,),
        (Call(("'a'", "-7")),),
        raises="ValueError",
    )
    assert make_task(repeat, same, probed) is None
    # ... while the same guard on pad, which pads to any width, is a task.
    pad = site("pad")
    pad_probed = probe_sites(PATH, SOURCE, [pad], seed=0)["pad"]
    change = MAKERS[RAISE_ON_NEGATIVE](pad, pad_probed, random.Random(0))
    assert change is not None and make_task(pad, change, pad_probed) is not None


def test_random_or_stateful_functions_give_no_expectations() -> None:
    source = (
        "import random\n\nCOUNT = [0]\n\n\ndef pick(items):\n    return random.choice(items)\n"
        "\n\ndef tick(step):\n    COUNT[0] += step\n    return COUNT[0]\n"
        "\n\ndef first(items):\n    return items[0]\n"
    )
    # A pair is shuffled the same way half the time: a draw is dropped however it came out.
    pair, one = Call(("[1, 2]",)), Call(("1",))
    got = probe("pkg/chance.py", source, {"pick": [pair], "tick": [one], "first": [pair]})
    assert got is not None
    assert all(o is not None and o.unstable for o in got["pick"] + got["tick"])
    assert got["first"][0] is not None and got["first"][0].returns == "1"


def test_held_out_tasks_come_only_from_held_out_files() -> None:
    first = build_tasks(limit=3)
    assert [t.kind for t in first] == list(KINDS[:3])
    assert all(is_heldout(t.example.path) for t in first)
    assert all(not t.example.path.startswith("/") for t in first)


# ----------------------------------------------------------------------------- the judging


def test_judging_runs_the_tests_on_the_edited_file(tasks: list) -> None:
    task = tasks[0]
    ex = task.example
    assert judge(task, Answer(ex.after, "", 0))[:3] == (True, True, True)
    assert judge(task, Answer(ex.before, "", 0))[:3] == (True, True, False)
    assert judge(task, Answer(None, "no edit", 0, "no fence"))[:3] == (False, False, False)
    broken = ex.prefix + ex.region_after.replace("):", ")", 1) + ex.suffix
    assert judge(task, Answer(broken, "", 0))[:3] == (True, False, False)


# ------------------------------------------------------------------------------------ CLI


def test_the_evaluation_does_not_import_torch() -> None:
    code = "import sys, engine.eval.instruction_quality; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_runs_end_to_end_and_reports_json() -> None:
    result = CliRunner().invoke(
        main, ["eval", "instruct", "--limit", "2", "--max-tokens", "16", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["benchmark"] == "instruct" and report["model"].endswith(".gguf")
    assert report["prompt"] == "product" and report["overall"]["tasks"] == 2
    assert [r["task_id"] for r in report["results"]] == [f"{k}/0" for k in KINDS[:2]]
    for r in report["results"]:
        assert 0 <= r["completion_tokens"] <= 16
        assert r["applies"] >= r["parses"] >= r["passes"]
    for s in [report["overall"], *report["kinds"].values()]:
        assert 0.0 <= s["pass_rate"] <= s["parse_rate"] <= s["apply_rate"] <= 1.0
