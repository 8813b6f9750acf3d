"""How one answer to an edit task is judged: applies, parses, passes (see edit_quality.py for the
definitions per kind). Nothing here runs the code it judges: every test compares syntax trees
or texts, so no sandbox is needed."""

from __future__ import annotations

import ast
from copy import deepcopy
from dataclasses import dataclass

from engine.data.edit_makers import (
    ADD_DOCSTRING,
    FILL_BODY,
    FIX_NAME,
    FIX_SYNTAX,
    REFORMAT,
    RENAME_FUNCTION,
    RENAME_LOCAL,
)
from engine.eval.edit_tasks import EditTask


@dataclass(frozen=True)
class Score:
    applies: bool
    parses: bool
    passes: bool
    detail: str  # why the first check that failed failed; empty when all passed


def splice(task: EditTask, region: str) -> str:
    """The file with the task's region replaced by `region` (whole lines: a last line without
    its newline gets one when the region it replaces had one)."""
    ex = task.example
    if region and not region.endswith("\n") and ex.region_before.endswith("\n"):
        region += "\n"
    return ex.prefix + region + ex.suffix


def _tree(source: str) -> ast.Module | None:
    """The module's tree when it compiles (`compile` also rejects what `ast.parse` lets by,
    such as `return` outside a function), else None."""
    try:
        compile(source, "<edit>", "exec", dont_inherit=True)
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _same_tree(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)  # positions are attributes, which dump leaves out


def _without_docstring(tree: ast.Module, function: str) -> list[ast.Module]:
    """One copy of `tree` per function named `function` that has a docstring, with that
    docstring removed (several functions may share the name: methods of different classes)."""
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name != function:
            continue
        if ast.get_docstring(node, clean=False) is None or not ast.get_docstring(node).strip():
            continue
        copy = deepcopy(tree)
        target = next(n for j, n in enumerate(ast.walk(copy)) if j == i)  # walks alike
        assert isinstance(target, ast.FunctionDef | ast.AsyncFunctionDef)
        target.body = target.body[1:] or [ast.Pass()]
        out.append(copy)
    return out


def _passes(task: EditTask, edited: str, tree: ast.Module) -> tuple[bool, str]:
    ex = task.example
    kind = ex.kind
    reference = ast.parse(ex.after)  # the file as the edit should leave it
    if kind in (RENAME_LOCAL, RENAME_FUNCTION, FIX_SYNTAX, FIX_NAME, FILL_BODY):
        ok = _same_tree(tree, reference)
        return ok, "" if ok else "syntax tree differs from the reference"
    if kind == REFORMAT:
        ok = edited == ex.after
        return ok, "" if ok else "text differs from the original layout"
    if kind == ADD_DOCSTRING:
        before = ast.parse(ex.before)
        ok = any(_same_tree(t, before) for t in _without_docstring(tree, ex.meta["function"]))
        return ok, "" if ok else "no docstring added, or something else changed"
    raise ValueError(f"no test for edit kind {kind!r}")


def score(task: EditTask, region: str) -> Score:
    """`region`: a rewritten region, judged in the file it leaves."""
    return score_file(task, splice(task, region))


def score_file(task: EditTask, edited: str | None, refused: str = "") -> Score:
    """`edited`: the whole file as the answer leaves it, None when the answer gave no edit
    (`refused` says why)."""
    if edited is None:
        return Score(False, False, False, refused or "no edit")
    tree = _tree(edited)
    if tree is None:
        return Score(True, False, False, "the edited file does not compile")
    ok, detail = _passes(task, edited, tree)
    return Score(True, True, ok, detail)
