"""End to end through a real `cromwell lsp` process, with both the VS Code and the Neovim
capability sets: everything that needs no model call."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsp_helpers import code_action_params, open_document
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio

# Rectangle.perimeter's `pass` line in examples/workspace/geometry/shapes.py (0-based).
PASS_LINE = 26


def titles(actions: list[types.CodeAction | types.Command] | None) -> list[str]:
    return [a.title for a in actions or []]


async def test_lists_actions_without_a_model(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    lines = (workspace / "geometry" / "shapes.py").read_text().splitlines()
    assert lines[PASS_LINE].strip() == "pass"
    diag = types.Diagnostic(
        range=types.Range(types.Position(PASS_LINE, 8), types.Position(PASS_LINE, 12)),
        message="Missing return statement",
        severity=types.DiagnosticSeverity.Error,
    )
    started = time.perf_counter()
    result = await client.text_document_code_action_async(
        code_action_params(uri, (PASS_LINE, 8), (PASS_LINE, 12), [diag])
    )
    elapsed = time.perf_counter() - started
    assert titles(result) == [
        "Cromwell: Edit selection…",
        "Cromwell: Fix: Missing return statement",
        "Cromwell: Complete function body",
        "Cromwell: Add docstring",
        "Cromwell: Generate code from screenshot mockup.png",
    ]
    assert elapsed < 5, "listing must not wait for a model"
    by_title = {a.title: a for a in result}
    fix = by_title["Cromwell: Fix: Missing return statement"]
    assert fix.kind == types.CodeActionKind.QuickFix
    assert fix.diagnostics and fix.diagnostics[0].message == "Missing return statement"
    assert fix.edit is None  # computed on resolve, never at listing time
    # Both clients resolve edits, so the data rides on the action, not on a command.
    assert fix.data["action"] == "fix" and fix.data["uri"] == uri and fix.data["version"] == 1
    assert fix.command is None
    complete = by_title["Cromwell: Complete function body"]
    assert (complete.data["start_line"], complete.data["end_line"]) == (25, 27)
    edit = by_title["Cromwell: Edit selection…"]
    # lsprotocol's client-side hook reads any action carrying a `command` as a Command (it
    # tests for the key, not its type), so the nested command arrives stringified here.
    assert "'command': 'cromwell.editSelection'" in str(edit.command)
    assert "'action': 'editSelection'" in str(edit.command)


async def test_only_filter_and_no_actions_off_functions(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    params = code_action_params(uri, (PASS_LINE, 8))
    params.context.only = [types.CodeActionKind.QuickFix]
    assert titles(await client.text_document_code_action_async(params)) == []
    # Line 2 ("import math") is in no function: only the workspace screenshot is offered.
    result = await client.text_document_code_action_async(code_action_params(uri, (2, 0)))
    assert titles(result) == ["Cromwell: Generate code from screenshot mockup.png"]


async def test_image_under_cursor(client: LanguageClient, workspace: Path):
    (workspace / "other.png").write_bytes((workspace / "mockup.png").read_bytes())
    uri = open_document(client, workspace / "app.py")
    line0 = (workspace / "app.py").read_text().splitlines()[0]
    col = line0.index("mockup.png") + 3
    result = await client.text_document_code_action_async(code_action_params(uri, (0, col)))
    shots = [a for a in result if "screenshot" in a.title]
    assert [a.title for a in shots] == ["Cromwell: Generate code from screenshot mockup.png"]
    assert shots[0].data["image"] == str((workspace / "mockup.png").resolve())


async def test_watched_files_keep_the_index_current(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    # The server asks for file events where the client lets servers register watchers.
    dynamic = client.capabilities.workspace.did_change_watched_files.dynamic_registration
    for _ in range(50):
        if client.registrations or not dynamic:
            break
        await asyncio.sleep(0.05)
    methods = [r.method for r in client.registrations]
    assert methods == (["workspace/didChangeWatchedFiles"] if dynamic else [])
    new_image = workspace / "sketch.png"
    new_image.write_bytes((workspace / "mockup.png").read_bytes())
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=new_image.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    result = await client.text_document_code_action_async(code_action_params(uri, (2, 0)))
    assert "Cromwell: Generate code from screenshot sketch.png" in titles(result)
    new_image.unlink()
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=new_image.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    result = await client.text_document_code_action_async(code_action_params(uri, (2, 0)))
    assert "Cromwell: Generate code from screenshot sketch.png" not in titles(result)


async def test_configuration_push_and_pull(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    params = code_action_params(uri, (PASS_LINE, 8))
    # Push: the settings ride on the notification.
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"cromwell": {"actions": ["addDocstring"]}})
    )
    assert titles(await client.text_document_code_action_async(params)) == [
        "Cromwell: Add docstring"
    ]
    # Pull: the notification is empty and the server asks with workspace/configuration.
    client.set_configuration({"actions": ["completeBody"]}, section="cromwell")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    for _ in range(50):  # the pull is a round trip of its own
        if titles(await client.text_document_code_action_async(params)) == [
            "Cromwell: Complete function body"
        ]:
            break
        await asyncio.sleep(0.05)
    assert titles(await client.text_document_code_action_async(params)) == [
        "Cromwell: Complete function body"
    ]


async def test_bad_configuration_is_reported_and_ignored(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"cromwell": {"temperature": "hot", "nope": 1, "actions": []}}
        )
    )
    await client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)
    message = client.messages[-1]
    assert message.type == types.MessageType.Error
    assert "temperature must be a number" in message.message and "'nope'" in message.message
    # Nothing was applied: all five actions are still offered.
    result = await client.text_document_code_action_async(
        code_action_params(uri, (PASS_LINE, 8), (PASS_LINE, 12))
    )
    assert len(result) == 4


async def test_bad_input_gets_clear_errors(client: LanguageClient, workspace: Path):
    missing = (workspace / "missing.py").as_uri()
    with pytest.raises(Exception, match="unknown or unreadable document"):
        await client.text_document_code_action_async(code_action_params(missing, (0, 0)))
    binary = workspace / "blob.py"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(Exception, match="binary file"):
        await client.text_document_code_action_async(code_action_params(binary.as_uri(), (0, 0)))
    huge = workspace / "huge.py"
    huge.write_text("x = 1\n" * 300_000)
    with pytest.raises(Exception, match="over the .*maxFileBytes"):
        await client.text_document_code_action_async(code_action_params(huge.as_uri(), (0, 0)))
    with pytest.raises(Exception, match="action must be one of"):
        await client.code_action_resolve_async(
            types.CodeAction(title="x", data={"action": "explode", "uri": missing})
        )
    with pytest.raises(Exception, match="expected one argument"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cromwell.runAction", arguments=[])
        )
    with pytest.raises(Exception, match="start_line must be"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="cromwell.explainContext", arguments=[{"uri": missing, "start_line": -1}]
            )
        )
    with pytest.raises(Exception, match="not defined"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cromwell.nope", arguments=[])
        )
    # Edit selection without an instruction says how to give one, before any model load.
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    data = {"action": "editSelection", "uri": uri, "version": 1, "start_line": 0, "end_line": 2}
    with pytest.raises(Exception, match="needs an instruction"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cromwell.editSelection", arguments=[data])
        )
    # A stale version is refused, not guessed.
    stale = {**data, "instruction": "x", "version": 0}
    with pytest.raises(Exception, match="document changed"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cromwell.editSelection", arguments=[stale])
        )
    # A file named like an image that is not one.
    fake = workspace / "fake.png"
    fake.write_text("not a picture")
    shot = {
        "action": "fromScreenshot",
        "uri": uri,
        "start_line": 0,
        "end_line": 0,
        "image": str(fake),
    }
    with pytest.raises(Exception, match="not an image"):
        await client.code_action_resolve_async(types.CodeAction(title="x", data=shot))
    # The server is still alive and well.
    result = await client.text_document_code_action_async(code_action_params(uri, (PASS_LINE, 8)))
    assert "Cromwell: Complete function body" in titles(result)


async def test_inline_completion_can_be_switched_off(client: LanguageClient, workspace: Path):
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"cromwell": {"inlineCompletion": False}})
    )
    result = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(PASS_LINE, 8),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
    )
    assert result is not None and list(result.items) == []


async def test_a_model_that_fails_to_load_is_reported(client: LanguageClient, workspace: Path):
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(
            settings={"cromwell": {"modelPath": str(workspace / "missing.gguf")}}
        )
    )
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    listed = await client.text_document_code_action_async(code_action_params(uri, (PASS_LINE, 8)))
    action = next(a for a in listed if a.title == "Cromwell: Complete function body")
    with pytest.raises(Exception, match="model unavailable"):
        await client.code_action_resolve_async(action)
    shown = [m for m in client.messages if m.type == types.MessageType.Error]
    assert shown and any(w in shown[-1].message for w in ("modelPath", "make setup"))
    # The server carries on, and the file is untouched.
    assert titles(
        await client.text_document_code_action_async(code_action_params(uri, (PASS_LINE, 8)))
    )
    assert (workspace / "geometry" / "shapes.py").read_text().count("pass") == 1


async def test_workspace_folders_come_and_go(client: LanguageClient, workspace: Path, tmp_path):
    other = tmp_path / "designs"
    other.mkdir()
    (other / "login.png").write_bytes((workspace / "mockup.png").read_bytes())
    uri = open_document(client, workspace / "geometry" / "shapes.py")
    params = code_action_params(uri, (2, 0))
    folder = types.WorkspaceFolder(uri=other.as_uri(), name="designs")
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[folder], removed=[])
        )
    )
    assert "Cromwell: Generate code from screenshot login.png" in titles(
        await client.text_document_code_action_async(params)
    )
    client.workspace_did_change_workspace_folders(
        types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[folder])
        )
    )
    assert "Cromwell: Generate code from screenshot login.png" not in titles(
        await client.text_document_code_action_async(params)
    )
