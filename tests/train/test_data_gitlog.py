"""Real commits from `git log -p`: (before, after, message) per file, as edit examples."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.data.edit_makers import to_prompt
from engine.data.gitlog import commit_examples, commits
from engine.data.pipeline import HELDOUT, TRAIN, commit_stream
from engine.data.split import is_heldout

V1 = "def area(w, h):\n    return w * h\n"
V2 = 'def area(w, h):\n    """Area of a w by h rectangle."""\n    return w * h\n'
HELPER = "def half(x):\n    return x / 2"  # no newline at the end of the file


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@e", *args],
                   check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "geometry.py").write_text(V1)
    (root / "helper.py").write_text(HELPER)
    (root / "README.md").write_text("docs\n")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "Add geometry and helper")
    (root / "geometry.py").write_text(V2)
    (root / "helper.py").write_text(HELPER.replace("/ 2", "* 0.5"))
    _git(root, "commit", "-qam", "Document area; multiply in half\n\nA body line.")
    (root / "helper.py").unlink()
    _git(root, "commit", "-qam", "Drop helper")
    return root


def test_commits_give_before_after_and_message_per_file(repo: Path) -> None:
    changes = list(commits(repo))
    summary = [(c.message.split("\n")[0], c.path) for c in changes]
    assert summary == [
        ("Drop helper", "helper.py"),
        ("Document area; multiply in half", "geometry.py"),
        ("Document area; multiply in half", "helper.py"),
        ("Add geometry and helper", "geometry.py"),
        ("Add geometry and helper", "helper.py"),
    ]  # README.md is not code; newest first
    dropped, geometry, helper, created, _ = changes
    assert (dropped.before, dropped.after) == (HELPER.replace("/ 2", "* 0.5"), "")
    assert (geometry.before, geometry.after) == (V1, V2)
    assert geometry.message == "Document area; multiply in half\n\nA body line."
    assert (helper.before, helper.after) == (HELPER, HELPER.replace("/ 2", "* 0.5"))
    assert (created.before, created.after) == ("", V1)
    assert len(geometry.commit) == 40 and geometry.commit == helper.commit
    assert len(list(commits(repo, max_commits=1))) == 1


def test_commit_examples_mark_the_changed_lines(repo: Path) -> None:
    examples = list(commit_examples(repo))
    assert all(e.kind == "commit" for e in examples)
    assert not any(e.instruction == "Drop helper" for e in examples)  # deletions left out
    geometry = next(e for e in examples if e.path == "geometry.py" and e.region_before)
    assert geometry.prefix == "def area(w, h):\n"
    assert geometry.region_before == "    return w * h\n"
    assert geometry.region_after == '    """Area of a w by h rectangle."""\n    return w * h\n'
    assert (geometry.before, geometry.after) == (V1, V2)
    prompt = to_prompt(geometry, lambda messages: messages[0]["content"])
    assert prompt.prompt.endswith("Lines 2-2 of geometry.py:\n```python\n    return w * h\n```\n"
                                  "Document area; multiply in half\n\nA body line. Reply with "
                                  "the new version of these lines only.```python\n")
    assert prompt.target == geometry.region_after + "```"


def test_commit_stream_respects_the_heldout_split(repo: Path) -> None:
    fraction = 0.3  # holds out helper.py (path hash 0.21), not geometry.py (0.47)
    assert is_heldout("helper.py", fraction) and not is_heldout("geometry.py", fraction)
    assert {e.path for e in commit_stream(repo, TRAIN, heldout_fraction=fraction)} \
        == {"geometry.py"}
    assert {e.path for e in commit_stream(repo, HELDOUT, heldout_fraction=fraction)} \
        == {"helper.py"}
    with pytest.raises(ValueError, match="no usable commits"):
        commit_stream(repo, HELDOUT, heldout_fraction=0.0)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a git repository"):
        list(commits(tmp_path))


def test_commit_examples_keep_limited_context(tmp_path: Path) -> None:
    root = tmp_path / "long"
    root.mkdir()
    _git(root, "init", "-q")
    lines = [f"VALUE_{i} = {i}\n" for i in range(500)]
    (root / "consts.py").write_text("".join(lines))
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "Constants")
    lines[250] = "VALUE_250 = -1\n"
    (root / "consts.py").write_text("".join(lines))
    _git(root, "commit", "-qam", "Negate 250")
    example = next(e for e in commit_examples(root, context_lines=10)
                   if e.instruction == "Negate 250")
    assert example.region_before == "VALUE_250 = 250\n"
    assert example.region_after == "VALUE_250 = -1\n"
    assert example.prefix == "".join(lines[240:250]) and example.suffix == "".join(lines[251:261])
    whole = next(e for e in commit_examples(root, context_lines=None)
                 if e.instruction == "Negate 250")
    assert whole.after == "".join(lines)
