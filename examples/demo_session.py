"""A real LSP session over stdio with `cromwell lsp`, on the example workspace beside this
file: prints the code actions offered at an unfinished method, then resolves "Complete
function body" on the embedded default model and prints its unified diff.

Run with `make demo`, or `python examples/demo_session.py [--action TITLE]`. Nothing is
written: the edit comes back as a WorkspaceEdit, and the diff is the one its change
annotation carries.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

WORKSPACE = Path(__file__).resolve().parent / "workspace"
TARGET = WORKSPACE / "geometry" / "shapes.py"


def make_client() -> LanguageClient:
    client = LanguageClient("cromwell-demo", "1")

    @client.feature(types.WORKSPACE_CONFIGURATION)
    def configuration(params: types.ConfigurationParams) -> list[dict]:
        return [{"maxNewTokens": 256} for _ in params.items]

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def progress_create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def progress(params: types.ProgressParams) -> None:
        value = params.value
        kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", "")
        message = value.get("message") if isinstance(value, dict) else getattr(value, "message", "")
        print(f"  [progress {kind}] {message or ''}", file=sys.stderr)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        print(f"  [server says] {params.message}", file=sys.stderr)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        pass

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        return None

    return client


def capabilities() -> types.ClientCapabilities:
    """What an editor with resolve support (VS Code, Neovim 0.11) announces, in short."""
    return types.ClientCapabilities(
        workspace=types.WorkspaceClientCapabilities(
            configuration=True,
            apply_edit=True,
            workspace_edit=types.WorkspaceEditClientCapabilities(
                document_changes=True,
                resource_operations=[types.ResourceOperationKind.Create],
                change_annotation_support=types.ChangeAnnotationsSupportOptions(),
            ),
        ),
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                data_support=True,
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(
                        value_set=[types.CodeActionKind.QuickFix, types.CodeActionKind.Refactor]
                    )
                ),
            )
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )


def runtime_available() -> bool:
    try:
        import engine.runtime  # noqa: F401
    except ImportError:
        return False
    return True


async def session(action_title: str) -> int:
    client = make_client()
    await client.start_io(sys.executable, "-m", "cromwell_cli", "lsp")
    await client.initialize_async(
        types.InitializeParams(
            capabilities=capabilities(),
            root_uri=WORKSPACE.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=WORKSPACE.as_uri(), name="example")],
        )
    )
    client.initialized(types.InitializedParams())
    text = TARGET.read_text()
    uri = TARGET.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    line = next(i for i, t in enumerate(text.splitlines()) if t.strip() == "pass")
    here = types.Position(line, 8)
    started = time.perf_counter()
    listed = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(here, here),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    elapsed = time.perf_counter() - started
    print(f"Code actions at {TARGET.relative_to(WORKSPACE)}:{line + 1} ({elapsed * 1000:.0f} ms):")
    for action in listed or []:
        kind = getattr(action, "kind", None) or "command"
        print(f"  - {action.title}  [{kind}]")

    status = 0
    chosen = next((a for a in listed or [] if a.title == action_title), None)
    if chosen is None or not isinstance(chosen, types.CodeAction):
        print(f"no resolvable action titled {action_title!r}", file=sys.stderr)
        status = 1
    elif not runtime_available():
        print(
            "\nThe model runtime (engine.runtime) is not installed here, so the action is not"
            " resolved."
        )
    else:
        print(f"\nResolving {chosen.title!r} on the embedded default model...")
        started = time.perf_counter()
        try:
            resolved = await client.code_action_resolve_async(chosen)
        except JsonRpcException as exc:
            print(f"resolve failed: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"({time.perf_counter() - started:.1f} s)\n")
            edit = resolved.edit
            annotations = (edit.change_annotations or {}) if edit else {}
            for annotation in annotations.values():
                print(annotation.description, end="")
            if not annotations:
                print("no edit came back", file=sys.stderr)
                status = 1
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--action", default="Cromwell: Complete function body")
    args = parser.parse_args()
    sys.exit(asyncio.run(session(args.action)))


if __name__ == "__main__":
    main()
