"""The typing benchmark's recorded session: made from the file with a fixed seed, replaying
to the file itself, and the report's percentiles."""

from __future__ import annotations

import textwrap as textwrap_module
from pathlib import Path

from cromwell_lsp.bench_typing import percentile, summarize
from cromwell_lsp.typing_session import make_session

SOURCE = Path(textwrap_module.__file__).read_text()


def replay_text(text: str, steps) -> str:
    """The document after the session when no suggestion is ever accepted."""
    lines = text.split("\n")
    line = column = 0
    for step in steps:
        if step.kind == "move":
            line, column = step.line, step.column
        elif step.kind == "clear":
            first = lines[step.line]
            code_at = len(first) - len(first.lstrip())
            lines[step.line : step.line + step.count] = [first[:code_at]]
        elif step.kind in ("type", "typo"):
            current = lines[line]
            new = current[:column] + step.text + current[column:]
            parts = new.split("\n")
            lines[line : line + 1] = parts
            line += len(parts) - 1
            column = len(parts[-1]) - len(current[column:])
        elif step.kind == "delete":
            current = lines[line]
            lines[line] = current[: column - 1] + current[column:]
            column -= 1
    return "\n".join(lines)


def test_the_same_file_gives_the_same_session():
    assert make_session(SOURCE, spots=4) == make_session(SOURCE, spots=4)
    assert make_session(SOURCE, spots=4) != make_session(SOURCE, spots=4, seed=1)


def test_retyping_without_accepting_gives_the_file_back():
    steps = make_session(SOURCE, spots=6)
    assert replay_text(SOURCE, steps) == SOURCE
    kinds = {s.kind for s in steps}
    assert kinds == {"move", "clear", "type", "typo", "delete", "accept", "pause"}
    keys = sum(s.kind in ("type", "typo", "delete") for s in steps)
    assert 150 < keys < 1000  # a few hundred keystrokes
    # each spot ends with a pause to read before the next move
    assert [steps[i - 1].kind for i, s in enumerate(steps) if s.kind == "move" and i > 0][1::2] \
        == ["pause"] * 5


def test_percentiles():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    row = summarize([10.0] * 19 + [1000.0])
    assert row["p50_ms"] == 10.0 and row["max_ms"] == 1000.0 and row["n"] == 20
