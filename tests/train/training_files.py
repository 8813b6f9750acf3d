"""A few real training-split files of the standard library, for the fine-tuning tests."""

from __future__ import annotations

from pathlib import Path


def some_training_files(n: int = 8) -> list[tuple[str, str]]:
    from engine.data.corpus import indexable_text, stdlib_source
    from engine.data.split import is_heldout

    source = stdlib_source()
    files = []
    for rel in sorted(source.relpaths):
        if rel.endswith(".py") and not is_heldout(rel):
            text = indexable_text(Path(source.root) / rel)
            if text and len(text) > 2000:
                files.append((rel, text))
        if len(files) == n:
            break
    return files


# A file of small helpers whose functions fit the instruction-edit kinds (a string parameter
# named `s`, a count `n`, a list result), for a pool made in a test.
HELPERS = '''"""Small text helpers."""


def shout(s):
    words = s.split()
    return " ".join(w.upper() for w in words)


def total(n, step=1):
    result = 0
    for i in range(0, n, step):
        result += i
    return result


def initials(s):
    parts = [p[0] for p in s.split() if p]
    return "".join(parts)


def evens(x):
    return [i for i in range(x) if i % 2 == 0]
'''


def instruction_pool(folder: Path, tasks: int = 4) -> Path:
    """A pool of `tasks` instruction tasks made from HELPERS by the real pool builder (its
    sandbox probes and tests: a few seconds)."""
    from engine.train.instruct_pool import build_pool

    path = folder / "pool.jsonl"
    assert build_pool(path, tasks, seed=0, files=[("text_helpers.py", HELPERS)]) == tasks
    return path
