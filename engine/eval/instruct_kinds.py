"""The behaviour changes of instruction-edit tasks: for a function and the outcomes of calls
to it, an instruction as a user would type it, the reference edit, and the calls that show the
change.

A maker returns None when its change does not fit the function (no parameter of the right
kind, no call that shows the change). What it returns is a proposal: the task builder runs the
reference, takes the expected outcomes from it and keeps the task only when the tests fail on
the original and pass on the reference (instruction_tasks.py).

`changed` calls are those whose outcome the instruction changes; `kept` calls are ordinary
calls whose outcome it must keep (they stop an answer that breaks the function from passing).
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.eval.instruct_edits import (
    INDENT,
    Edit,
    Site,
    body_start,
    identifiers,
    insert_after,
    insert_before,
    map_returns,
    own_nodes,
    own_returns,
    replace_node,
)
from engine.eval.instruct_probe import Outcome
from engine.eval.instruct_program import Call

RENAME_PARAMETER = "rename_parameter"
ADD_DEFAULT = "add_default"
NONE_ON_EMPTY = "none_on_empty"
RAISE_ON_NEGATIVE = "raise_on_negative"
NONE_INSTEAD_OF_RAISE = "none_instead_of_raise"
REVERSE_KEYWORD = "reverse_keyword"
UPPER_RESULT = "upper_result"
SORTED_RESULT = "sorted_result"
LIST_NOT_GENERATOR = "list_not_generator"

Probed = Sequence[tuple[Call, Outcome]]  # calls whose outcome two probe runs agreed on
MAX_CHANGED, MAX_KEPT = 2, 2
# Defaults a person gives a parameter: no mutable ones (a shared list is a classic bug).
_DEFAULTS = ("0", "1", "3", "''", "'abc'", "None", "True")
_RENAMES = {
    "s": "text",
    "n": "count",
    "x": "value",
    "l": "items",
    "lst": "items",
    "st": "stat",
    "fmt": "format_spec",
    "a": "first",
    "b": "second",
    "name": "label",
    "path": "location",
    "text": "content",
    "value": "item",
    "shape": "dims",
}
_FALLBACK_NAMES = ("value", "item", "data", "argument", "source")
_NEGATIVE = "-7"


@dataclass(frozen=True)
class Change:
    kind: str
    instruction: str
    edits: tuple[Edit, ...]
    changed: tuple[Call, ...]
    kept: tuple[Call, ...] = ()
    raises: str | None = None  # the exception the changed calls raise after it (else: values)


def ok_calls(probed: Probed) -> list[tuple[Call, Outcome]]:
    return [(c, o) for c, o in probed if o.ok]


def value_of(outcome: Outcome) -> Any:
    return ast.literal_eval(outcome.returns or "None")


def _kept(
    probed: Probed, keep: Callable[[Call, Outcome], bool] = lambda c, o: True
) -> tuple[Call, ...]:
    """Ordinary calls with a value that is not None (None is what several changes return)."""
    return tuple(c for c, o in ok_calls(probed) if o.returns != "None" and keep(c, o))[:MAX_KEPT]


def _with_arg(call: Call, i: int, value: str) -> Call:
    return Call(call.args[:i] + (value,) + call.args[i + 1 :], call.kwargs)


def _ordinary(v: Any, kinds: tuple[type, ...]) -> bool:
    """`v` is one of `kinds` (exactly: a bool is no int here) and neither empty nor negative:
    a value the function is meant for, which the guard changes must leave alone."""
    if type(v) not in kinds:
        return False
    return bool(v >= 0) if isinstance(v, int | float) else len(v) > 0


def _args_of_type(probed: Probed, i: int, kinds: tuple[type, ...]) -> list[Call]:
    """Calls that returned a value with an ordinary argument i of one of `kinds`."""
    return [
        c
        for c, _ in ok_calls(probed)
        if i < len(c.args) and _ordinary(ast.literal_eval(c.args[i]), kinds)
    ]


def rename_parameter(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    ok = ok_calls(probed)
    fstrings = {
        n.id
        for s in ast.walk(site.node)
        if isinstance(s, ast.JoinedStr)
        for n in ast.walk(s)
        if isinstance(n, ast.Name)
    }
    declared = {
        n for s in ast.walk(site.node) if isinstance(s, ast.Global | ast.Nonlocal) for n in s.names
    }
    names = site.params[: site.required]
    used = {n.id for n in ast.walk(site.node) if isinstance(n, ast.Name)}
    choices = [(i, p) for i, p in enumerate(names) if p in used and p not in fstrings | declared]
    if not ok or not choices:
        return None
    i, old = rng.choice(choices)
    taken = identifiers(ast.parse(site.text))
    wanted = (_RENAMES[old],) if old in _RENAMES else ()
    new = next((n for n in (*wanted, *_FALLBACK_NAMES) if n not in taken and n != old), None)
    if new is None:
        return None
    edits = [
        Edit((a.lineno, a.col_offset), (a.lineno, a.col_offset + len(old.encode())), new)
        for a in ast.walk(site.node)
        if isinstance(a, ast.arg) and a.arg == old
    ]
    edits += [
        replace_node(n, new) for n in ast.walk(site.node) if isinstance(n, ast.Name) and n.id == old
    ]
    changed = tuple(
        Call(
            c.args[:i],
            tuple((new if j == i else names[j], c.args[j]) for j in range(i, site.required)),
        )
        for c, _ in ok[:MAX_CHANGED]
    )
    return Change(
        RENAME_PARAMETER,
        f"Rename the parameter `{old}` of `{site.name}` to `{new}`.",
        tuple(edits),
        changed,
        (ok[0][0],),
    )


def add_default(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    if site.required == 0:
        return None
    i = site.required - 1
    ok = ok_calls(probed)
    values = sorted({c.args[i] for c, _ in ok if c.args[i] in _DEFAULTS})
    if not values:
        return None
    default = rng.choice(values)
    arg = site.node.args.args[i]
    text = f" = {default}" if arg.annotation is not None else f"={default}"
    end = (arg.end_lineno or arg.lineno, arg.end_col_offset or 0)
    changed = tuple(dict.fromkeys(Call(c.args[:i]) for c, _ in ok if c.args[i] == default))
    kept = _kept(probed, lambda c, o: c.args[i] != default)
    return Change(
        ADD_DEFAULT,
        f"Give the parameter `{arg.arg}` of `{site.name}` a default value of {default}.",
        (Edit(end, end, text),),
        changed[:MAX_CHANGED],
        kept,
    )


def _guard(
    site: Site,
    probed: Probed,
    rng: random.Random,
    kinds: tuple[type, ...],
    bad_value: Callable[[Call, int], str],
) -> tuple[int, str, tuple[Call, ...]] | None:
    """(parameter index, name, changed calls) for a check at the top of the body."""
    if body_start(site) is None:
        return None
    choices = [i for i in range(site.required) if _args_of_type(probed, i, kinds)]
    if not choices:
        return None
    i = rng.choice(choices)
    calls = _args_of_type(probed, i, kinds)
    changed = tuple(dict.fromkeys(_with_arg(c, i, bad_value(c, i)) for c in calls))
    return i, site.params[i], changed[:MAX_CHANGED]


def none_on_empty(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    def empty(call: Call, i: int) -> str:
        return "''" if isinstance(ast.literal_eval(call.args[i]), str) else "[]"

    found = _guard(site, probed, rng, (str, list), empty)
    if found is None:
        return None
    i, name, changed = found
    first = body_start(site)
    assert first is not None
    edit = insert_before(site, first, [f"if not {name}:", f"{INDENT}return None"])
    kept = _kept(probed, lambda c, o: _ordinary(ast.literal_eval(c.args[i]), (str, list)))
    return Change(
        NONE_ON_EMPTY,
        f"Make `{site.name}` return None when `{name}` is empty.",
        (edit,),
        changed,
        kept,
    )


def raise_on_negative(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    found = _guard(site, probed, rng, (int,), lambda c, i: _NEGATIVE)
    if found is None:
        return None
    i, name, changed = found
    first = body_start(site)
    assert first is not None
    message = f'f"{name} must not be negative, got {{{name}}}"'
    edit = insert_before(site, first, [f"if {name} < 0:", f"{INDENT}raise ValueError({message})"])
    kept = _kept(probed, lambda c, o: _ordinary(ast.literal_eval(c.args[i]), (int,)))
    return Change(
        RAISE_ON_NEGATIVE,
        f"Make `{site.name}` raise ValueError when `{name}` is negative.",
        (edit,),
        changed,
        kept,
        raises="ValueError",
    )


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return exc.id if isinstance(exc, ast.Name) else None


def none_instead_of_raise(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    raises = [n for n in own_nodes(site.node) if isinstance(n, ast.Raise)]
    own = {_raised_name(n) for n in raises}
    raised = sorted({o.raises for _, o in probed if o.raises in own and o.own and o.builtin})
    if not raised:
        return None
    name = rng.choice(raised)
    edits = tuple(replace_node(n, "return None") for n in raises if _raised_name(n) == name)
    changed = tuple(c for c, o in probed if o.raises == name and o.own)[:MAX_CHANGED]
    return Change(
        NONE_INSTEAD_OF_RAISE,
        f"Make `{site.name}` return None instead of raising {name}.",
        edits,
        changed,
        _kept(probed),
    )


def _sequences(probed: Probed, changes: Callable[[Any], bool]) -> list[Call]:
    """Calls returning a list, tuple or string that the change would alter."""
    return [
        c
        for c, o in ok_calls(probed)
        if o.type in ("list", "tuple", "str") and not o.generator and changes(value_of(o))
    ]


def reverse_keyword(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    args = site.node.args
    calls = _sequences(probed, lambda v: len(v) > 1 and v[::-1] != v)
    if args.kwarg is not None or not calls or "reverse" in identifiers(site.node):
        return None
    params = [
        *args.posonlyargs,
        *args.args,
        *args.defaults,
        *([args.vararg] if args.vararg else []),
        *args.kwonlyargs,
        *(d for d in args.kw_defaults if d is not None),
    ]
    if not params:
        return None
    last = max(params, key=lambda n: (n.end_lineno or 0, n.end_col_offset or 0))
    end = (last.end_lineno or last.lineno, last.end_col_offset or 0)
    star = "" if args.vararg or args.kwonlyargs else "*, "
    edits = [
        Edit(end, end, f", {star}reverse=False"),
        *map_returns(site, "{x}[::-1] if reverse else {x}"),
    ]
    changed = tuple(Call(c.args, (*c.kwargs, ("reverse", "True"))) for c in calls)
    return Change(
        REVERSE_KEYWORD,
        f"Add a keyword-only argument `reverse` to `{site.name}`, defaulting to "
        "False; when it is true, return the result reversed.",
        tuple(edits),
        changed[:MAX_CHANGED],
        tuple(calls[:MAX_KEPT]),
    )


def upper_result(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    calls = [
        c for c, o in ok_calls(probed) if o.type == "str" and value_of(o).upper() != value_of(o)
    ]
    if not calls:
        return None
    return Change(
        UPPER_RESULT,
        f"Make `{site.name}` return its result in upper case.",
        tuple(map_returns(site, "{x}.upper()")),
        tuple(calls[:MAX_CHANGED]),
    )


def _sortable(v: Any) -> bool:
    try:
        return len(v) > 1 and sorted(v) != list(v)
    except TypeError:
        return False


def sorted_result(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    calls = _sequences(probed, lambda v: not isinstance(v, str) and _sortable(v))
    if not calls:
        return None
    return Change(
        SORTED_RESULT,
        f"Make `{site.name}` return its result as a sorted list.",
        tuple(map_returns(site, "sorted({x})")),
        tuple(calls[:MAX_CHANGED]),
    )


def list_not_generator(site: Site, probed: Probed, rng: random.Random) -> Change | None:
    calls = [c for c, o in ok_calls(probed) if o.generator]
    first = body_start(site)
    nodes = list(own_nodes(site.node))
    yields = [n for n in nodes if isinstance(n, ast.Yield | ast.YieldFrom)]
    statements = [n for n in nodes if isinstance(n, ast.Expr) and n.value in yields]
    taken = identifiers(site.node)
    name = next((n for n in ("result", "results", "found") if n not in taken), None)
    if (
        not calls
        or first is None
        or name is None
        or len(statements) != len(yields)
        or any(r.value is not None for r in own_returns(site.node))
    ):
        return None
    edits = [insert_before(site, first, [f"{name} = []"])]
    for stmt in statements:
        y = stmt.value
        assert isinstance(y, ast.Yield | ast.YieldFrom)
        method = "extend" if isinstance(y, ast.YieldFrom) else "append"
        item = site.segment(y.value) if y.value is not None else "None"
        edits.append(replace_node(stmt, f"{name}.{method}({item})"))
    edits += [replace_node(r, f"return {name}") for r in own_returns(site.node)]
    indent = " " * first.col_offset
    edits.append(insert_after(site, site.node.body[-1], indent, [f"return {name}"]))
    return Change(
        LIST_NOT_GENERATOR,
        f"Make `{site.name}` return a list instead of a generator.",
        tuple(edits),
        tuple(calls[:MAX_CHANGED]),
    )


Maker = Callable[[Site, Probed, random.Random], Change | None]
MAKERS: dict[str, Maker] = {
    RENAME_PARAMETER: rename_parameter,
    ADD_DEFAULT: add_default,
    NONE_ON_EMPTY: none_on_empty,
    RAISE_ON_NEGATIVE: raise_on_negative,
    NONE_INSTEAD_OF_RAISE: none_instead_of_raise,
    REVERSE_KEYWORD: reverse_keyword,
    UPPER_RESULT: upper_result,
    SORTED_RESULT: sorted_result,
    LIST_NOT_GENERATOR: list_not_generator,
}
KINDS = tuple(MAKERS)
