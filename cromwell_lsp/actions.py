"""The code actions Cromwell offers: which apply where, their titles and kinds, and the
region of the document each one rewrites. Pure: no model, no LSP transport.

Listing is instant (no model call): an action carries an `ActionRequest` in its `data` (and
in its command's arguments, for clients without `codeAction/resolve`); the edit itself is
computed when the client resolves or executes it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from lsprotocol import types

from .settings import ACTION_IDS, Settings

COMMAND_RUN = "cromwell.runAction"
COMMAND_EDIT_SELECTION = "cromwell.editSelection"
COMMAND_EXPLAIN = "cromwell.explainContext"
COMMAND_GHOST_STATS = "cromwell.ghostStats"  # ghost text's counts this session (benchmarks)
COMMANDS = (COMMAND_RUN, COMMAND_EDIT_SELECTION, COMMAND_EXPLAIN, COMMAND_GHOST_STATS)

KINDS = {
    "editSelection": types.CodeActionKind.RefactorRewrite,
    "fix": types.CodeActionKind.QuickFix,
    "completeBody": types.CodeActionKind.RefactorRewrite,
    "addDocstring": types.CodeActionKind.RefactorRewrite,
    "fromScreenshot": types.CodeActionKind.Refactor,
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
MAX_WORKSPACE_IMAGES = 3
_IMAGE_TOKEN = re.compile(r"[\w./\\~-]+\.(?:png|jpe?g|gif|webp|bmp)\b", re.I)
_SIGNATURE = re.compile(r"\b(def|function|fn|func|class|struct|impl)\b|=>|\)\s*\{?\s*$")


class BadRequest(ValueError):
    """Malformed action arguments; the message names the field."""


@dataclass(frozen=True)
class ActionRequest:
    """Everything needed to compute an action later, as JSON-safe fields. Lines are
    0-based; `start_line`..`end_line` is the region the edit may rewrite (end exclusive)."""

    action: str
    uri: str
    version: int | None
    start_line: int
    end_line: int
    instruction: str | None = None
    image: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> ActionRequest:
        """Validate untrusted JSON (a client may send anything back)."""
        if not isinstance(data, Mapping):
            raise BadRequest(f"action data must be an object, got {type(data).__name__}")
        action = data.get("action")
        if action not in ACTION_IDS:
            raise BadRequest(f"action must be one of {', '.join(ACTION_IDS)}, got {action!r}")
        uri = data.get("uri")
        if not isinstance(uri, str) or not uri:
            raise BadRequest(f"uri must be a document URI, got {uri!r}")
        fields: dict[str, Any] = {"action": action, "uri": uri}
        for key in ("start_line", "end_line"):
            value = data.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BadRequest(f"{key} must be a non-negative integer, got {value!r}")
            fields[key] = value
        if fields["end_line"] < fields["start_line"]:
            raise BadRequest("end_line is before start_line")
        version = data.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise BadRequest(f"version must be an integer or null, got {version!r}")
        fields["version"] = version
        for key in ("instruction", "image"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{key} must be a string, got {type(value).__name__}")
            fields[key] = value
        unknown = set(data) - set(fields)
        if unknown:
            raise BadRequest(f"unknown fields {sorted(unknown)}")
        return cls(**fields)


@dataclass(frozen=True)
class OfferedAction:
    title: str
    kind: str
    request: ActionRequest
    diagnostic: types.Diagnostic | None = None


def enclosing_definition(text: str, line: int) -> ast.AST | None:
    """The innermost Python function or class whose lines contain `line` (0-based)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            end = node.end_lineno or node.lineno
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if first - 1 <= line <= end - 1 and (best is None or node.lineno >= best.lineno):
                best = node
    return best


def _region_of(node: ast.AST) -> tuple[int, int]:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first - 1, node.end_lineno or node.lineno  # type: ignore[attr-defined]


def body_is_empty(node: ast.AST) -> bool:
    """Whether a definition's body is only `pass`, `...` or a docstring (a stub to fill)."""
    body = [
        s
        for s in node.body  # type: ignore[attr-defined]
        if not (
            isinstance(s, ast.Expr)
            and isinstance(s.value, ast.Constant)
            and isinstance(s.value.value, str)
        )
    ]
    if not body:
        return True
    if len(body) != 1:
        return False
    stmt = body[0]
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return stmt.value.value is Ellipsis
    if isinstance(stmt, ast.Raise) and stmt.exc is not None:
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def image_under_cursor(line_text: str, character: int) -> str | None:
    """An image path written on the line, when the cursor (code points) lies on it."""
    for m in _IMAGE_TOKEN.finditer(line_text):
        if m.start() <= character <= m.end():
            return m.group(0)
    return None


def screenshot_target(image: str, language_suffix: str, taken: set[str]) -> str:
    """Where the generated file goes: beside the image, named after it, never over an
    existing file."""
    base = PurePosixPath(image)
    candidate = base.with_suffix(language_suffix)
    n = 1
    while str(candidate) in taken:
        candidate = base.with_name(f"{base.stem}_{n}{language_suffix}")
        n += 1
    return str(candidate)


def offer(
    settings: Settings,
    uri: str,
    version: int | None,
    text: str,
    start: types.Position,
    end: types.Position,
    diagnostics: Sequence[types.Diagnostic],
    path_suffix: str,
    cursor_image: str | None,
    workspace_images: Sequence[str],
) -> list[OfferedAction]:
    """The actions that apply at this range. Positions are code points (server units)."""
    lines = text.splitlines()
    enabled = set(settings.actions)
    out: list[OfferedAction] = []
    is_python = path_suffix in (".py", ".pyi")

    def request(action: str, lo: int, hi: int, **extra: Any) -> ActionRequest:
        return ActionRequest(action, uri, version, lo, max(lo, hi), **extra)

    if "editSelection" in enabled and (start.line, start.character) != (end.line, end.character):
        hi = end.line + (1 if end.character > 0 else 0)
        out.append(
            OfferedAction(
                "Cromwell: Edit selection…",
                KINDS["editSelection"],
                request("editSelection", start.line, max(hi, start.line + 1)),
            )
        )
    if "fix" in enabled:
        for diag in diagnostics:
            lo, hi = diag.range.start.line, diag.range.end.line + 1
            node = enclosing_definition(text, lo) if is_python else None
            if node is not None and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lo, hi = _region_of(node)
            else:
                lo, hi = max(0, lo - 3), min(len(lines), hi + 3)
            message = " ".join(diag.message.split())
            short = message if len(message) <= 60 else message[:59] + "…"
            out.append(
                OfferedAction(
                    f"Cromwell: Fix: {short}",
                    KINDS["fix"],
                    request("fix", lo, hi, instruction=message),
                    diag,
                )
            )
    node = enclosing_definition(text, start.line) if is_python else None
    is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    if "completeBody" in enabled and is_function and body_is_empty(node):  # type: ignore[arg-type]
        lo, hi = _region_of(node)  # type: ignore[arg-type]
        out.append(
            OfferedAction(
                "Cromwell: Complete function body",
                KINDS["completeBody"],
                request("completeBody", lo, hi),
            )
        )
    if "addDocstring" in enabled and node is not None and ast.get_docstring(node) is None:  # type: ignore[arg-type]
        lo, hi = _region_of(node)
        out.append(
            OfferedAction(
                "Cromwell: Add docstring", KINDS["addDocstring"], request("addDocstring", lo, hi)
            )
        )
    if not is_python and start.line < len(lines) and _SIGNATURE.search(lines[start.line]):
        # Without a parser for the language, offer both on what looks like a signature.
        lo, hi = start.line, min(len(lines), start.line + 30)
        if "completeBody" in enabled:
            out.append(
                OfferedAction(
                    "Cromwell: Complete function body",
                    KINDS["completeBody"],
                    request("completeBody", lo, hi),
                )
            )
        if "addDocstring" in enabled:
            out.append(
                OfferedAction(
                    "Cromwell: Add docstring",
                    KINDS["addDocstring"],
                    request("addDocstring", lo, hi),
                )
            )
    if "fromScreenshot" in enabled:
        images = [cursor_image] if cursor_image else list(workspace_images[:MAX_WORKSPACE_IMAGES])
        for image in images:
            name = PurePosixPath(image).name
            out.append(
                OfferedAction(
                    f"Cromwell: Generate code from screenshot {name}",
                    KINDS["fromScreenshot"],
                    request("fromScreenshot", start.line, start.line, image=image),
                )
            )
    return out
