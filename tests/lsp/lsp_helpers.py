"""Helpers shared by the language server tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "workspace"


def runtime_available() -> bool:
    try:
        import engine.runtime  # noqa: F401
    except ImportError:
        return False
    return True


needs_model = pytest.mark.skipif(
    not runtime_available(), reason="the model runtime (engine.runtime) is not built yet"
)


def open_document(client: LanguageClient, path: Path, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=version, text=path.read_text()
            )
        )
    )
    return uri


def code_action_params(
    uri: str,
    start: tuple[int, int],
    end: tuple[int, int] | None = None,
    diagnostics: list[types.Diagnostic] | None = None,
) -> types.CodeActionParams:
    end = end or start
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(*start), types.Position(*end)),
        context=types.CodeActionContext(diagnostics=diagnostics or []),
    )
