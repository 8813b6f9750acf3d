"""Code-editing examples derived mechanically from real code, each one verified.

An example is a file cut into `prefix + region + suffix`; the edit rewrites the region only
(`region_before` -> `region_after`) according to `instruction`. The kinds:

- `rename_local`: rename a local variable of a function everywhere it is used (found with
  `ast`, replaced at the exact token positions, never by string search).
- `rename_function`: rename a module-level function, its definition and every reference.
- `add_docstring`: a function that has a docstring, shown without it; the target restores it.
- `fill_body`: a function whose body was replaced by `...`; the target is the real body.
- `fix_syntax`: a function with an injected syntax error (a dropped colon or bracket, a
  misspelt keyword, `=` for `==`); "before" fails to parse, the target is the original.
- `fix_name`: a read of a name replaced by a typo that nothing defines; "before" parses but
  fails the undefined-name check, the target is the original.
- `reformat`: a function with its spacing broken (around operators and commas, trailing
  blanks); the target is the original, with the same syntax tree.
- `commit` (see `gitlog`): a real change from a repository's history.

`verify(example)` re-checks an example from its texts alone; `make_examples` returns only
examples that pass it. `to_prompt` asks for an example as the product asks for an edit.
"""

from __future__ import annotations

import random
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.edit_format import EditAsk, RenderChat, edit_prompt, edit_target

from .edit_example import (  # noqa: F401  (re-exported: the public names of edit examples)
    ADD_DOCSTRING,
    COMMIT,
    FILL_BODY,
    FIX_NAME,
    FIX_SYNTAX,
    MAX_REGION_LINES,
    REFORMAT,
    RENAME_FUNCTION,
    RENAME_LOCAL,
    SYNTHETIC_KINDS,
    EditExample,
    EditVerificationError,
    example_from_texts,
    split_lines,
)
from .edit_kinds import MAKERS, STUB_BODIES  # noqa: F401
from .edit_verify import verify
from .pycheck import parse_or_none

# ------------------------------------------------------------------------------ generation


def make_examples(
    path: str,
    text: str,
    rng: random.Random,
    kinds: Sequence[str] = SYNTHETIC_KINDS,
    per_kind: int = 1,
    max_tries: int = 8,
) -> list[EditExample]:
    """Up to `per_kind` verified examples of each kind from one file (none if it does not
    parse). Candidates that fail verification are skipped, and counted in nothing: a kind
    the file cannot give is simply absent."""
    unknown = [k for k in kinds if k not in MAKERS]
    if unknown:
        raise ValueError(f"unknown edit kinds {unknown}; known: {sorted(MAKERS)}")
    tree = parse_or_none(text)
    if tree is None or "\t" in text or "\r" in text or "\f" in text:
        return []  # tabs, CRs and form feeds make token columns and regions ambiguous
    out: list[EditExample] = []
    for kind in kinds:
        made = 0
        candidates = _tolerant(MAKERS[kind](path, text, tree, rng))
        for _, candidate in zip(range(max_tries), candidates, strict=False):
            made_kind, instruction, before, after, region, meta = candidate
            try:
                example = example_from_texts(made_kind, path, instruction, before, after,
                                             region, meta)
                if example.region_before.count("\n") > MAX_REGION_LINES:
                    continue
                verify(example)
            except EditVerificationError:
                continue
            out.append(example)
            made += 1
            if made == per_kind:
                break
    return out


def _tolerant(candidates: Iterator[tuple]) -> Iterator[tuple]:
    """The candidates until the file defeats tokenize (which a few files `ast` accepts do):
    one odd file must not stop a training run."""
    try:
        yield from candidates
    except (SyntaxError, tokenize.TokenError):
        return


# --------------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    prompt: str
    target: str


def to_prompt(example: EditExample, render_chat: RenderChat, context_lines: int = 60) -> Prompt:
    """The example as the product asks for it, and what the model should write: the one edit
    format (engine/edit_format.py), rendered by `render_chat` (the model's chat template).

    The instruction is the task and the region the lines to rewrite; up to `context_lines`
    lines either side of the region are its surroundings (the product keeps as many as its
    token budget allows; training rows are kept short). The target is the rewritten region,
    then the fence that closes the answer, where the product stops generating.
    """
    if context_lines < 0:
        raise ValueError(f"context_lines must be >= 0, got {context_lines}")
    above = split_lines(example.prefix)
    before = above[-context_lines:] if context_lines else []
    after = split_lines(example.suffix)[:context_lines]
    start = len(above)
    lines = (start, start + len(split_lines(example.region_before)))
    ask = EditAsk(example.path, example.region_before, lines, "".join(before), "".join(after),
                  example.instruction)
    return Prompt(edit_prompt(render_chat, ask), edit_target(example.region_after))
