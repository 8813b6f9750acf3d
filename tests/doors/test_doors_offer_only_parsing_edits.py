"""No door offers an edit that leaves the file unparsable, even a file that did not parse
before: the same request through the language server, the HTTP server, the command line
and the Python API is refused with one clear reason, because every door offers only what
the one pipeline checked (domain.run_action: the answer, one more sample, then nothing).

The method `mul` lacks its colon and the request rewrites the method `add` of the same class
alone: an error in another top-level function would be left to the user, but one in the
statement the edit writes into is not, so whatever the real model answers for `add`, the class
it would leave does not parse: both answers are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import pytest_lsp
from doors_helpers import CROMWELL, Server, cromwell_env
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from cromwell_lsp import api, patches

BROKEN = (
    "class Calc:\n"
    "    def add(self, a, b):\n"
    "        return a - b\n"
    "\n"
    "    def mul(self, a, b)\n"
    "        return a * b\n"
)
INSTRUCTION = "fix add: it must return a + b"
LINES = (2, 3)  # 1-based, inclusive: the method `add`
MAX_TOKENS = 24
REFUSAL = "none of the model's answers is an edit"
# `mul` stays broken whatever `add` becomes, and the refusal says the file was broken before.
REASON = "did not parse before the edit either"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    (folder / ".git").mkdir()
    (folder / "m.py").write_text(BROKEN)
    return folder


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[CROMWELL, "lsp"]))
async def lsp(lsp_client: LanguageClient, root: Path):
    lsp_client.set_configuration({"maxNewTokens": MAX_TOKENS}, section="cromwell")
    lsp_client.applied = []  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        return None

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        lsp_client.applied.append(params)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="broken")],
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_the_language_server_offers_no_edit_and_says_why(
    lsp: LanguageClient, root: Path
) -> None:
    uri = (root / "m.py").as_uri()
    lsp.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="python", version=1, text=BROKEN)
        )
    )
    data = {
        "action": "editSelection",
        "uri": uri,
        "version": 1,
        "start_line": LINES[0] - 1,
        "end_line": LINES[1],
        "instruction": INSTRUCTION,
    }
    with pytest.raises(JsonRpcException) as refused:
        await lsp.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cromwell.editSelection", arguments=[data])
        )
    message = str(refused.value)
    assert f"no edit: {REFUSAL}" in message and REASON in message, message
    assert lsp.applied == []  # type: ignore[attr-defined]


def test_the_http_server_answers_422_with_the_reason(root: Path) -> None:
    server = Server(root)
    try:
        with server.client() as http:
            response = http.post(
                "/v1/edit",
                json={
                    "path": "m.py",
                    "instruction": INSTRUCTION,
                    "lines": list(LINES),
                    "max_tokens": MAX_TOKENS,
                },
            )
    finally:
        server.stop()
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"no edit: {REFUSAL}") and REASON in detail, detail


def test_the_command_line_prints_one_sentence_and_exits_3(root: Path) -> None:
    out = subprocess.run(
        [
            CROMWELL,
            "edit",
            str(root / "m.py"),
            "-i",
            INSTRUCTION,
            "--lines",
            f"{LINES[0]}:{LINES[1]}",
            "--max-tokens",
            str(MAX_TOKENS),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=cromwell_env(),
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 3, out
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith(f"Error: no edit: {REFUSAL}") and REASON in lines[-1], out.stderr


def test_the_python_api_raises_and_the_file_is_untouched(root: Path) -> None:
    with pytest.raises(patches.PatchError, match=f"{REFUSAL}: the edited python does not parse"):
        api.propose_edit(root / "m.py", INSTRUCTION, lines=LINES, max_new_tokens=MAX_TOKENS)
    assert (root / "m.py").read_text() == BROKEN
