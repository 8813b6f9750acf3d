"""The context manager: which parts of the workspace go into the model's window, and why.

Pure functions over plain data (no LSP, no files): tests call them directly.

Relevance of a workspace file to the file being edited combines four signals, each in [0, 1]:
  link        import links either way (Python by `ast`, other languages by their import
              syntax) and references from the edited region to names the file defines
  similarity  Jaccard similarity of identifier sets between the edited window and the
              file's best window (the neighbouring-tabs matcher of Copilot)
  recency     how recently the user opened or edited the file
  proximity   how close the two files are in the directory tree
Budgeting fills the prompt window in order of value: the region being edited (never cut),
its surroundings nearest first, then the best snippets of related files, counting every
piece with the model's real tokenizer and checking the final prompt, so the prompt never
exceeds its budget by even one token.
"""

from __future__ import annotations

import ast
import functools
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

WEIGHTS = {"link": 0.35, "similarity": 0.35, "recency": 0.15, "proximity": 0.15}
WINDOW_LINES = 40  # size of a candidate snippet window
WINDOW_STEP = 10
TARGET_WINDOW_LINES = 40  # lines around the region that stand for "what the user is doing"
SURROUNDING_SHARE = 0.6  # of the budget left after the region, first offered to surroundings
MAX_SNIPPETS = 8
MIN_SNIPPET_LINES = 3
MIN_SCORE = 0.05  # below this a file is noise, whatever room is left

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words every program uses: they make any two windows look alike.
_STOPWORDS = frozenset(
    (
        "and",
        "as",
        "assert",
        "async",
        "await",
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "def",
        "default",
        "del",
        "do",
        "elif",
        "else",
        "except",
        "export",
        "extends",
        "false",
        "finally",
        "fn",
        "for",
        "from",
        "func",
        "function",
        "if",
        "impl",
        "import",
        "in",
        "int",
        "is",
        "let",
        "match",
        "mod",
        "new",
        "none",
        "not",
        "null",
        "of",
        "or",
        "pass",
        "pub",
        "raise",
        "return",
        "self",
        "static",
        "str",
        "struct",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "type",
        "use",
        "var",
        "void",
        "while",
        "with",
        "yield",
    )
)


class TokenCounter(Protocol):
    """The model's tokenizer, or anything with its `encode`."""

    def encode(self, text: str) -> list[int]: ...


class ContextTooLarge(ValueError):
    """The region alone does not fit the budget; the message gives both sizes."""


@dataclass(frozen=True)
class SourceFile:
    """A workspace file as the context manager sees it: a relative POSIX path and its text."""

    path: str
    text: str


@dataclass(frozen=True)
class Target:
    """The file being edited and the region of it (lines [start, end)) the edit is about."""

    path: str
    text: str
    start_line: int
    end_line: int

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines(keepends=True)


@dataclass(frozen=True)
class FileScore:
    path: str
    score: float
    signals: dict[str, float]
    window: tuple[int, int]  # best snippet window, lines [start, end)


@dataclass(frozen=True)
class Snippet:
    path: str
    start_line: int
    end_line: int
    text: str
    score: float
    tokens: int


@dataclass(frozen=True)
class ContextPlan:
    target_path: str
    region: str
    region_lines: tuple[int, int]
    before: str
    after: str
    before_start: int  # first line of `before`
    after_end: int  # line after the last line of `after`
    snippets: tuple[Snippet, ...]
    ranking: tuple[FileScore, ...]
    budget: int
    token_counts: dict[str, int] = field(default_factory=dict)


# --- signals -----------------------------------------------------------------------------
def identifiers(text: str) -> frozenset[str]:
    return frozenset(w for w in _IDENT.findall(text) if w.lower() not in _STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@functools.lru_cache(maxsize=512)
def windows(
    text: str, size: int = WINDOW_LINES, step: int = WINDOW_STEP
) -> tuple[tuple[int, int, frozenset[str]], ...]:
    """A file's windows of `size` lines every `step` lines (the last one flush with the end),
    each with its identifier set; cached, since files are scored again at every request."""
    lines = text.splitlines(keepends=True)
    if len(lines) <= size:
        return ((0, len(lines), identifiers(text)),)
    starts = list(range(0, len(lines) - size + 1, step))
    if starts[-1] != len(lines) - size:
        starts.append(len(lines) - size)
    return tuple((s, s + size, identifiers("".join(lines[s : s + size]))) for s in starts)


def best_window(query: frozenset[str], text: str) -> tuple[float, tuple[int, int]]:
    """The window of `text` most similar to `query`; ties go to the earliest window."""
    best = (-1.0, (0, 0))
    for start, end, idents in windows(text):
        sim = jaccard(query, idents)
        if sim > best[0]:
            best = (sim, (start, end))
    return best


_JS_IMPORT = re.compile(
    r"""(?:import\s[^'"]*?from\s*|import\s*\(?\s*|require\s*\(\s*|export\s[^'"]*?from\s*)['"]([^'"]+)['"]"""
)
_C_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
_GO_IMPORT = re.compile(r'^\s*(?:import\s+)?(?:\w+\s+)?"([^"]+)"', re.M)
_RUST_USE = re.compile(
    r"^\s*(?:pub\s+)?(?:use\s+(?:crate|super|self)::([\w:]+)|mod\s+(\w+)\s*;)", re.M
)
_DEFINITION = re.compile(
    r"\b(?:def|class|function|fn|func|struct|enum|interface|trait|type|const|let|var)\s+([A-Za-z_]\w*)"
)


@functools.lru_cache(maxsize=512)
def _parse_python(text: str) -> ast.Module | None:
    """Parsed once per text: the same files are scored again at every request."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included, without descending into expressions (imports
    are statements, and expressions are most of a tree's nodes)."""
    for stmt in body:
        yield stmt
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(stmt, name, ()):
                if isinstance(child, ast.stmt):
                    yield from _statements([child])
                elif hasattr(child, "body"):  # except handlers, match cases
                    yield from _statements(child.body)


@functools.lru_cache(maxsize=512)
def _python_imports(path: str, text: str) -> frozenset[str]:
    """Candidate module paths (without suffix) imported by a Python file."""
    tree = _parse_python(text) if "import" in text else None
    if tree is None:
        return frozenset()
    here = posixpath.dirname(path)
    out: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            out.update(alias.name.replace(".", "/") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (node.module or "").replace(".", "/")
            if node.level:
                anchor = here
                for _ in range(node.level - 1):
                    anchor = posixpath.dirname(anchor)
                base = posixpath.join(anchor, base) if base else anchor
            if base:
                out.add(base)
            # `from pkg import mod` may name a module as well as a symbol.
            out.update(posixpath.join(base, alias.name) for alias in node.names if base)
    return frozenset(posixpath.normpath(p) for p in out)


def imports_of(path: str, text: str) -> set[str]:
    """Module paths a file imports, workspace-relative where the syntax is relative, and
    without file suffix, so they can be matched against workspace files."""
    if path.endswith((".py", ".pyi")):
        return set(_python_imports(path, text))
    here = posixpath.dirname(path)
    specs: list[str] = []
    if path.endswith((".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".vue", ".svelte")):
        specs = _JS_IMPORT.findall(text)
    elif path.endswith((".c", ".h", ".cc", ".cpp", ".hpp", ".cxx", ".hh")):
        specs = [s for s in _C_INCLUDE.findall(text)]
    elif path.endswith(".go"):
        specs = _GO_IMPORT.findall(text)
    elif path.endswith(".rs"):
        specs = [posixpath.join(here, (a or b).split("::")[0]) for a, b in _RUST_USE.findall(text)]
        return {posixpath.normpath(s) for s in specs}
    out = set()
    for spec in specs:
        if spec.startswith("."):
            spec = posixpath.join(here, spec)
        elif path.endswith((".c", ".h", ".cc", ".cpp", ".hpp", ".cxx", ".hh")):
            out.add(posixpath.normpath(posixpath.join(here, _strip_suffix(spec))))
        out.add(posixpath.normpath(_strip_suffix(spec)))
    return out


def _strip_suffix(path: str) -> str:
    root, ext = posixpath.splitext(path)
    return root if ext else path


def _module_keys(path: str) -> set[str]:
    """The names under which other files may import `path`."""
    stem = _strip_suffix(path)
    keys = {stem}
    if posixpath.basename(stem) in ("__init__", "index", "mod"):
        keys.add(posixpath.dirname(stem))
    return keys


def _imports_match(imported: set[str], path: str) -> bool:
    keys = _module_keys(path)
    # An absolute import names the module from some source root: match on path suffix.
    return any(key == imp or key.endswith("/" + imp) for imp in imported for key in keys)


def defined_names(path: str, text: str) -> frozenset[str]:
    """Top-level names a file defines (Python by `ast`, others by declaration keywords)."""
    if path.endswith((".py", ".pyi")):
        tree = _parse_python(text)
        if tree is None:
            return frozenset()
        names = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        return frozenset(names)
    return frozenset(_DEFINITION.findall(text))


def link_score(
    target: Target,
    candidate: SourceFile,
    query: frozenset[str],
    target_imports: set[str] | None = None,
) -> float:
    """1.0 when the target imports the candidate, 0.8 when the candidate imports the target;
    otherwise the share of the candidate's definitions the edited window uses (at most 0.6)."""
    if target_imports is None:
        target_imports = imports_of(target.path, target.text)
    if _imports_match(target_imports, candidate.path):
        return 1.0
    if _imports_match(imports_of(candidate.path, candidate.text), target.path):
        return 0.8
    names = defined_names(candidate.path, candidate.text) - _STOPWORDS
    if not names:
        return 0.0
    used = len(names & query)
    return min(0.6, 0.6 * used / min(len(names), 5))


def path_proximity(a: str, b: str) -> float:
    """1 for files in the same folder, halving with each folder step between them."""
    da = [p for p in posixpath.dirname(a).split("/") if p]
    db = [p for p in posixpath.dirname(b).split("/") if p]
    common = 0
    for x, y in zip(da, db, strict=False):
        if x != y:
            break
        common += 1
    steps = (len(da) - common) + (len(db) - common)
    return 0.5**steps


def recency_scores(recency: Mapping[str, int]) -> dict[str, float]:
    """Most recent touch -> 1.0, the next 0.5, then 1/3...: rank, not raw time, so a burst
    of events does not crowd out everything else."""
    ordered = sorted(recency.items(), key=lambda kv: (-kv[1], kv[0]))
    return {path: 1.0 / (rank + 1) for rank, (path, _) in enumerate(ordered)}


def target_query(target: Target) -> frozenset[str]:
    lines = target.lines
    pad = max(0, (TARGET_WINDOW_LINES - (target.end_line - target.start_line)) // 2)
    lo = max(0, target.start_line - pad)
    hi = min(len(lines), target.end_line + pad)
    return identifiers("".join(lines[lo:hi]))


def rank(
    target: Target, candidates: Sequence[SourceFile], recency: Mapping[str, int]
) -> list[FileScore]:
    """Every candidate (the target itself excluded), best first; ties broken by path."""
    query = target_query(target)
    target_imports = imports_of(target.path, target.text)
    recent = recency_scores({p: t for p, t in recency.items() if p != target.path})
    scores = []
    for cand in candidates:
        if cand.path == target.path:
            continue
        similarity, window = best_window(query, cand.text)
        signals = {
            "link": link_score(target, cand, query, target_imports),
            "similarity": similarity,
            "recency": recent.get(cand.path, 0.0),
            "proximity": path_proximity(target.path, cand.path),
        }
        score = sum(WEIGHTS[k] * v for k, v in signals.items())
        scores.append(
            FileScore(
                cand.path, round(score, 6), {k: round(v, 4) for k, v in signals.items()}, window
            )
        )
    scores.sort(key=lambda s: (-s.score, s.path))
    return scores


# --- budgeting ---------------------------------------------------------------------------
def count(counter: TokenCounter, text: str) -> int:
    return len(counter.encode(text)) if text else 0


def snippet_header(path: str, start: int, end: int) -> str:
    return f"# {path} (lines {start + 1}-{end})\n"


def _take_surroundings(
    lines: list[str],
    start: int,
    end: int,
    counter: TokenCounter,
    allowance: int,
    lo: int | None = None,
    hi: int | None = None,
) -> tuple[int, int, int]:
    """Grow [lo, hi) around [start, end) one line at a time, nearest line first, alternating
    above and below, while the lines' token counts fit `allowance`. Returns (lo, hi, used)."""
    lo = start if lo is None else lo
    hi = end if hi is None else hi
    used = 0
    above_blocked = below_blocked = False
    while not (above_blocked and below_blocked):
        for side in ("above", "below"):
            if side == "above" and not above_blocked:
                if lo == 0:
                    above_blocked = True
                    continue
                cost = count(counter, lines[lo - 1])
                if used + cost > allowance:
                    above_blocked = True
                    continue
                lo, used = lo - 1, used + cost
            elif side == "below" and not below_blocked:
                if hi >= len(lines):
                    below_blocked = True
                    continue
                cost = count(counter, lines[hi])
                if used + cost > allowance:
                    below_blocked = True
                    continue
                hi, used = hi + 1, used + cost
    return lo, hi, used


def _snippet(
    cand: SourceFile, score: FileScore, counter: TokenCounter, room: int
) -> Snippet | None:
    """The candidate's best window, cut from the end until it fits `room` tokens."""
    lines = cand.text.splitlines(keepends=True)
    start, end = score.window
    # Short files go in whole or not at all; longer ones may be cut to MIN_SNIPPET_LINES.
    shortest = min(MIN_SNIPPET_LINES, end - start)
    while end - start >= max(1, shortest):
        body = "".join(lines[start:end])
        if not body.endswith("\n"):
            body += "\n"
        tokens = count(counter, snippet_header(cand.path, start, end) + body)
        if tokens <= room:
            return Snippet(cand.path, start, end, body, score.score, tokens)
        # Cut proportionally first (fast), then line by line near the limit.
        over = tokens - room
        per_line = max(1, tokens // max(1, end - start))
        end -= max(1, min(over // per_line, (end - start) // 2))
    return None


def build(
    target: Target,
    candidates: Sequence[SourceFile],
    recency: Mapping[str, int],
    counter: TokenCounter,
    budget: int,
) -> ContextPlan:
    """Fill `budget` tokens of context: region, then surroundings, then related snippets.

    `budget` is what the context may use, the prompt template's own tokens and the
    generation reserve already taken out by the caller (see `fit`).
    """
    lines = target.lines
    start, end = target.start_line, target.end_line
    if not (0 <= start <= end <= max(len(lines), start)):
        raise ValueError(f"region lines [{start}, {end}) outside a {len(lines)}-line file")
    region = "".join(lines[start:end])
    region_tokens = count(counter, region)
    if region_tokens > budget:
        raise ContextTooLarge(
            f"the selected region is {region_tokens} tokens and the context budget is {budget}:"
            " select less, or raise contextBudget / lower maxNewTokens"
        )
    left = budget - region_tokens
    lo, hi, used = _take_surroundings(lines, start, end, counter, int(left * SURROUNDING_SHARE))
    left -= used

    ranking = rank(target, candidates, recency)
    by_path = {c.path: c for c in candidates}
    snippets: list[Snippet] = []
    for score in ranking:
        if len(snippets) >= MAX_SNIPPETS or score.score < MIN_SCORE:
            break
        snippet = _snippet(by_path[score.path], score, counter, left)
        if snippet is not None:
            snippets.append(snippet)
            left -= snippet.tokens
    # Whatever the snippets left over goes back to the surroundings.
    lo, hi, more = _take_surroundings(lines, start, end, counter, left, lo, hi)
    used += more

    return ContextPlan(
        target_path=target.path,
        region=region,
        region_lines=(start, end),
        before="".join(lines[lo:start]),
        after="".join(lines[end:hi]),
        before_start=lo,
        after_end=hi,
        snippets=tuple(snippets),
        ranking=tuple(ranking),
        budget=budget,
        token_counts={
            "region": region_tokens,
            "surroundings": used,
            "snippets": sum(s.tokens for s in snippets),
        },
    )


def _shrink(plan: ContextPlan) -> ContextPlan | None:
    """One step smaller: drop the last snippet, else the farthest surrounding line."""
    if plan.snippets:
        return replace(plan, snippets=plan.snippets[:-1])
    before = plan.before.splitlines(keepends=True)
    after = plan.after.splitlines(keepends=True)
    if not before and not after:
        return None
    if len(before) >= len(after):
        return replace(plan, before="".join(before[1:]), before_start=plan.before_start + 1)
    return replace(plan, after="".join(after[:-1]), after_end=plan.after_end - 1)


def fit(
    target: Target,
    candidates: Sequence[SourceFile],
    recency: Mapping[str, int],
    counter: TokenCounter,
    limit: int,
    render: Callable[[ContextPlan], str],
) -> tuple[ContextPlan, str, int]:
    """Build a plan whose rendered prompt is at most `limit` tokens, counted on the whole
    prompt (pieces can tokenize differently once joined). Returns (plan, prompt, tokens)."""
    empty = ContextPlan(
        target.path, "", (target.start_line, target.start_line), "", "", 0, 0, (), (), 0
    )
    overhead = count(counter, render(empty))
    plan = build(target, candidates, recency, counter, max(0, limit - overhead))
    plan = replace(plan, budget=limit)
    while True:
        prompt = render(plan)
        tokens = count(counter, prompt)
        if tokens <= limit:
            counts = {
                **plan.token_counts,
                "surroundings": count(counter, plan.before) + count(counter, plan.after),
                "snippets": sum(s.tokens for s in plan.snippets),
            }
            return replace(plan, token_counts=counts), prompt, tokens
        smaller = _shrink(plan)
        if smaller is None:
            raise ContextTooLarge(
                f"the prompt is {tokens} tokens with no context left to drop; the limit is {limit}"
            )
        plan = smaller


def explain(plan: ContextPlan, prompt_tokens: int | None = None) -> dict[str, object]:
    """What went into the window and why: JSON-ready, for `cromwell.explainContext`."""
    chosen = {s.path: s for s in plan.snippets}
    return {
        "target": plan.target_path,
        "budget": plan.budget,
        "promptTokens": prompt_tokens,
        "region": {"lines": list(plan.region_lines), "tokens": plan.token_counts.get("region", 0)},
        "surroundings": {
            "lines": [plan.before_start, plan.after_end],
            "tokens": plan.token_counts.get("surroundings", 0),
        },
        "files": [
            {
                "path": s.path,
                "score": s.score,
                "signals": s.signals,
                "chosen": s.path in chosen,
                "lines": [chosen[s.path].start_line, chosen[s.path].end_line]
                if s.path in chosen
                else None,
                "tokens": chosen[s.path].tokens if s.path in chosen else 0,
            }
            for s in plan.ranking
        ],
    }
