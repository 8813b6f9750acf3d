"""Fill-in-the-middle examples for inline completion: a file cut into prefix, middle and
suffix, shown as `<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>` with the middle as the
target (the prefix-suffix-middle order the editor's completion prompt uses).

Two kinds of cut, half each: whole lines (a statement or a block to write), and a cursor
inside a line (the rest of that line, sometimes with the lines after it), which is what
completion at the cursor asks for.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from .edit_example import split_lines
from .edit_makers import Prompt

FIM_MARKERS: Mapping[str, str] = {
    "prefix": "<fim_prefix>",
    "suffix": "<fim_suffix>",
    "middle": "<fim_middle>",
}


@dataclass(frozen=True)
class FimExample:
    path: str
    prefix: str
    middle: str
    suffix: str

    @property
    def text(self) -> str:
        return self.prefix + self.middle + self.suffix


def fim_split(
    path: str, text: str, rng: random.Random, max_middle_lines: int = 12
) -> FimExample | None:
    """A random cut of `text` with a middle that is not blank; None for a text too short."""
    lines = split_lines(text)
    content = [i for i, line in enumerate(lines) if line.strip()]
    if len(content) < 3:
        return None
    start = rng.choice(content)
    count = rng.randint(1, max_middle_lines)
    end = min(len(lines), start + count)
    head, tail = "".join(lines[:start]), "".join(lines[end:])
    if rng.random() < 0.5:
        middle = "".join(lines[start:end])
        return FimExample(path, head, middle, tail)
    # A cursor inside line `start`, after its indentation: the middle runs to the end of that
    # line, or on through the following lines.
    line = lines[start]
    indent = len(line) - len(line.lstrip())
    body = len(line.rstrip("\r\n"))
    cut = rng.randint(indent, max(indent, body - 1))
    middle_end = end if rng.random() < 0.5 else start + 1
    middle = line[cut:] + "".join(lines[start + 1 : middle_end])
    if not middle.strip():
        return None
    return FimExample(path, head + line[:cut], middle, "".join(lines[middle_end:]))


def to_fim_prompt(example: FimExample, markers: Mapping[str, str] = FIM_MARKERS) -> Prompt:
    missing = [k for k in ("prefix", "suffix", "middle") if k not in markers]
    if missing:
        raise ValueError(f"FIM markers lack {missing}; give prefix, suffix and middle")
    prompt = (f"{markers['prefix']}{example.prefix}{markers['suffix']}{example.suffix}"
              f"{markers['middle']}")
    return Prompt(prompt=prompt, target=example.middle)
