"""One request, four doors, one diff: the same edit asked through the language server, the
HTTP server, the command line and the Python API is the same unified diff, because every
door is a thin adapter over the one pipeline (cromwell_lsp/domain.py) and greedy decoding
makes the model's answer reproducible."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import pytest_lsp
from doors_helpers import CROMWELL, SAMPLE, Server, cromwell_env, make_root
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from cromwell_lsp import api

pytestmark = pytest.mark.asyncio

INSTRUCTION = "fix add: it must return a + b"
LINES = (1, 2)  # 1-based, inclusive: the function `add`
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_root(tmp_path_factory.mktemp("four-doors"))
    (folder / ".git").mkdir()  # the CLI and the API find the same workspace root
    return folder


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[CROMWELL, "lsp"]))
async def lsp(lsp_client: LanguageClient, root: Path):
    lsp_client.set_configuration({"maxNewTokens": MAX_TOKENS}, section="cromwell")

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        return None

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return types.ApplyWorkspaceEditResult(applied=True)  # the file on disk stays as it is

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="four-doors")],
        )
    )
    yield
    await lsp_client.shutdown_session()


async def through_lsp(client: LanguageClient, root: Path) -> str:
    uri = (root / "m.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=SAMPLE)))
    data = {"action": "editSelection", "uri": uri, "version": 1,
            "start_line": LINES[0] - 1, "end_line": LINES[1], "instruction": INSTRUCTION}
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="cromwell.editSelection", arguments=[data]))
    return result["diff"]


def through_http(root: Path) -> str:
    server = Server(root)
    try:
        with server.client() as http:
            response = http.post("/v1/edit", json={
                "path": "m.py", "instruction": INSTRUCTION, "lines": list(LINES),
                "max_tokens": MAX_TOKENS})
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    return response.json()["diff"]


def through_cli(root: Path) -> str:
    out = subprocess.run(
        [CROMWELL, "edit", str(root / "m.py"), "-i", INSTRUCTION,
         "--lines", f"{LINES[0]}:{LINES[1]}", "--max-tokens", str(MAX_TOKENS), "--json"],
        capture_output=True, text=True, env=cromwell_env(), timeout=300,
        stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["diff"]


def through_api(root: Path) -> str:
    return api.propose_edit(root / "m.py", INSTRUCTION, lines=LINES,
                            max_new_tokens=MAX_TOKENS).diff


async def test_the_same_edit_is_the_same_diff_through_every_door(
        lsp: LanguageClient, root: Path) -> None:
    diffs = {"lsp": await through_lsp(lsp, root), "http": through_http(root),
             "cli": through_cli(root), "api": through_api(root)}
    assert diffs["api"].startswith("--- a/m.py\n+++ b/m.py\n")
    assert "+    return a + b" in diffs["api"]
    for door, diff in diffs.items():
        assert diff == diffs["api"], f"{door} gave another diff:\n{diff}\napi:\n{diffs['api']}"
