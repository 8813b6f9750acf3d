"""Static checks on Python source used to build and verify edit examples: does it parse, which
functions does it define, which names does it read that nothing binds.

The name check is a small scope analysis, deliberately generous about what counts as bound (a
name bound anywhere in a function, its comprehensions or its enclosing functions counts), so it
reports only names that are certainly undefined: an injected typo, not a false alarm.
"""

from __future__ import annotations

import ast
import builtins
import keyword
from collections.abc import Sequence

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
MODULE_DUNDERS = frozenset(
    {"__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__",
     "__path__", "__cached__", "__annotations__", "__dict__", "__debug__", "__class__"}
)
BUILTIN_NAMES = frozenset(dir(builtins)) | MODULE_DUNDERS
_Lines = tuple[int, int] | None


def parse_or_none(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: source with NUL bytes
        return None


def syntax_error(source: str) -> SyntaxError | None:
    try:
        ast.parse(source)
    except SyntaxError as err:
        return err
    return None


def functions(tree: ast.AST) -> list[FunctionNode]:
    """Every function and method, in source order."""
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def function_spanning(tree: ast.AST, start: int, end: int) -> FunctionNode | None:
    """The outermost function whose lines, decorators included, are exactly [start, end]
    (1-based); found by descending only into nodes that contain those lines."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        lo, hi = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if lo is None or hi is None:
            continue
        is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        if is_function and first_line(node) == start and hi == end:
            return node
        if lo <= start and end <= hi:
            stack.extend(ast.iter_child_nodes(node))
    return None


def first_line(node: FunctionNode) -> int:
    """1-based first line of a function, its decorators included."""
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def docstring_stmt(fn: FunctionNode) -> ast.Expr | None:
    """The statement holding the function's docstring, if it has one."""
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        return first
    return None


def rename_names(nodes: Sequence[ast.AST], old: str, new: str) -> None:
    """Rename every `Name` node `old` under `nodes` to `new`, in place."""
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id == old:
                sub.id = new


def is_valid_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and name not in BUILTIN_NAMES


def _bound_in(node: ast.AST, *, into_nested: bool) -> set[str]:
    """Names bound directly in the scope of `node` (and in nested scopes when asked)."""
    bound: set[str] = set()
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store | ast.Del):
            bound.add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, ast.Import | ast.ImportFrom):
            for alias in child.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(child, ast.Global | ast.Nonlocal):
            bound.update(child.names)
        elif isinstance(child, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and child.name:
            bound.add(child.name)
        elif isinstance(child, ast.MatchMapping) and child.rest:
            bound.add(child.rest)
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(child.name)
            # Decorators, defaults and annotations belong to the enclosing scope.
            if not into_nested:
                stack.extend(child.decorator_list)
                if not isinstance(child, ast.ClassDef):
                    stack.extend(d for d in child.args.defaults + child.args.kw_defaults if d)
                continue
        if isinstance(child, ast.Lambda) and not into_nested:
            continue
        stack.extend(ast.iter_child_nodes(child))
    return bound


def undefined_names(
    source: str | ast.Module, lines: tuple[int, int] | None = None
) -> list[tuple[str, int]]:
    """(name, line) for every read of a name no scope binds, in source order; only reads on
    1-based `lines` [first, last] when given. Empty for a module with `from x import *`
    (anything could be bound) or that does not parse."""
    tree = parse_or_none(source) if isinstance(source, str) else source
    if tree is None:
        return []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return []
    module_bound = _bound_in(tree, into_nested=False)
    # `global x` inside a function binds x at module level.
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            module_bound.update(node.names)
    found: list[tuple[str, int]] = []
    _visit_scope(tree, frozenset(module_bound), found, lines)
    found.sort(key=lambda item: item[1])
    return found


def _visit_scope(
    scope: ast.AST, visible: frozenset[str], found: list[tuple[str, int]], lines: _Lines
) -> None:
    _visit_nodes(list(ast.iter_child_nodes(scope)), visible, found, lines)


def _visit_nodes(
    stack: list[ast.AST], visible: frozenset[str], found: list[tuple[str, int]], lines: _Lines
) -> None:
    while stack:
        node = stack.pop()
        end = getattr(node, "end_lineno", None)
        if lines and end is not None and (end < lines[0] or node.lineno > lines[1]):
            continue  # nothing in it is on the lines asked about
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = visible | _bound_in(node, into_nested=True)
            _visit_scope(node, frozenset(inner), found, lines)
            continue
        if isinstance(node, ast.ClassDef):
            # Class-level names are visible in the class body, not inside its methods.
            body_visible = visible | _bound_in(node, into_nested=False)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    inner = visible | _bound_in(child, into_nested=True)
                    _visit_scope(child, frozenset(inner), found, lines)
                    stack.extend(child.decorator_list)
                else:
                    _visit_nodes([child], frozenset(body_visible), found, lines)
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) \
                and node.id not in visible and node.id not in BUILTIN_NAMES:
            found.append((node.id, node.lineno))
        stack.extend(ast.iter_child_nodes(node))

