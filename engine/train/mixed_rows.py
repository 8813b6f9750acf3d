"""Fine-tuning rows of four kinds, mixed by a seeded draw, all from the standard library's
training split and all asked exactly as the product asks:

- `fim`: fill in the middle in the ghost-text pipeline's own layout (engine/train/fim_rows.py),
  over an excerpt or, with `fim_window="file"`, over the window the editor sends;
- `edit`: a verified mechanical edit (engine/data/edit_makers.py: renames, a docstring, a body,
  a syntax or name fix, spacing) asked in the one edit format through the chat template, the
  target the rewritten region and the closing fence;
- `complete`: a module-level function with a docstring, shown as its signature and docstring
  in the chat turn HumanEval asks with (engine/eval/humaneval.py's INSTRUCTION); the target is
  the whole function in one Python block and the end of the turn. It keeps the chat path
  writing code while the adapter learns the other two (a FIM-only adapter cost HumanEval 4 of
  its 5 passes);
- `instruct`: an instruction edit with tests (a behaviour change asked as a user asks, the
  function as the selected region), drawn from a pool made beforehand
  (engine/train/instruct_pool.py), in the same edit prompt as `edit`.

Only the target tokens are scored. Example `i` of a seed is a pure function of (seed, i), so a
run resumes exactly from the index of the next example.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence
from typing import Any

import torch

from engine.data.edit_example import EditExample
from engine.data.edit_makers import SYNTHETIC_KINDS, make_examples, to_prompt
from engine.edit_format import chat_renderer
from engine.eval.humaneval import INSTRUCTION
from engine.train.fim_rows import MAX_EXAMPLE_TOKENS, Example, FimRows, pack_batch

KINDS = ("fim", "edit", "complete", "instruct")
DEFAULT_MIX = (0.5, 0.3, 0.2, 0.0)
END_OF_TURN = "<|im_end|>"


def parse_mix(text: str) -> tuple[float, ...]:
    """`fim,edit,complete[,instruct]` shares, e.g. "0.5,0.3,0.2" or "0.2,0.3,0.1,0.4"
    (normalised; a zero drops the kind, and three shares leave out the instruction rows, as
    runs made before them did: the kind drawn for each example stays the same)."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) not in (len(KINDS) - 1, len(KINDS)) or any(p < 0 for p in parts) \
            or sum(parts) <= 0:
        raise ValueError(f"--mix takes {len(KINDS) - 1} or {len(KINDS)} shares "
                         f"({','.join(KINDS)}) that are >= 0 and not all 0, got {text!r}")
    total = sum(parts)
    return tuple(p / total for p in all_kinds(parts))


def all_kinds(shares: Sequence[float]) -> tuple[float, ...]:
    """A share for each of KINDS: three shares (runs made before instruction rows) get 0 for
    `instruct`."""
    return tuple(shares) + (0.0,) * (len(KINDS) - len(shares))


def documented_functions(text: str) -> list[tuple[str, str]]:
    """(signature + docstring, whole function) of the module-level functions of `text` that
    have a docstring and a body of 2-40 lines after it."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.split("\n")
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.decorator_list:
            continue
        doc = node.body[0]  # a def always has a body; a docstring alone has no lines after it
        if not (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)):
            continue
        end = node.end_lineno or node.lineno
        body_lines = end - (doc.end_lineno or doc.lineno)
        if not 2 <= body_lines <= 40:
            continue
        head = "\n".join(lines[node.lineno - 1:doc.end_lineno]) + "\n"
        whole = "\n".join(lines[node.lineno - 1:end]) + "\n"
        out.append((head, whole))
    return out


class MixedRows:
    """Examples of the four kinds for a seed, drawn by `mix` (shares of fim, edit, complete
    and instruct; the instruction rows from `instruct_pool`, which a share above 0 needs)."""

    def __init__(self, tokenizer: Any, files: list[tuple[str, str]], seed: int,
                 mix: Sequence[float] = DEFAULT_MIX, fim_window: str = "excerpt",
                 instruct_pool: Sequence[EditExample] = ()) -> None:
        if len(mix) not in (len(KINDS) - 1, len(KINDS)) or sum(mix) <= 0:
            raise ValueError(f"mix needs {len(KINDS) - 1} or {len(KINDS)} shares, not all 0")
        mix = all_kinds(mix)
        if mix[KINDS.index("instruct")] > 0 and not instruct_pool:
            raise ValueError("instruction rows need a pool of tasks (--instruct-pool FILE, "
                             "made by `cromwell train instruct-pool`)")
        self.tokenizer, self.files, self.seed = tokenizer, files, seed
        self.mix = mix
        self.instruct_pool = list(instruct_pool)
        self.fim = FimRows(tokenizer, files, seed, fim_window)
        self.render = chat_renderer(tokenizer)
        end = tokenizer.token_to_id(END_OF_TURN)
        self.end_of_turn = [end] if end is not None else []
        self._functions: dict[int, list[tuple[str, str]]] = {}

    def kind(self, index: int) -> str:
        return random.Random(f"{self.seed}:kind:{index}").choices(KINDS, self.mix)[0]

    def example(self, index: int) -> Example:
        kind = self.kind(index)
        if kind == "fim":
            return self.fim.example(index)
        rng = random.Random(f"{self.seed}:{kind}:{index}")
        make = {"edit": self._edit, "complete": self._complete, "instruct": self._instruct}[kind]
        for _ in range(200):
            made = make(rng)
            if made is not None and sum(map(len, made)) <= MAX_EXAMPLE_TOKENS:
                return made
        return self.fim.example(index)  # a corpus that gives this kind nothing

    def _encode(self, prompt: str, target: str) -> Example:
        tok = self.tokenizer
        return (tok.encode(prompt, add_special=True),
                tok.encode(target, add_special=False, parse_special=False))

    def _edit(self, rng: random.Random) -> Example | None:
        path, text = self.files[rng.randrange(len(self.files))]
        kind = rng.choice(SYNTHETIC_KINDS)
        made = make_examples(path, text, rng, kinds=(kind,), per_kind=1, max_tries=4)
        if not made:
            return None
        return self._asked(made[0], rng)

    def _instruct(self, rng: random.Random) -> Example | None:
        return self._asked(self.instruct_pool[rng.randrange(len(self.instruct_pool))], rng)

    def _asked(self, example: EditExample, rng: random.Random) -> Example:
        """An edit example in the product's edit prompt, with 2-12 lines around its region."""
        prompt = to_prompt(example, self.render, context_lines=rng.randint(2, 12))
        return self._encode(prompt.prompt, prompt.target)

    def _complete(self, rng: random.Random) -> Example | None:
        i = rng.randrange(len(self.files))
        if i not in self._functions:
            self._functions[i] = documented_functions(self.files[i][1])
        functions = self._functions[i]
        if not functions:
            return None
        head, whole = rng.choice(functions)
        messages = [{"role": "user", "content": INSTRUCTION.format(prompt=head)}]
        prompt, target = self._encode(self.render(messages), f"```python\n{whole}```")
        return prompt, target + self.end_of_turn

    def batch(self, start: int, rows: int, row_len: int) -> tuple[dict[str, torch.Tensor], int]:
        return pack_batch(self.example, start, rows, row_len, self.fim.longest)
