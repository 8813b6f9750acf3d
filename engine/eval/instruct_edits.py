"""Text edits of one function of a file, placed by its syntax tree: the reference answers of
instruction-edit tasks.

Edits change the file's text where the tree says (ast positions: 1-based lines, columns in
UTF-8 bytes) and leave every other character alone, so the reference keeps the file's own
layout and comments, as a person's edit would. Unparsing the tree instead would rewrite the
whole function and make the reference far longer than the change.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.data.edit_example import split_lines

INDENT = "    "


@dataclass(frozen=True)
class Edit:
    """Replace the text from `start` to `end` ((line, byte column), as ast counts) by `text`."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


@dataclass(frozen=True)
class Site:
    """A top-level function of a file."""

    relpath: str
    text: str
    node: ast.FunctionDef

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def region(self) -> tuple[int, int]:
        """The function's lines, 0-based, end exclusive: what the user selects."""
        return self.node.lineno - 1, self.node.end_lineno or self.node.lineno

    @property
    def params(self) -> list[str]:
        """Positional-or-keyword parameters, in order."""
        return [a.arg for a in self.node.args.args]

    @property
    def required(self) -> int:
        return len(self.node.args.args) - len(self.node.args.defaults)

    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ""


def _offset(lines: Sequence[str], line: int, col: int) -> int:
    """The character offset of (1-based line, byte column) in the joined lines."""
    before = sum(len(x) for x in lines[: line - 1])
    if line > len(lines):  # just past the last line
        return before
    return before + len(lines[line - 1].encode("utf-8")[:col].decode("utf-8"))


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """`text` with `edits` (which must not overlap) applied."""
    lines = split_lines(text)
    spans = sorted(
        ((_offset(lines, *e.start), _offset(lines, *e.end), e.text) for e in edits), reverse=True
    )
    for (_, end, _), (next_start, _, _) in zip(spans[1:], spans, strict=False):
        if end > next_start:
            raise ValueError("overlapping edits")
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def own_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """The nodes of the function's own body, not those of a function, lambda or class inside
    it (their returns and yields are not the function's)."""
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))


def own_returns(function: ast.FunctionDef) -> list[ast.Return]:
    return [n for n in own_nodes(function) if isinstance(n, ast.Return)]


def replace_node(node: ast.AST, text: str) -> Edit:
    return Edit(
        (node.lineno, node.col_offset),  # type: ignore[attr-defined]
        (node.end_lineno, node.end_col_offset),
        text,
    )  # type: ignore[attr-defined]


_ATOMS = (
    ast.Name,
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.List,
    ast.Dict,
    ast.ListComp,
    ast.DictComp,
    ast.Constant,
    ast.JoinedStr,
)


def operand(site: Site, node: ast.expr) -> str:
    """The expression's source, in parentheses when a method call or index on it needs them."""
    text = site.segment(node)
    return text if isinstance(node, _ATOMS) else f"({text})"


def map_returns(site: Site, wrap: str) -> list[Edit]:
    """Each `return X` of the function (not bare returns, not `return None`) made
    `return wrap.format(x=X)`."""
    edits = []
    for ret in own_returns(site.node):
        value = ret.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            continue
        edits.append(replace_node(value, wrap.format(x=operand(site, value))))
    return edits


def _own_line(site: Site, stmt: ast.stmt) -> bool:
    """The statement starts its line (only indentation before it) below the signature."""
    line = split_lines(site.text)[stmt.lineno - 1]
    return stmt.lineno > site.node.lineno and not line.encode()[: stmt.col_offset].strip()


def body_start(site: Site) -> ast.stmt | None:
    """The first statement after the docstring, when it starts its own line; else None."""
    body = site.node.body
    has_doc = (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    first = body[1] if has_doc and len(body) > 1 else None if has_doc else body[0]
    return first if first is not None and _own_line(site, first) else None


def insert_before(site: Site, stmt: ast.stmt, lines: Sequence[str]) -> Edit:
    """New lines before `stmt`, at its indentation (each of `lines` relative to it)."""
    indent = split_lines(site.text)[stmt.lineno - 1][: stmt.col_offset]
    text = "".join(f"{indent}{line}\n" for line in lines)
    return Edit((stmt.lineno, 0), (stmt.lineno, 0), text)


def insert_after(site: Site, stmt: ast.stmt, indent: str, lines: Sequence[str]) -> Edit:
    """New lines after the last line of `stmt`."""
    end = (stmt.end_lineno or stmt.lineno) + 1
    text = "".join(f"{indent}{line}\n" for line in lines)
    return Edit((end, 0), (end, 0), text)


def identifiers(tree: ast.AST) -> set[str]:
    """Every name, parameter and attribute spelled in `tree`: a new name must be none of them."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
    return out
