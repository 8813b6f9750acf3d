"""The server's door, through a real client: a request's document and position are checked
before any handler runs, and a bad one gets InvalidParams with one sentence, never an
internal error carrying a Python exception's text, and never a result at a place that does
not exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import code_action_params, open_document
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio


async def refused(client: LanguageClient, params: types.CodeActionParams) -> str:
    with pytest.raises(JsonRpcInvalidParams) as caught:
        await client.text_document_code_action_async(params)
    message = caught.value.message
    assert "Traceback" not in message and "Error:" not in message and message.count("\n") == 0
    return message


async def test_a_directory_is_not_a_document(client: LanguageClient, workspace: Path):
    message = await refused(client, code_action_params((workspace / "geometry").as_uri(), (0, 0)))
    assert "is a directory" in message


async def test_a_file_outside_the_workspace_is_not_read(
    client: LanguageClient, workspace: Path, tmp_path: Path
):
    outside = tmp_path / "outside.py"
    outside.write_text("secret = 1\n")
    message = await refused(client, code_action_params(outside.as_uri(), (0, 0)))
    assert "outside the workspace" in message
    # Opened by the editor, the same file is the editor's document and is served.
    uri = open_document(client, outside)
    assert await client.text_document_code_action_async(code_action_params(uri, (0, 0)))


@pytest.mark.parametrize(
    "uri",
    [
        "untitled:Untitled-1",
        "https://example.com/a.py",
        "file:///tmp/a%00b.py",
        "file:///" + "a" * 5000,
    ],
)
async def test_uris_that_name_no_readable_file(client: LanguageClient, uri: str):
    message = await refused(client, code_action_params(uri, (0, 0)))
    assert uri[:60] in message or "does not name a file" in message


async def test_a_lone_surrogate_is_refused(client: LanguageClient, workspace: Path):
    path = workspace / "geometry" / "shapes.py"
    text = path.read_text().replace("pass", "x = '\ud800'", 1)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=path.as_uri(), language_id="python", version=1, text=text
            )
        )
    )
    message = await refused(client, code_action_params(path.as_uri(), (26, 8)))
    assert "lone surrogate (U+D800) on line 27" in message


async def test_a_range_past_the_end_is_refused(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    message = await refused(client, code_action_params(uri, (99_999, 0)))
    assert "line 99999, past the end" in message
    message = await refused(client, code_action_params(uri, (10, 4), (9, 0)))
    assert "start is after its end" in message


async def test_inline_completion_past_the_end_gets_no_item(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(99_999, 0),
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Invoked
        ),
    )
    with pytest.raises(JsonRpcInvalidParams, match="past the end"):
        await client.text_document_inline_completion_async(params)
