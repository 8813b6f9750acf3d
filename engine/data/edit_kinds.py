"""How each kind of synthetic edit is made from real code (see `edit_makers` for the kinds).
Each maker yields candidates (kind, instruction, before, after, region, meta);
`edit_makers.make_examples` turns them into examples and keeps only those that
`edit_verify.verify` accepts."""

from __future__ import annotations

import ast
import functools
import io
import random
import re
import tokenize
from collections.abc import Callable, Sequence

from .edit_example import (
    ADD_DOCSTRING,
    FILL_BODY,
    FIX_NAME,
    FIX_SYNTAX,
    REFORMAT,
    RENAME_FUNCTION,
    RENAME_LOCAL,
    split_lines,
)
from .pycheck import (
    FunctionNode,
    docstring_stmt,
    first_line,
    functions,
    is_valid_identifier,
    syntax_error,
)


def _function_region(node: FunctionNode) -> tuple[int, int]:
    return first_line(node) - 1, node.end_lineno or node.lineno


# ---------------------------------------------------------------------------- token editing


def _replace_spans(text: str, spans: Sequence[tuple[int, int, int, str]]) -> str:
    """Replace (line 1-based, start col, end col, new text) spans; cols are str offsets."""
    lines = split_lines(text)
    for lineno, start, end, new in sorted(spans, reverse=True):
        line = lines[lineno - 1]
        lines[lineno - 1] = line[:start] + new + line[end:]
    return "".join(lines)


def _char_col(text_lines: list[str], lineno: int, byte_col: int) -> int:
    """ast gives UTF-8 byte offsets; convert to a str offset on that line."""
    return len(text_lines[lineno - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))


@functools.lru_cache(maxsize=4)
def _tokens(text: str) -> tuple[tokenize.TokenInfo, ...]:
    """The file's tokens; cached because every kind of edit of one file needs them."""
    return tuple(tokenize.generate_tokens(io.StringIO(text).readline))


@functools.lru_cache(maxsize=4)
def _identifiers(text: str) -> frozenset[str]:
    return frozenset(t.string for t in _tokens(text) if t.type == tokenize.NAME)


# A few dozen plausible names; renames should read like a person's, not like noise.
_NAME_WORDS = (
    "value", "item", "result", "count", "total", "index", "entry", "node", "current", "data",
    "buffer", "parts", "text", "key", "label", "offset", "limit", "acc", "chunk", "record",
    "element", "target", "source", "position", "size", "width", "payload", "state", "pending",
    "matches", "token", "line", "field", "prefix", "suffix", "block", "output", "candidate",
)


_VERBS = ("get", "make", "build", "compute", "load", "create", "handle", "find", "check")


def _new_name(
    old: str, rng: random.Random, taken: frozenset[str], function: bool = False
) -> str | None:
    stem = old.strip("_")
    if function:
        words = stem.split("_")
        rest = "_".join(words[1:]) if len(words) > 1 and words[0] in _VERBS else stem
        options = [f"{v}_{rest}" for v in _VERBS] + [f"{stem}_impl", f"do_{stem}"]
    else:
        options = [w for w in _NAME_WORDS if w != stem]
        options += [f"{stem}_{w}" for w in ("value", "list", "count", "item")] if stem else []
        options += [f"{w}_{stem}" for w in ("new", "the", "cur")] if stem else []
    rng.shuffle(options)
    lead = "_" * (len(old) - len(old.lstrip("_")))
    for option in options:
        name = lead + option
        if name != old and name not in taken and is_valid_identifier(name):
            return name
    return None


# ------------------------------------------------------------------------------- the kinds


def _rename_local(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = split_lines(text)
    taken = _identifiers(text)
    for fn in _shuffled(functions(tree), rng):
        params = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
        body = fn.body
        nested = [n for stmt in body for n in ast.walk(stmt) if isinstance(n, _NESTED)]
        in_nested = {n.id for sc in nested for n in ast.walk(sc) if isinstance(n, ast.Name)}
        declared = {name for stmt in body for n in ast.walk(stmt)
                    if isinstance(n, ast.Global | ast.Nonlocal) for name in n.names}
        # Bound by an import, `except ... as`, or a match pattern: not a Name node to rename.
        declared |= {a.asname or a.name.split(".")[0] for stmt in body for n in ast.walk(stmt)
                     if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
        declared |= {n.name for stmt in body for n in ast.walk(stmt)
                     if isinstance(n, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and n.name}
        calls = {n.func.id for stmt in body for n in ast.walk(stmt)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        if calls & {"locals", "vars", "eval", "exec"}:
            continue
        names = [n for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.Name)]
        stored = sorted({n.id for n in names if isinstance(n.ctx, ast.Store)})
        choices = [s for s in stored if s not in params | in_nested | declared]
        if not choices:
            continue
        old = rng.choice(choices)
        new = _new_name(old, rng, taken)
        if new is None:
            continue
        spans = [
            (n.lineno, _char_col(lines, n.lineno, n.col_offset),
             _char_col(lines, n.lineno, n.end_col_offset or 0), new)
            for n in names if n.id == old
        ]
        after = _replace_spans(text, spans)
        instruction = f"Rename the local variable `{old}` to `{new}` in `{fn.name}`."
        meta = {"function": fn.name, "lineno": str(fn.lineno), "old": old, "new": new}
        yield RENAME_LOCAL, instruction, text, after, _function_region(fn), meta


_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _binds_or_names(node: ast.AST, old: str, fn: FunctionNode) -> bool:
    """Whether `node` uses `old` other than as a plain read of the function `fn`: a binding,
    a parameter, an attribute or keyword of that name, an import, another definition."""
    if isinstance(node, ast.Name):
        return node.id == old and not isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.arg | ast.keyword):
        return node.arg == old
    if isinstance(node, ast.Attribute):
        return node.attr == old
    if isinstance(node, ast.alias):
        return old in (node.name, node.asname)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == old and node is not fn
    if isinstance(node, ast.Global | ast.Nonlocal):
        return old in node.names
    return False


def _rename_function(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = split_lines(text)
    taken = _identifiers(text)
    top = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    defined_twice = {n.name for n in top if sum(m.name == n.name for m in top) > 1}
    for fn in _shuffled(top, rng):
        old = fn.name
        if old in defined_twice or old.startswith("__") or f"'{old}'" in text \
                or f'"{old}"' in text:
            continue  # named in a string (__all__, getattr): a rename would break it
        refs = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == old]
        if any(_binds_or_names(node, old, fn) for node in ast.walk(tree)):
            continue
        match = re.search(r"\bdef\s+(" + re.escape(old) + r")\b", lines[fn.lineno - 1])
        new = _new_name(old, rng, taken, function=True)
        if match is None or new is None:
            continue
        spans = [(fn.lineno, match.start(1), match.end(1), new)]
        spans += [
            (n.lineno, _char_col(lines, n.lineno, n.col_offset),
             _char_col(lines, n.lineno, n.end_col_offset or 0), new)
            for n in refs
        ]
        after = _replace_spans(text, spans)
        instruction = f"Rename the function `{old}` to `{new}` and update every use of it."
        meta = {"function": old, "lineno": str(fn.lineno), "old": old, "new": new}
        yield RENAME_FUNCTION, instruction, text, after, None, meta


def _own_lines(stmt: ast.stmt, lines: list[str]) -> bool:
    """Whether `stmt` has its lines to itself: only indentation before it, at most a comment
    after it (no `;` neighbours), so dropping its lines drops nothing else."""
    head = lines[stmt.lineno - 1].encode()[: stmt.col_offset]
    tail = lines[(stmt.end_lineno or stmt.lineno) - 1].encode()[stmt.end_col_offset or 0 :]
    return not head.strip() and (not tail.strip() or tail.strip().startswith(b"#"))


def _add_docstring(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = split_lines(text)
    for fn in _shuffled(functions(tree), rng):
        doc = docstring_stmt(fn)
        if doc is None or len(fn.body) < 2 or doc.lineno == fn.lineno or not _own_lines(doc, lines):
            continue
        start, end = _function_region(fn)
        region = lines[start:end]
        drop = range(doc.lineno - 1 - start, (doc.end_lineno or doc.lineno) - start)
        stripped = "".join(line for i, line in enumerate(region) if i not in drop)
        before = "".join(lines[:start]) + stripped + "".join(lines[end:])
        instruction = f"Add a docstring to `{fn.name}`."
        meta = {"function": fn.name, "lineno": str(fn.lineno)}
        region = (start, start + len(split_lines(stripped)))
        yield ADD_DOCSTRING, instruction, before, text, region, meta


STUB_BODIES = ("...", "pass", "raise NotImplementedError")


def _fill_body(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = split_lines(text)
    for fn in _shuffled(functions(tree), rng):
        body = fn.body[1:] if docstring_stmt(fn) else fn.body
        if not body:
            continue
        first, last = body[0], body[-1]
        body_lines = (last.end_lineno or last.lineno) - first.lineno + 1
        if first.lineno == fn.lineno or not 2 <= body_lines <= 40:
            continue
        if not _own_lines(first, lines) or not _own_lines(last, lines):
            continue
        indent = re.match(r"[ \t]*", lines[first.lineno - 1]).group(0)
        stub = rng.choice(STUB_BODIES)
        start, end = _function_region(fn)
        body_start, body_end = first.lineno - 1, last.end_lineno or last.lineno
        before = "".join(lines[:body_start]) + f"{indent}{stub}\n" + "".join(lines[body_end:])
        stub_end = end - (body_end - body_start) + 1
        instruction = f"Implement the body of `{fn.name}`."
        meta = {"function": fn.name, "lineno": str(fn.lineno), "stub": stub}
        yield FILL_BODY, instruction, before, text, (start, stub_end), meta


_COMPOUND = {"def", "if", "elif", "else", "for", "while", "with", "try", "except", "finally",
             "class"}
_MISSPELL = {"return": "retrun", "import": "improt", "while": "whiel", "lambda": "lamda",
             "yield": "yeild", "raise": "riase", "else": "esle", "elif": "elsif"}


def _syntax_mutations(text: str, start: int, end: int) -> list[tuple[str, tuple]]:
    """Candidate (description, span) mutations within lines [start, end] (1-based)."""
    tokens = [t for t in _tokens(text) if start <= t.start[0] <= end]
    found: list[tuple[str, tuple]] = []
    for i, tok in enumerate(tokens):
        row, col = tok.start
        if tok.type == tokenize.OP and tok.string == ":" and i + 1 < len(tokens) \
                and tokens[i + 1].type in (tokenize.NEWLINE, tokenize.COMMENT):
            line_tokens = [t for t in tokens if t.start[0] == row and t.type == tokenize.NAME]
            if line_tokens and line_tokens[0].string in _COMPOUND:
                found.append(("missing colon", (row, col, col + 1, "")))
        elif tok.type == tokenize.OP and tok.string in ")]}" and tok.start[0] == tok.end[0]:
            found.append((f"missing '{tok.string}'", (row, col, col + 1, "")))
        elif tok.type == tokenize.OP and tok.string in "([{":
            found.append((f"stray '{tok.string}'", (row, col, col + 1, "")))
        elif tok.type == tokenize.NAME and tok.string in _MISSPELL:
            found.append(("misspelt keyword", (row, col, tok.end[1], _MISSPELL[tok.string])))
        elif tok.type == tokenize.OP and tok.string == "==":
            found.append(("'=' for '=='", (row, col, col + 2, "=")))
    return found


def _fix_syntax(path: str, text: str, tree: ast.Module, rng: random.Random):
    for fn in _shuffled(functions(tree), rng):
        start, end = _function_region(fn)
        mutations = _syntax_mutations(text, start + 1, end)
        rng.shuffle(mutations)
        for _, span in mutations[:4]:
            before = _replace_spans(text, [span])
            err = syntax_error(before)
            if err is None:
                continue
            where = f" on line {err.lineno}" if err.lineno else ""
            stop = "" if err.msg.endswith((".", "?", "!")) else "."
            instruction = f"Fix the syntax error{where}: {err.msg}{stop}"
            meta = {"function": fn.name, "lineno": str(fn.lineno), "error": err.msg}
            yield FIX_SYNTAX, instruction, before, text, (start, end), meta
            break


def _typos(name: str, rng: random.Random) -> list[str]:
    out = set()
    for i in range(len(name)):
        out.add(name[:i] + name[i + 1 :])  # dropped letter
        out.add(name[:i] + name[i] + name[i:])  # doubled letter
        if i + 1 < len(name):
            out.add(name[:i] + name[i + 1] + name[i] + name[i + 2 :])  # swapped letters
    found = sorted(t for t in out if t != name and is_valid_identifier(t))
    rng.shuffle(found)
    return found


def _fix_name(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = split_lines(text)
    taken = _identifiers(text)
    for fn in _shuffled(functions(tree), rng):
        reads = [n for stmt in fn.body for n in ast.walk(stmt)
                 if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and len(n.id) >= 3]
        if not reads:
            continue
        node = rng.choice(reads)
        typo = next((t for t in _typos(node.id, rng) if t not in taken), None)
        if typo is None:
            continue
        span = (node.lineno, _char_col(lines, node.lineno, node.col_offset),
                _char_col(lines, node.lineno, node.end_col_offset or 0), typo)
        before = _replace_spans(text, [span])
        instruction = f"Fix the undefined name `{typo}` on line {node.lineno}."
        meta = {"function": fn.name, "lineno": str(fn.lineno), "typo": typo, "name": node.id}
        yield FIX_NAME, instruction, before, text, _function_region(fn), meta


_SPACED_OPS = {",", "=", "==", "!=", "+", "-", "*", "/", "<", ">", "<=", ">=", "+=", "-=",
               "->", "%", "//"}


def _reformat(path: str, text: str, tree: ast.Module, rng: random.Random):
    all_tokens = _tokens(text)
    for fn in _shuffled(functions(tree), rng):
        start, end = _function_region(fn)
        if end - start > 60:
            continue
        tokens = [t for t in all_tokens if start < t.start[0] <= end]
        spans = []
        for left, right in zip(tokens, tokens[1:], strict=False):
            same_line = left.end[0] == right.start[0]
            gap = right.start[1] - left.end[1] if same_line else -1
            if gap <= 0:
                continue
            # Only gaps beside an operator: removing one between two names would merge them.
            beside_op = any(t.type == tokenize.OP and t.string in _SPACED_OPS
                            for t in (left, right))
            if beside_op and rng.random() < 0.6:
                spans.append((left.end[0], left.end[1], right.start[1], ""))
        for tok in tokens:
            if tok.type == tokenize.NEWLINE and rng.random() < 0.15:
                spans.append((tok.start[0], tok.start[1], tok.start[1], "  "))
        if len(spans) < 2:
            continue
        before = _replace_spans(text, spans)
        instruction = f"Reformat `{fn.name}` to PEP 8 spacing; change nothing else."
        meta = {"function": fn.name, "lineno": str(fn.lineno)}
        yield REFORMAT, instruction, before, text, (start, end), meta


def _shuffled(items: Sequence, rng: random.Random) -> list:
    out = list(items)
    rng.shuffle(out)
    return out


MAKERS: dict[str, Callable] = {
    RENAME_LOCAL: _rename_local,
    RENAME_FUNCTION: _rename_function,
    ADD_DOCSTRING: _add_docstring,
    FILL_BODY: _fill_body,
    FIX_SYNTAX: _fix_syntax,
    FIX_NAME: _fix_name,
    REFORMAT: _reformat,
}
