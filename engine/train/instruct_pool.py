"""Instruction edits for fine-tuning: the tasks `cromwell eval instruct` makes
(engine/eval/instruction_tasks.py: a behaviour change of a function asked as a user asks,
kept only when its tests fail on the original and pass on the reference edit), made from the
standard library's training split instead of its held-out files.

Making a task probes its file's functions in the sandbox, seconds a task, so a pool is made once
(`cromwell train instruct-pool --out FILE --limit N`) and read by every run that draws from it:
one JSON line a task, written as each is made, so a pool cut short keeps what it made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.data.edit_example import EditExample

POOL_FIELDS = ("kind", "path", "instruction", "prefix", "region_before", "region_after", "suffix")


def build_pool(out: Path, limit: int, seed: int,
               files: Sequence[tuple[str, str]] | None = None,
               progress: Callable[[int, str], None] | None = None) -> int:
    """Write the first `limit` tasks of the training files (default: the training split),
    round-robin over the kinds, to `out`; returns how many were made (fewer when the files
    give no more)."""
    from engine.eval.instruction_tasks import iter_tasks
    from engine.train.fim_rows import training_files

    if limit < 1:
        raise ValueError(f"a pool needs at least one task, got --limit {limit}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    made = 0
    with out.open("w") as f:
        for task in iter_tasks(seed, files=training_files() if files is None else files):
            row = {name: getattr(task.example, name) for name in POOL_FIELDS}
            f.write(json.dumps({**row, "function": task.function, "tests": task.tests}) + "\n")
            f.flush()
            made += 1
            if progress is not None:
                progress(made, task.task_id)
            if made >= limit:
                break
    return made


def load_pool(path: str | Path) -> list[EditExample]:
    """The pool's tasks as edit examples (instruction, the function as the region, the
    reference edit as its rewrite); a clear error for a file that is not a pool."""
    examples = []
    with Path(path).open() as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                examples.append(EditExample(**{name: row[name] for name in POOL_FIELDS},
                                            meta={"function": row["function"]}))
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}:{number} is not a pool line: {err}") from None
    if not examples:
        raise ValueError(f"{path} holds no instruction tasks")
    return examples


def main(argv: list[str]) -> int:
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser(
        prog="cromwell train instruct-pool",
        description="Make instruction-edit tasks with tests from the standard library's "
        "training split (as `cromwell eval instruct` makes its held-out ones) into a pool "
        "that `cromwell train finetune --instruct-pool FILE` draws from.")
    parser.add_argument("--out", required=True, help="The pool file to write (JSON lines).")
    parser.add_argument("--limit", type=int, default=300, help="Tasks to make (default: 300).")
    parser.add_argument("--seed", type=int, default=1,
                        help="Which functions and calls make the tasks (default: 1).")
    args = parser.parse_args(argv)
    start = time.monotonic()

    def say(made: int, task_id: str) -> None:
        print(f"{made}/{args.limit} {task_id} ({time.monotonic() - start:.0f} s)",
              file=sys.stderr, flush=True)

    try:
        made = build_pool(Path(args.out), args.limit, args.seed, progress=say)
    except (ValueError, OSError) as err:
        print(f"cromwell train instruct-pool: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "tasks": made, "seconds": round(time.monotonic() - start)}))
    return 0
