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
