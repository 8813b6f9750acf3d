"""Edit-task evaluation: tasks come only from held-out files and are the same every run; the
scoring passes correct answers and fails broken ones where it should; `cromwell eval edits`
runs end to end on the real default model."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cromwell_cli.main import main
from engine.data.edit_makers import (
    ADD_DOCSTRING,
    FILL_BODY,
    FIX_NAME,
    FIX_SYNTAX,
    REFORMAT,
    RENAME_FUNCTION,
    RENAME_LOCAL,
    SYNTHETIC_KINDS,
    make_examples,
)
from engine.data.split import is_heldout
from engine.eval.edit_scoring import score, score_file
from engine.eval.edit_tasks import EditTask, build_tasks, heldout_files

SOURCE = '''\
import os


def join_all(parts, sep=","):
    """Join the parts with sep, skipping empty ones."""
    kept = [p for p in parts if p]
    total = sep.join(kept)
    return total


def count_files(folder):
    """How many entries the folder has."""
    names = os.listdir(folder)
    found = len(names)
    return found


def main():
    print(join_all(["a", "b"]), count_files("."))
'''


def task_of(kind: str, seed: int = 0) -> EditTask:
    examples = make_examples("pkg/mod.py", SOURCE, random.Random(seed), [kind])
    assert examples, f"the sample source gives no {kind} example"
    return EditTask(f"{kind}/0", examples[0])


# ------------------------------------------------------------------------------- the tasks


def test_heldout_files_are_all_held_out_by_path() -> None:
    files = heldout_files()
    assert len(files) > 10
    assert all(is_heldout(relpath) for relpath, _ in files)
    assert [p for p, _ in files] == sorted(p for p, _ in files)


def test_tasks_are_the_same_every_run_and_come_from_held_out_files() -> None:
    files = heldout_files()[:4]
    first = build_tasks(files=files)
    again = build_tasks(files=files)
    assert first and [t.task_id for t in first] == [t.task_id for t in again]
    assert [t.example for t in first] == [t.example for t in again]
    assert {t.example.path for t in first} <= {p for p, _ in files}
    other_seed = build_tasks(seed=1, files=files)
    assert [t.example for t in other_seed] != [t.example for t in first]


def test_the_full_task_list_is_balanced_over_every_kind() -> None:
    tasks = build_tasks()
    assert all(is_heldout(t.example.path) for t in tasks)
    first = build_tasks(limit=len(SYNTHETIC_KINDS))
    assert [t.kind for t in first] == list(SYNTHETIC_KINDS)
    assert len({t.task_id for t in tasks}) == len(tasks)


# ----------------------------------------------------------------------------- the scoring


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_the_reference_answer_passes_and_an_unchanged_copy_does_not(kind: str) -> None:
    task = task_of(kind)
    good = score(task, task.example.region_after)
    assert (good.applies, good.parses, good.passes) == (True, True, True), good.detail
    copy = score(task, task.example.region_before)
    assert copy.applies and not copy.passes
    missing = score_file(task, None, "no edit")
    assert (missing.applies, missing.parses, missing.passes) == (False, False, False)


def test_a_region_without_its_last_newline_still_splices() -> None:
    task = task_of(FIX_NAME)
    assert score(task, task.example.region_after.rstrip("\n")).passes


def test_a_broken_fix_applies_but_does_not_parse() -> None:
    task = task_of(FIX_SYNTAX)
    bad = score(task, task.example.region_after.replace("):", ")", 1))
    assert bad.applies and not bad.parses and not bad.passes


def test_a_rename_that_misses_a_use_fails() -> None:
    task = task_of(RENAME_LOCAL)
    old, new = task.example.meta["old"], task.example.meta["new"]
    region = task.example.region_after
    partial = region.replace(new, old, 1)  # the binding renamed back, the uses not
    assert partial != region
    result = score(task, partial)
    assert result.parses and not result.passes
    fn = task_of(RENAME_FUNCTION)
    assert score(fn, fn.example.region_after).passes


def test_any_docstring_passes_but_other_changes_do_not() -> None:
    task = task_of(ADD_DOCSTRING)
    region = task.example.region_before
    head, _, body = region.partition("\n")
    indent = body[: len(body) - len(body.lstrip())]
    own_words = f'{head}\n{indent}"""Some other wording."""\n{body}'
    assert score(task, own_words).passes
    changed = own_words.replace("return", "return None or", 1)
    assert score(task, changed).parses and not score(task, changed).passes
    empty = f'{head}\n{indent}""""""\n{body}'
    assert not score(task, empty).passes


def test_a_body_that_differs_from_the_original_fails() -> None:
    task = task_of(FILL_BODY)
    stubbed = score(task, task.example.region_before)
    assert stubbed.parses and not stubbed.passes
    other = task.example.region_after.replace("return", "return not", 1)
    assert not score(task, other).passes


def test_reformat_needs_the_original_layout() -> None:
    task = task_of(REFORMAT)
    assert score(task, task.example.region_after).passes
    trailing = task.example.region_after.replace("\n", "  \n", 1)
    result = score(task, trailing)
    assert result.parses and not result.passes


# ------------------------------------------------------------------------------------ CLI


def test_the_evaluation_does_not_import_torch() -> None:
    code = "import sys, engine.eval.edit_quality; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_runs_end_to_end_and_reports_json() -> None:
    result = CliRunner().invoke(
        main, ["eval", "edits", "--limit", "2", "--max-tokens", "16", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["benchmark"] == "edits" and report["model"].endswith(".gguf")
    assert report["prompt"] == "product"
    assert report["overall"]["tasks"] == 2
    assert [r["task_id"] for r in report["results"]] == [f"{k}/0" for k in SYNTHETIC_KINDS[:2]]
    assert set(report["kinds"]) == set(SYNTHETIC_KINDS[:2])
    for r in report["results"]:
        assert r["stop"] in ("no edit", "checked, try 1", "checked, try 2")
        assert 0 <= r["completion_tokens"] <= 16
        assert r["applies"] >= r["parses"] >= r["passes"]
    for s in [report["overall"], *report["kinds"].values()]:
        assert set(s) == {"tasks", "applies", "parses", "passes", "apply_rate", "parse_rate",
                          "pass_rate"}
        assert 0.0 <= s["pass_rate"] <= s["parse_rate"] <= s["apply_rate"] <= 1.0

