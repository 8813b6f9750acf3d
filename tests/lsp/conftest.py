"""Shared fixtures: a fresh copy of the example workspace, and a real `cromwell lsp` process
driven over stdio by pytest-lsp with the VS Code or the Neovim capability set."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import EXAMPLE
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER = [sys.executable, "-m", "cromwell_cli", "lsp"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A private copy of examples/workspace, so tests may add and change files."""
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, root)
    return root


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER),
    params=["visual-studio-code", "neovim"],
)
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient, workspace: Path):
    # Short generations in a small window: CPU time in tests is shared and scarce.
    lsp_client.set_configuration(
        {"maxNewTokens": 64, "contextBudget": 1024, "inlineMaxTokens": 16}, section="cromwell"
    )
    lsp_client.registrations = []

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(params.registrations)

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="example")],
        )
    )
    yield
    await lsp_client.shutdown_session()
