"""Model output -> unified diff -> validated TextEdits.

The model answers with a rewritten region (usually inside a ``` fence, sometimes with prose
around it) or with a unified diff. Either way the result becomes a unified diff made by
difflib, parsed back with `unidiff` and applied hunk by hunk to the exact document text it
was computed on: a hunk whose context does not match is refused, never guessed. Whether the
new text parses is the pipeline's check (`domain.check_parses`, which every door's answer
passes through), made with `parse_error` here. Only then is it turned into `TextEdit`s, with
positions in the client's units (UTF-16 by default) through pygls's codec.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import unidiff
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition
from unidiff.constants import LINE_TYPE_NO_NEWLINE


class PatchError(ValueError):
    """The model's answer cannot become a safe edit; the message says why."""


class StaleDocument(PatchError):
    """The document changed since the edit was computed."""


_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n", re.M)
_DIFF_HEADER = re.compile(r"^--- .*\n\+\+\+ .*\n@@ ", re.M)


def extract_code(output: str) -> str:
    """The code in a model answer.

    A fenced block wins (the longest, when there are several; an unterminated fence, as when
    generation hit its token limit, runs to the end). Without a fence, leading prose lines
    ending in ':' ("Here is the code:") and trailing chatter after a blank line are dropped
    only when what remains still looks like the start of code.
    """
    blocks = []
    pos = 0
    while (m := _FENCE.search(output, pos)) is not None:
        fence = m.group(1)
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        end = close.search(output, m.end())
        body = output[m.end() : end.start() if end else len(output)]
        blocks.append(body)
        pos = end.end() if end else len(output)
    if blocks:
        return max(blocks, key=len)
    lines = output.splitlines(keepends=True)
    while lines and (not lines[0].strip() or _is_prose_intro(lines[0])):
        lines.pop(0)
    return "".join(lines)


def _is_prose_intro(line: str) -> bool:
    text = line.strip()
    return text.endswith(":") and " " in text and not text.startswith(("def ", "class ", "#"))


def _indent_of_first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return None


def match_indent(code: str, region: str) -> str:
    """Shift `code` right when the model wrote it flush left (as models often do with a
    method taken out of its class) but the region it replaces is indented."""
    want, have = _indent_of_first_line(region), _indent_of_first_line(code)
    if want is None or have is None or len(have) >= len(want) or not want.startswith(have):
        return code
    pad = want[len(have) :]
    return "".join(pad + line if line.strip() else line for line in code.splitlines(keepends=True))


def looks_like_diff(output: str) -> bool:
    return _DIFF_HEADER.search(output) is not None


def replace_lines(text: str, start_line: int, end_line: int, new_region: str) -> str:
    """`text` with lines [start_line, end_line) replaced by `new_region`, which keeps the
    region's final newline convention."""
    lines = text.splitlines(keepends=True)
    old_region = "".join(lines[start_line:end_line])
    if old_region.endswith("\n") and new_region and not new_region.endswith("\n"):
        new_region += "\n"
    return "".join(lines[:start_line]) + new_region + "".join(lines[end_line:])


def unified_diff(old: str, new: str, path: str, context: int = 3) -> str:
    """difflib's unified diff of two texts, with git's `a/` `b/` names and the
    "\\ No newline at end of file" marker so that it round-trips through any patch tool."""
    out: list[str] = []
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    for line in difflib.unified_diff(old_lines, new_lines, f"a/{path}", f"b/{path}", n=context):
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)


def apply_diff(old: str, diff: str) -> str:
    """Apply a one-file unified diff to `old`, refusing any hunk whose context or removed
    lines differ from the text (no fuzz: the diff must describe exactly this text)."""
    try:
        patch = unidiff.PatchSet(diff)
    except unidiff.UnidiffParseError as exc:
        raise PatchError(f"not a valid unified diff: {exc}") from exc
    if len(patch) != 1:
        raise PatchError(f"expected a diff of one file, got {len(patch)}")
    old_lines = old.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0
    for hunk in patch[0]:
        start = hunk.source_start - 1 if hunk.source_length else hunk.source_start
        if start < cursor:
            raise PatchError(f"hunk at line {hunk.source_start} overlaps the previous one")
        out.extend(old_lines[cursor:start])
        cursor = start
        previous = None
        for line in hunk:
            if line.line_type == LINE_TYPE_NO_NEWLINE:
                # The marker belongs to the line before it: strip that line's newline in
                # the new text when the line is in it (added or context).
                if previous is not None and not previous.is_removed and out:
                    out[-1] = out[-1].rstrip("\r\n")
                continue
            previous = line
            if line.is_added:
                out.append(line.value)
                continue
            if cursor >= len(old_lines) or not _same_line(old_lines[cursor], line.value):
                found = old_lines[cursor] if cursor < len(old_lines) else "<end of file>"
                raise StaleDocument(
                    f"line {cursor + 1} reads {found.rstrip()!r}, the diff expects"
                    f" {line.value.rstrip()!r}"
                )
            if line.is_context:
                out.append(old_lines[cursor])
            cursor += 1
    out.extend(old_lines[cursor:])
    return "".join(out)


def _same_line(a: str, b: str) -> bool:
    # unidiff keeps "\n" on every value; the file's last line may have none.
    return a.rstrip("\r\n") == b.rstrip("\r\n")


_PARSERS = {
    "python": lambda text: ast.parse(text),
    "json": lambda text: json.loads(text),
    "toml": lambda text: tomllib.loads(text),
}


def language_of(path: str) -> str | None:
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return {"py": "python", "pyi": "python", "json": "json", "toml": "toml"}.get(suffix)


def parse_error(language: str | None, text: str) -> str | None:
    """Why `text` does not parse as `language`, or None (also for languages we cannot parse)."""
    parser = _PARSERS.get(language or "")
    if parser is None:
        return None
    try:
        parser(text)
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:
        return str(exc)
    return None


# Lines that continue the top-level statement above them rather than start one.
_CONTINUES = ("else", "elif", "except", "finally", "case", ")", "]", "}")


def _top_level_block(lines: list[str], lo: int, hi: int) -> tuple[int, int]:
    """Lines [lo, hi) widened to the whole top-level statements they touch (with the
    decorators above a definition)."""

    def starts_statement(line: str) -> bool:
        return bool(line.strip()) and not line[0].isspace() and not line.startswith("#") \
            and not line.startswith(_CONTINUES)

    while lo > 0 and not starts_statement(lines[lo]):
        lo -= 1
    while lo > 0 and lines[lo - 1].startswith("@"):
        lo -= 1
    hi = max(hi, lo + 1)
    while hi < len(lines) and not starts_statement(lines[hi]):
        hi += 1
    return lo, hi


def edit_parse_error(language: str | None, old: str, new: str) -> str | None:
    """Why the edit of `old` into `new` leaves code that does not parse, or None.

    The file must parse after the edit; where it did not parse before, the edit is not held
    to the whole file but to its own top-level statements: for Python, an error in another
    function that the edit did not touch (a half-typed line further down) does not block an
    edit of this one, while everything the edit wrote, and the rest of any top-level
    statement it wrote into, must parse on its own. Formats read as one document (JSON,
    TOML) must parse whole."""
    err = parse_error(language, new)
    if err is None or language != "python" or old == "" or parse_error(language, old) is None:
        return err
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    changed = [
        (j1, j2)
        for tag, _i1, _i2, j1, j2 in difflib.SequenceMatcher(
            None, old_lines, new_lines, autojunk=False
        ).get_opcodes()
        if tag != "equal"
    ]
    if not changed or not new_lines:
        return err
    lo, hi = _top_level_block(
        new_lines, min(j1 for j1, _ in changed), min(len(new_lines), max(j2 for _, j2 in changed))
    )
    return err if parse_error(language, "".join(new_lines[lo:hi])) is not None else None


@dataclass(frozen=True)
class Patch:
    """A checked edit of one document version: its diff and the text it leads to."""

    path: str
    version: int | None
    old: str
    new: str
    diff: str


def make_patch(
    path: str, version: int | None, old: str, new: str, current_version: int | None
) -> Patch:
    """Validate `new` as the edit of `old` (document `version`), for a document that is now
    at `current_version`. Raises StaleDocument or PatchError; never adjusts anything."""
    if version is not None and current_version is not None and version != current_version:
        raise StaleDocument(
            f"the document changed (version {version} -> {current_version}) while the edit"
            " was computed: ask again"
        )
    if new == old:
        raise PatchError("the model proposed no change")
    diff = unified_diff(old, new, path)
    if apply_diff(old, diff) != new:  # the round trip through unidiff must be exact
        raise PatchError("the diff does not reproduce the new text")
    return Patch(path, version, old, new, diff)


def from_model_output(
    path: str,
    version: int | None,
    old: str,
    region: tuple[int, int],
    output: str,
    current_version: int | None,
) -> Patch:
    """A checked patch from a model answer: a unified diff of the file, or the rewritten
    region (lines [start, end))."""
    if looks_like_diff(output):
        start = _DIFF_HEADER.search(output).start()  # type: ignore[union-attr]
        diff_text = output[start:]
        fence_end = re.search(r"^[ \t]*(`{3,}|~{3,})[ \t]*$", diff_text, re.M)
        if fence_end:
            diff_text = diff_text[: fence_end.start()]
        new = apply_diff(old, diff_text)
    else:
        code = extract_code(output)
        if not code.strip():
            raise PatchError("the model's answer contains no code")
        old_region = "".join(old.splitlines(keepends=True)[region[0] : region[1]])
        new = replace_lines(old, region[0], region[1], match_indent(code, old_region))
    return make_patch(path, version, old, new, current_version)


def text_edits(old: str, new: str, codec: PositionCodec | None = None) -> list[types.TextEdit]:
    """Minimal TextEdits turning `old` into `new`: one per run of changed lines, narrowed to
    the characters that differ, with positions in the codec's units (UTF-16 by default)."""
    codec = codec or PositionCodec()
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed = "".join(old_lines[i1:i2])
        added = "".join(new_lines[j1:j2])
        prefix = _common_prefix(removed, added)
        suffix = _common_prefix(removed[prefix:][::-1], added[prefix:][::-1])
        start = _position(old_lines, i1, removed[:prefix])
        end = _position(old_lines, i1, removed[: len(removed) - suffix])
        edits.append(
            types.TextEdit(
                range=types.Range(
                    start=codec.position_to_client_units(old_lines, start),
                    end=codec.position_to_client_units(old_lines, end),
                ),
                new_text=added[prefix : len(added) - suffix],
            )
        )
    return edits


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _position(lines: list[str], first_line: int, consumed: str) -> ServerTextPosition:
    """The code-point position reached after `consumed` text starting at `first_line`."""
    breaks = consumed.count("\n")
    line = first_line + breaks
    column = len(consumed) - (consumed.rfind("\n") + 1) if breaks else len(consumed)
    return ServerTextPosition(line=line, character=column)


def apply_text_edits(
    text: str, edits: list[types.TextEdit], codec: PositionCodec | None = None
) -> str:
    """Apply TextEdits (client units) the way an editor does: used by tests and by the demo
    to show the result without touching any file."""
    codec = codec or PositionCodec()
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        if pos.line >= len(lines):
            return len(text)
        server = codec.position_from_client_units(lines, types.Position(pos.line, pos.character))
        return sum(len(x) for x in lines[: server.line]) + server.character

    spans = sorted(
        ((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True
    )
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text


def atomic_write(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace a file's content all at once (temporary file in the same folder, then
    rename), keeping its permissions: a crash leaves the old file or the new, never half.
    For the command line and HTTP doors; the language server never writes files."""
    path = Path(path)
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_edits(patch: Patch, codec: PositionCodec | None = None) -> list[types.TextEdit]:
    """The checked patch as TextEdits (the domain call every front door uses)."""
    return text_edits(patch.old, patch.new, codec)


def complete_lines(language: str | None, build: Callable[[str], str], code: str) -> str:
    """The longest head of `code` (whole lines) for which `build(head)` still parses.

    A continuation cut off at the token limit ends mid-statement; rather than refuse the
    whole edit, its unfinished last line(s) are dropped until the file parses again (an
    open `if x:` without its body goes too). Returns "" when no line survives."""
    lines = code.splitlines(keepends=True)
    while lines:
        head = "".join(lines)
        if parse_error(language, build(head)) is None:
            return head
        lines.pop()
    return ""
