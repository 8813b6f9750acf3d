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
examples that pass it. `to_prompt` formats an example with the seed's markers (see there).
"""

from __future__ import annotations

import ast
import copy
import functools
import io
import random
import re
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from .pycheck import (
    FunctionNode,
    first_line,
    function_spanning,
    functions,
    is_valid_identifier,
    parse_or_none,
    syntax_error,
    undefined_names,
)

RENAME_LOCAL = "rename_local"
RENAME_FUNCTION = "rename_function"
ADD_DOCSTRING = "add_docstring"
FILL_BODY = "fill_body"
FIX_SYNTAX = "fix_syntax"
FIX_NAME = "fix_name"
REFORMAT = "reformat"
COMMIT = "commit"
SYNTHETIC_KINDS = (
    RENAME_LOCAL, RENAME_FUNCTION, ADD_DOCSTRING, FILL_BODY, FIX_SYNTAX, FIX_NAME, REFORMAT,
)
MAX_REGION_LINES = 80  # regions longer than this do not fit a 4096-token prompt with context


class EditVerificationError(ValueError):
    """An example whose texts do not show the change its kind and instruction claim."""


@dataclass(frozen=True)
class EditExample:
    kind: str
    path: str
    instruction: str
    prefix: str
    region_before: str
    region_after: str
    suffix: str
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def before(self) -> str:
        return self.prefix + self.region_before + self.suffix

    @property
    def after(self) -> str:
        return self.prefix + self.region_after + self.suffix


# ---------------------------------------------------------------------------------- regions


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _cut(text: str, start: int, end: int) -> tuple[str, str, str]:
    """(prefix, region, suffix) for 0-based lines [start, end)."""
    lines = _lines(text)
    return "".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])


def example_from_texts(
    kind: str,
    path: str,
    instruction: str,
    before: str,
    after: str,
    region: tuple[int, int] | None = None,
    meta: Mapping[str, str] | None = None,
) -> EditExample:
    """An example whose region is `region` (0-based lines of `before`) or, when None, the
    smallest run of whole lines outside of which `before` and `after` agree."""
    b, a = _lines(before), _lines(after)
    if region is None:
        start = 0
        while start < min(len(a), len(b)) and a[start] == b[start]:
            start += 1
        tail = 0
        while tail < min(len(a), len(b)) - start and a[-1 - tail] == b[-1 - tail]:
            tail += 1
        region = (start, len(b) - tail)
        if start == len(b) - tail and b:
            # A pure insertion: anchor it on a neighbouring line, so that the region to
            # rewrite is never empty when the file is not.
            region = (start, start + 1) if tail else (start - 1, start)
    start, end = region
    tail = len(b) - end
    if b[:start] != a[:start] or b[end:] != a[len(a) - tail :] or len(a) < start + tail:
        raise EditVerificationError(f"{path}: before and after differ outside lines {region}")
    return EditExample(
        kind=kind,
        path=path,
        instruction=instruction,
        prefix="".join(b[:start]),
        region_before="".join(b[start:end]),
        region_after="".join(a[start : len(a) - tail]),
        suffix="".join(b[end:]),
        meta=dict(meta or {}),
    )


def _function_region(node: FunctionNode) -> tuple[int, int]:
    return first_line(node) - 1, node.end_lineno or node.lineno


# ---------------------------------------------------------------------------- token editing


def _replace_spans(text: str, spans: Sequence[tuple[int, int, int, str]]) -> str:
    """Replace (line 1-based, start col, end col, new text) spans; cols are str offsets."""
    lines = _lines(text)
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


def _rename_nodes(nodes: Sequence[ast.AST], old: str, new: str) -> None:
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id == old:
                sub.id = new


# ------------------------------------------------------------------------------- the kinds


def _rename_local(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = _lines(text)
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
    lines = _lines(text)
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


def _docstring_stmt(fn: FunctionNode) -> ast.Expr | None:
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        return first
    return None


def _own_lines(stmt: ast.stmt, lines: list[str]) -> bool:
    """Whether `stmt` has its lines to itself: only indentation before it, at most a comment
    after it (no `;` neighbours), so dropping its lines drops nothing else."""
    head = lines[stmt.lineno - 1].encode()[: stmt.col_offset]
    tail = lines[(stmt.end_lineno or stmt.lineno) - 1].encode()[stmt.end_col_offset or 0 :]
    return not head.strip() and (not tail.strip() or tail.strip().startswith(b"#"))


def _add_docstring(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = _lines(text)
    for fn in _shuffled(functions(tree), rng):
        doc = _docstring_stmt(fn)
        if doc is None or len(fn.body) < 2 or doc.lineno == fn.lineno or not _own_lines(doc, lines):
            continue
        start, end = _function_region(fn)
        region = lines[start:end]
        drop = range(doc.lineno - 1 - start, (doc.end_lineno or doc.lineno) - start)
        stripped = "".join(line for i, line in enumerate(region) if i not in drop)
        before = "".join(lines[:start]) + stripped + "".join(lines[end:])
        instruction = f"Add a docstring to `{fn.name}`."
        meta = {"function": fn.name, "lineno": str(fn.lineno)}
        yield ADD_DOCSTRING, instruction, before, text, (start, start + len(_lines(stripped))), meta


STUB_BODIES = ("...", "pass", "raise NotImplementedError")


def _fill_body(path: str, text: str, tree: ast.Module, rng: random.Random):
    lines = _lines(text)
    for fn in _shuffled(functions(tree), rng):
        body = fn.body[1:] if _docstring_stmt(fn) else fn.body
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
    lines = _lines(text)
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


_MAKERS: dict[str, Callable] = {
    RENAME_LOCAL: _rename_local,
    RENAME_FUNCTION: _rename_function,
    ADD_DOCSTRING: _add_docstring,
    FILL_BODY: _fill_body,
    FIX_SYNTAX: _fix_syntax,
    FIX_NAME: _fix_name,
    REFORMAT: _reformat,
}


# ---------------------------------------------------------------------------- verification


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
    if example.kind not in _MAKERS:
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
        _rename_nodes(fn_before.body, old, new)
        if ast.dump(fn_before) != ast.dump(fn_after):
            _fail(example, f"'after' is not 'before' with {old!r} renamed to {new!r}")
        if any(isinstance(n, ast.Name) and n.id == old for n in ast.walk(fn_after)):
            _fail(example, f"{old!r} is still used in the function")
        return
    _rename_nodes([before], old, new)
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
    if _docstring_stmt(fn_before) is not None:
        _fail(example, "'before' already has a docstring")
    if _docstring_stmt(fn_after) is None:
        _fail(example, "'after' has no docstring on the function")
    without = copy.copy(fn_after)
    without.body = fn_after.body[1:]
    if ast.dump(fn_before) != ast.dump(without):
        _fail(example, "'after' differs from 'before' by more than the docstring")


def _verify_fill(example: EditExample, before: ast.Module, after: ast.Module) -> None:
    fn_before = _region_function(example, before, example.region_before)
    fn_after = _region_function(example, after, example.region_after)
    stub = ast.dump(ast.parse(example.meta["stub"]).body[0])
    doc_before, doc_after = _docstring_stmt(fn_before), _docstring_stmt(fn_after)
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
    _rename_nodes([fn_before], typo, name)
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
    unknown = [k for k in kinds if k not in _MAKERS]
    if unknown:
        raise ValueError(f"unknown edit kinds {unknown}; known: {sorted(_MAKERS)}")
    tree = parse_or_none(text)
    if tree is None or "\t" in text or "\r" in text or "\f" in text:
        return []  # tabs, CRs and form feeds make token columns and regions ambiguous
    out: list[EditExample] = []
    for kind in kinds:
        made = 0
        for _, candidate in zip(range(max_tries), _MAKERS[kind](path, text, tree, rng),
                                strict=False):
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


# --------------------------------------------------------------------------------- prompts

DEFAULT_MARKERS: Mapping[str, str] = {
    "file": "<FILE>",
    "edit": "<EDIT>",
    "edit_end": "</EDIT>",
    "diff": "<DIFF>",
}


@dataclass(frozen=True)
class Prompt:
    prompt: str
    target: str


def to_prompt(
    example: EditExample,
    markers: Mapping[str, str] = DEFAULT_MARKERS,
    context_lines: int = 60,
) -> Prompt:
    """The example as the model sees it, and what the model should write.

    Format (markers named by their keys in `markers`)::

        {file}{path}\\n
        {up to context_lines lines before the region}{edit}{region_before}{edit_end}{up to
        context_lines lines after the region}\\n          (newline only if not already there)
        {diff}{instruction}\\n

    The target is `{region_after}{edit_end}`: the rewritten region, then the end marker that
    says the edit is complete. The region is whole lines, so `{edit}` and `{edit_end}` sit at
    line starts and the rewritten region can be spliced back by lines.
    """
    missing = [k for k in ("file", "edit", "edit_end", "diff") if k not in markers]
    if missing:
        raise ValueError(f"markers lack {missing}; give all of file, edit, edit_end, diff")
    if context_lines < 0:
        raise ValueError(f"context_lines must be >= 0, got {context_lines}")
    before = _lines(example.prefix)[-context_lines:] if context_lines else []
    after = _lines(example.suffix)[:context_lines]
    body = (
        "".join(before) + markers["edit"] + example.region_before + markers["edit_end"]
        + "".join(after)
    )
    if not body.endswith("\n"):
        body += "\n"
    prompt = f"{markers['file']}{example.path}\n{body}{markers['diff']}{example.instruction}\n"
    return Prompt(prompt=prompt, target=example.region_after + markers["edit_end"])
