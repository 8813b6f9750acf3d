"""The edit tasks of `cromwell eval edits`: verified edit examples made from held-out code.

The code is the running interpreter's standard library, the source training indexes by
default (`engine.data.pipeline.code_corpus(stdlib=True)`), restricted to the files the path-hash
split holds out (`split.is_heldout` with the default fraction and salt), so training never saw
a file a task is made from. The examples are made by the same makers the training data uses
(`engine.data.edit_makers.make_examples`, every synthetic kind), from a per-file random generator
seeded by (seed, path): the same interpreter gives the same task list on every run.

Tasks are dealt round-robin over the kinds, so the first N of the list are balanced
whatever N is. Regions are kept short (`MAX_TASK_REGION_LINES`) so that a task's answer
takes seconds, not minutes, on a CPU.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from engine.data.corpus import heldout_stdlib_files as heldout_files
from engine.data.edit_makers import SYNTHETIC_KINDS, EditExample, make_examples

DEFAULT_SEED = 0
MAX_TASK_REGION_LINES = 30
PER_KIND_PER_FILE = 2  # two per file and kind: more files behind each kind's tasks


@dataclass(frozen=True)
class EditTask:
    task_id: str  # "{kind}/{n}": the n-th task of that kind
    example: EditExample

    @property
    def kind(self) -> str:
        return self.example.kind


def _short(example: EditExample) -> bool:
    return max(example.region_before.count("\n"), example.region_after.count("\n")) \
        <= MAX_TASK_REGION_LINES


def build_tasks(seed: int = DEFAULT_SEED, kinds: Sequence[str] = SYNTHETIC_KINDS,
                limit: int | None = None,
                files: Sequence[tuple[str, str]] | None = None) -> list[EditTask]:
    """Every task of `files` ((relative path, text); default: the held-out files),
    round-robin over `kinds`; the first `limit`."""
    tasks = _heldout_tasks(seed, tuple(kinds)) if files is None \
        else _tasks_of(files, seed, kinds)
    return list(tasks[:limit] if limit is not None else tasks)


@functools.lru_cache(maxsize=2)
def _heldout_tasks(seed: int, kinds: tuple[str, ...]) -> tuple[EditTask, ...]:
    """Cached: making them takes seconds, and the list is the same every time."""
    return _tasks_of(heldout_files(), seed, kinds)


def _tasks_of(files: Sequence[tuple[str, str]], seed: int, kinds: Sequence[str]
              ) -> tuple[EditTask, ...]:
    by_kind: dict[str, list[EditExample]] = {k: [] for k in kinds}
    for relpath, text in files:
        rng = random.Random(f"{seed}:{relpath}")
        for example in make_examples(relpath, text, rng, kinds, PER_KIND_PER_FILE):
            if _short(example):
                by_kind[example.kind].append(example)
    order = random.Random(seed)
    for examples in by_kind.values():
        order.shuffle(examples)  # mix the files within a kind
    tasks: list[EditTask] = []
    for i in range(max((len(v) for v in by_kind.values()), default=0)):
        for kind in kinds:
            if i < len(by_kind[kind]):
                tasks.append(EditTask(f"{kind}/{i}", by_kind[kind][i]))
    return tuple(tasks)
