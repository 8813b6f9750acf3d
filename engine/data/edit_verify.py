"""Verification of edit examples from their texts alone: both sides parse where they should,
the change is exactly the one the kind claims (compared on syntax trees), and the instruction
names what changed."""

from __future__ import annotations

import ast
import copy
import functools
from typing import NoReturn

from .edit_example import (
    ADD_DOCSTRING,
    COMMIT,
    FILL_BODY,
    FIX_NAME,
    FIX_SYNTAX,
    REFORMAT,
    RENAME_FUNCTION,
    RENAME_LOCAL,
    SYNTHETIC_KINDS,
    EditExample,
    EditVerificationError,
)
from .pycheck import (
    FunctionNode,
    docstring_stmt,
    function_spanning,
    functions,
    parse_or_none,
    rename_names,
    syntax_error,
    undefined_names,
)


def _fail(example: EditExample, why: str) -> NoReturn:
    raise EditVerificationError(f"{example.kind} example for {example.path}: {why}")


@functools.lru_cache(maxsize=2)
def _parse_shared(text: str) -> ast.Module | None:
    """Parse for read-only use: the examples of one file share its original text, so the
    tree is cached. Callers must not mutate it."""
    return parse_or_none(text)


def _region_function(example: EditExample, tree: ast.Module, region: str) -> FunctionNode:
    """The function whose lines are exactly the region (before or after the edit). Text outside
    the region is the same on both sides by construction, so comparing these two functions
    compares the whole files, at a fraction of the cost."""
    start = example.prefix.count("\n") + 1
    end = start + region.count("\n") - 1
    fn = function_spanning(tree, start, end)
    if fn is None or fn.name != example.meta.get("function"):
        _fail(example, f"the region (lines {start}-{end}) is not the function "
                       f"{example.meta.get('function')!r}")
    return fn


def verify(example: EditExample) -> None:
    """Raise EditVerificationError unless the example's texts show exactly the change its kind
    and instruction claim."""
    if example.region_before == example.region_after:
        _fail(example, "the region is unchanged")
    if example.kind == COMMIT:
        return  # real history: the change is what it is, and need not parse
    if example.kind not in SYNTHETIC_KINDS:
        _fail(example, f"unknown kind {example.kind!r}")
    after = _parse_shared(example.after)
    if after is None:
        _fail(example, "'after' does not parse")
    if example.kind == FIX_SYNTAX:
        err = syntax_error(example.before)
        if err is None:
            _fail(example, "'before' parses, so there is no syntax error to fix")
        if err.msg not in example.instruction or f"line {err.lineno}:" not in example.instruction:
            _fail(example, "the instruction does not quote the parser's error and line")
        return
    if example.kind in _NAMES_FUNCTION and f"`{example.meta['function']}`" \
            not in example.instruction:
        _fail(example, "the instruction does not name the function")
    before = parse_or_none(example.before)
    if before is None:
        _fail(example, "'before' does not parse")
    _VERIFIERS[example.kind](example, before, after)


def _verify_rename(example: EditExample, before: ast.Module, after: ast.Module) -> None:
    old, new = example.meta["old"], example.meta["new"]
    if f"`{old}`" not in example.instruction or f"`{new}`" not in example.instruction:
        _fail(example, "the instruction does not name both names")
    if example.kind == RENAME_LOCAL:
        fn_before = _region_function(example, before, example.region_before)
        fn_after = _region_function(example, after, example.region_after)
        rename_names(fn_before.body, old, new)
        if ast.dump(fn_before) != ast.dump(fn_after):
            _fail(example, f"'after' is not 'before' with {old!r} renamed to {new!r}")
        if any(isinstance(n, ast.Name) and n.id == old for n in ast.walk(fn_after)):
            _fail(example, f"{old!r} is still used in the function")
        return
    rename_names([before], old, new)
    for node in functions(before):
        if node.name == old and node.lineno == int(example.meta["lineno"]):
            node.name = new
    if ast.dump(before) != ast.dump(after):
        _fail(example, f"'after' is not 'before' with {old!r} renamed to {new!r}")
    if any(isinstance(n, ast.Name) and n.id == old for n in ast.walk(after)):
        _fail(example, f"{old!r} is still referenced")


def _verify_docstring(example: EditExample, before: ast.Module, after: ast.Module) -> None:
    fn_before = _region_function(example, before, example.region_before)
    fn_after = _region_function(example, after, example.region_after)
    if docstring_stmt(fn_before) is not None:
        _fail(example, "'before' already has a docstring")
    if docstring_stmt(fn_after) is None:
        _fail(example, "'after' has no docstring on the function")
    without = copy.copy(fn_after)
    without.body = fn_after.body[1:]
    if ast.dump(fn_before) != ast.dump(without):
        _fail(example, "'after' differs from 'before' by more than the docstring")


def _verify_fill(example: EditExample, before: ast.Module, after: ast.Module) -> None:
    fn_before = _region_function(example, before, example.region_before)
    fn_after = _region_function(example, after, example.region_after)
    stub = ast.dump(ast.parse(example.meta["stub"]).body[0])
    doc_before, doc_after = docstring_stmt(fn_before), docstring_stmt(fn_after)
    body = fn_before.body[1:] if doc_before else fn_before.body
    if len(body) != 1 or ast.dump(body[0]) != stub:
        _fail(example, "'before' body is not a single stub statement")
    if ast.dump(fn_after.args) != ast.dump(fn_before.args) \
            or ast.dump(doc_after or ast.Pass()) != ast.dump(doc_before or ast.Pass()):
        _fail(example, "the signature or docstring changed")
    after_body = fn_after.body[1:] if doc_after else fn_after.body
    if [ast.dump(s) for s in after_body] == [stub]:
        _fail(example, "'after' is still the stub")


def _verify_name(example: EditExample, before: ast.Module, after: ast.Module) -> None:
    typo, name = example.meta["typo"], example.meta["name"]
    if f"`{typo}`" not in example.instruction:
        _fail(example, "the instruction does not name the undefined name")
    fn_before = _region_function(example, before, example.region_before)
    fn_after = _region_function(example, after, example.region_after)
    span = (fn_before.lineno, fn_before.end_lineno or fn_before.lineno)
    undefined_before = undefined_names(before, span)
    missing_before = {n for n, _ in undefined_before}
    missing_after = {n for n, _ in undefined_names(after, span)}
    if missing_before - missing_after != {typo}:
        _fail(example, f"undefined names differ by {missing_before - missing_after}, not {typo!r}")
    lines = {line for n, line in undefined_before if n == typo}
    if not any(f"line {line}." in example.instruction for line in lines):
        _fail(example, f"the instruction does not give the line of {typo!r} ({sorted(lines)})")
    rename_names([fn_before], typo, name)
    if ast.dump(fn_before) != ast.dump(fn_after):
        _fail(example, "'after' differs from 'before' by more than the name")


def _verify_reformat(example: EditExample, before: ast.Module, after: ast.Module) -> None:
    fn_before = _region_function(example, before, example.region_before)
    fn_after = _region_function(example, after, example.region_after)
    if ast.dump(fn_before) != ast.dump(fn_after):
        _fail(example, "reformatting changed the syntax tree")


_NAMES_FUNCTION = (RENAME_LOCAL, ADD_DOCSTRING, FILL_BODY, REFORMAT)
_VERIFIERS = {
    RENAME_LOCAL: _verify_rename,
    RENAME_FUNCTION: _verify_rename,
    ADD_DOCSTRING: _verify_docstring,
    FILL_BODY: _verify_fill,
    FIX_NAME: _verify_name,
    REFORMAT: _verify_reformat,
}
