"""The language server's door: a request's document URI, its text and its positions are
checked here, once, before any handler runs, and refused with one sentence (InvalidParams)
rather than failing deep inside as an internal error with a Python exception's text.

`read_document` is how every handler gets a document (through `CromwellServer.document`);
`check_request` runs on every request whose params name a text document, with a position or
a range, from the protocol, so that a new handler is covered without asking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import to_fs_path

from .edits import DocumentView
from .workspace import FileRefused, read_text


class DocumentSource(Protocol):
    """What the checks need of the server."""

    workspace: Any  # pygls's: its open documents
    settings: Any  # max_file_bytes
    index: Any  # the workspace folders' roots

    def relative(self, uri: str) -> str: ...

    def document(self, uri: str) -> DocumentView: ...


def refuse(message: str) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(message=message)


def local_path(uri: str) -> Path | None:
    """The resolved file a file: URI names, None for other schemes; refused when the URI
    cannot name a file (a NUL byte, a name too long for the file system)."""
    if not uri.startswith("file:"):
        return None
    try:
        fs = to_fs_path(uri)
        if fs is None or "\x00" in fs:
            raise ValueError("not a file path")
        return Path(fs).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise refuse(f"{_short(uri)} does not name a file ({exc})") from None


def check_text(uri: str, text: str) -> None:
    """A document must be valid Unicode: a lone surrogate (which JSON's \\ud800 escapes can
    carry) cannot be encoded for the model or for an edit."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise refuse(
            f"{_short(uri)} holds a lone surrogate (U+{ord(text[exc.start]):04X}) on line "
            f"{line}, which is not valid Unicode: fix the text and ask again"
        ) from None


def read_document(server: DocumentSource, uri: Any) -> DocumentView:
    """The document as pygls holds it (open), else from disk inside the workspace folders;
    refused when it is unknown, not a file, outside the workspace, binary, too large or not
    valid Unicode."""
    if not isinstance(uri, str) or not uri:
        raise refuse(f"not a document URI: {uri!r}")
    limit = server.settings.max_file_bytes
    path = local_path(uri)
    open_doc = server.workspace.text_documents.get(uri)
    if open_doc is not None:  # the editor's own text: any scheme, any folder
        text, version = open_doc.source, open_doc.version
        if len(text) > limit:
            raise refuse(f"{_short(uri)}: {len(text)} characters is over maxFileBytes ({limit})")
    else:
        if path is None:
            raise refuse(
                f"unknown document {_short(uri)}: open it first (only file: URIs are read)"
            )
        try:
            if path.is_dir():
                raise refuse(f"{_short(uri)} is a directory, not a document")
            roots = server.index.roots
            if roots and not any(path.is_relative_to(root) for root in roots):
                raise refuse(f"{_short(uri)} is outside the workspace folders: open it first")
            text, _ = read_text(path, limit)
        except FileRefused as exc:
            raise refuse(f"unknown or unreadable document {_short(uri)}: {exc}") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise refuse(f"unknown or unreadable document {_short(uri)}: {reason}") from None
        version = None
    check_text(uri, text)
    return DocumentView(uri, server.relative(uri), text, version)


def check_position(doc: DocumentView, position: types.Position, what: str) -> None:
    """A position's line must lie in the document (a character past a line's end is the
    line's end, as the spec says)."""
    last = len(doc.text.splitlines())  # the line after the last one: an end of file
    if position.line > last:
        raise refuse(
            f"{what} is on line {position.line}, past the end of the {last}-line document "
            f"{doc.path}"
        )


def check_request(server: DocumentSource, params: Any) -> None:
    """Refuse a request whose document, position or range is not one the handlers can use."""
    text_document = getattr(params, "text_document", None)
    uri = getattr(text_document, "uri", None)
    if uri is None:
        return
    doc = server.document(uri)
    if (position := getattr(params, "position", None)) is not None:
        check_position(doc, position, "the position")
    if (rng := getattr(params, "range", None)) is not None:
        check_position(doc, rng.start, "the range's start")
        check_position(doc, rng.end, "the range's end")
        if (rng.start.line, rng.start.character) > (rng.end.line, rng.end.character):
            raise refuse("the range's start is after its end")


def _short(uri: str, limit: int = 200) -> str:
    return uri if len(uri) <= limit else uri[:limit] + "..."
