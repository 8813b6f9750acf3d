"""End to end on the real embedded default model, with both capability sets: list -> resolve
-> edit, executeCommand -> applyEdit, progress, cancellation, explainContext, inline
completion, screenshots. Skipped until the model runtime is installed."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from lsp_helpers import code_action_params, needs_model, open_document
from lsprotocol import types
from pytest_lsp import LanguageClient

from cromwell_lsp import patches

pytestmark = [pytest.mark.asyncio, needs_model]

PASS_LINE = 26


async def list_actions(client: LanguageClient, uri: str) -> dict[str, types.CodeAction]:
    result = await client.text_document_code_action_async(code_action_params(uri, (PASS_LINE, 8)))
    return {a.title: a for a in result}


def edits_of(edit: types.WorkspaceEdit, uri: str) -> list[types.TextEdit]:
    if edit.document_changes:
        return [
            e
            for c in edit.document_changes
            if isinstance(c, types.TextDocumentEdit) and c.text_document.uri == uri
            for e in c.edits
        ]
    return list((edit.changes or {}).get(uri, []))


async def test_resolve_gives_a_confirmed_diff_edit_with_progress(
    client: LanguageClient, workspace: Path
):
    path = workspace / "geometry" / "shapes.py"
    uri = open_document(client, path)
    action = (await list_actions(client, uri))["Cromwell: Complete function body"]
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is not None
    text_edits = edits_of(resolved.edit, uri)
    new_text = patches.apply_text_edits(path.read_text(), text_edits)
    assert new_text != path.read_text()
    ast.parse(new_text)
    if resolved.edit.change_annotations:  # clients that take annotations get the diff
        (annotation,) = resolved.edit.change_annotations.values()
        assert annotation.needs_confirmation
        assert annotation.description.startswith(
            "--- a/geometry/shapes.py\n+++ b/geometry/shapes.py"
        )
        assert patches.apply_diff(path.read_text(), annotation.description) == new_text
    assert path.read_text() == (workspace / "geometry" / "shapes.py").read_text()  # untouched
    reports = [r for values in client.progress_reports.values() for r in values]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)


async def test_execute_command_sends_apply_edit(client: LanguageClient, workspace: Path):
    applied: list[types.ApplyWorkspaceEditParams] = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    path = workspace / "geometry" / "shapes.py"
    uri = open_document(client, path)
    # The action the default model completes within the tests' 64 tokens (greedy decoding
    # makes it the same answer every run).
    data = (await list_actions(client, uri))["Cromwell: Complete function body"].data
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="cromwell.runAction", arguments=[data])
    )
    assert result["applied"] is True and result["diff"].startswith("--- a/")
    assert len(applied) == 1 and applied[0].label == "Cromwell: Complete function body"
    ast.parse(patches.apply_text_edits(path.read_text(), edits_of(applied[0].edit, uri)))


def long_edit(client: LanguageClient, workspace: Path) -> tuple[str, dict[str, object]]:
    """An open document and an edit request whose generation runs long enough to cancel."""
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"cromwell": {"maxNewTokens": 2000}})
    )
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    data = {
        "action": "editSelection",
        "uri": uri,
        "version": 1,
        "start_line": 0,
        "end_line": 30,
        "instruction": "Rewrite this module with long comments everywhere.",
    }
    return uri, data


async def test_cancel_request_stops_generation(client: LanguageClient, workspace: Path):
    uri, data = long_edit(client, workspace)
    pending = asyncio.ensure_future(
        client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(command="cromwell.editSelection", arguments=[data]),
            msg_id="long-edit",
        )
    )
    for _ in range(600):  # until the first tokens are reported
        if any(
            isinstance(r, types.WorkDoneProgressReport)
            for v in client.progress_reports.values()
            for r in v
        ):
            break
        await asyncio.sleep(0.1)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-edit"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(pending, timeout=30)
    (reports,) = client.progress_reports.values()
    for _ in range(100):  # the reply comes first; the worker stops at its next token
        if isinstance(reports[-1], types.WorkDoneProgressEnd):
            break
        await asyncio.sleep(0.05)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == "cancelled"
    # The worker stopped: the next request is answered at once.
    assert await list_actions(client, uri)


async def test_progress_cancel_stops_generation(client: LanguageClient, workspace: Path):
    uri, data = long_edit(client, workspace)
    pending = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cromwell.editSelection", arguments=[data])
        )
    )
    for _ in range(600):
        if client.progress_reports:
            break
        await asyncio.sleep(0.1)
    (token,) = client.progress_reports
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    with pytest.raises(Exception, match="cancelled"):
        await asyncio.wait_for(pending, timeout=30)


async def test_explain_context(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "app.py")
    info = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="cromwell.explainContext",
            arguments=[{"uri": uri, "start_line": 5, "end_line": 7}],
        )
    )
    assert info["target"] == "app.py"
    assert info["promptTokens"] <= info["budget"] <= 4096 - 256
    files = {f["path"]: f for f in info["files"]}
    assert files["geometry/shapes.py"]["signals"]["link"] == 1.0  # app.py imports it
    assert files["geometry/shapes.py"]["chosen"]


async def test_inline_completion_newer_request_wins(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")

    def params(line: int) -> types.InlineCompletionParams:
        return types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line, 12),  # the end of `        pass`
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )

    first = asyncio.ensure_future(client.text_document_inline_completion_async(params(PASS_LINE)))
    await asyncio.sleep(0.01)
    second = await client.text_document_inline_completion_async(params(PASS_LINE))
    here = types.Range(types.Position(PASS_LINE, 12), types.Position(PASS_LINE, 12))
    # The older request is answered too: empty when the newer one superseded it (it stops
    # between two tokens), else with its suggestion; any item is inserted at the cursor.
    for answer in (await first, second):
        assert all(item.range == here for item in answer.items)
    stats = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="cromwell.ghostStats", arguments=[])
    )
    assert stats["requests"] == 2
    assert stats["superseded"] + stats["from_model"] + stats["from_cache"] == 2


async def test_screenshot_creates_a_new_file(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    action = (await list_actions(client, uri))["Cromwell: Generate code from screenshot mockup.png"]
    try:
        resolved = await client.code_action_resolve_async(action)
    except Exception as exc:  # a text-only model must say so, not invent a UI from nothing
        assert "image" in str(exc)
        assert any("image" in m.message for m in client.messages)
        return
    create, content = resolved.edit.document_changes
    assert isinstance(create, types.CreateFile)
    assert create.uri == (workspace / "mockup.py").as_uri()
    assert content.edits[0].new_text.strip()
    assert not (workspace / "mockup.py").exists()  # the client creates it, not the server
