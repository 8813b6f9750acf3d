"""The Python API in-process: propose, apply with the hash guard, explain, complete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from doors_helpers import SAMPLE, cromwell_env

from cromwell_lsp import api


@pytest.fixture(autouse=True)
def _model_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    home = cromwell_env().get("CROMWELL_HOME")
    if home and "CROMWELL_HOME" not in os.environ:
        monkeypatch.setenv("CROMWELL_HOME", home)


def _project(tmp_path: Path, related: bool = True) -> Path:
    (tmp_path / ".git").mkdir()  # the workspace root is found by its .git
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text(SAMPLE)
    if related:
        (tmp_path / "util.py").write_text(
            "from pkg.m import add\n\ndef inc(x):\n    return add(x, 1)\n"
        )
    return tmp_path / "pkg" / "m.py"


def test_propose_then_apply_with_the_hash_guard(tmp_path: Path) -> None:
    # Alone in its workspace the small default model fixes this one (greedy, so it does
    # every time); with related code beside it, it tends to copy that instead.
    target = _project(tmp_path, related=False)
    proposal = api.propose_edit(target, "fix add: it must return a + b", lines=(1, 2),
                                max_new_tokens=24)
    assert "return a + b" in proposal.new_text
    assert proposal.root == tmp_path.resolve() and proposal.path == "pkg/m.py"
    assert target.read_text() == SAMPLE  # proposing writes nothing
    target.write_text(SAMPLE + "\n")  # the file changes after the proposal
    with pytest.raises(api.FileChanged):
        api.apply_patch(proposal.diff, proposal.root, expected={proposal.path: proposal.old_hash})
    assert target.read_text() == SAMPLE + "\n"
    target.write_text(SAMPLE)
    api.apply_patch(proposal.diff, proposal.root, expected={proposal.path: proposal.old_hash})
    assert target.read_text() == proposal.new_text


def test_explain_context_ranks_the_importing_file(tmp_path: Path) -> None:
    target = _project(tmp_path)
    plan = api.explain_context(target, "fix add", lines=(1, 2))
    assert plan["target"] == "pkg/m.py"
    assert [f["path"] for f in plan["files"]] == ["util.py"]
    assert plan["promptTokens"] > 0 and "return a - b" in plan["prompt"]


def test_complete_and_bad_requests(tmp_path: Path) -> None:
    target = _project(tmp_path)
    assert isinstance(api.complete(target, 5, 4, max_tokens=4), str)
    with pytest.raises(api.RequestError, match="outside"):
        api.complete(target, 50, 0)
    with pytest.raises(api.RequestError, match="instruction is empty"):
        api.propose_edit(target, "  ")
    with pytest.raises(api.RequestError, match="not an image"):
        api.screenshot_to_code(target)
