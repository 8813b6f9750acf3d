"""The front doors through the installed `cromwell` command: help, exit codes, JSON."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from doors_helpers import CROMWELL, SAMPLE, cromwell_env
from PIL import Image

from cromwell_lsp.patches import apply_diff, unified_diff
from cromwell_lsp.rest import ConfigError, ServerConfig

COMMANDS = ["lsp", "serve", "edit", "complete", "generate", "screenshot", "apply", "info",
            "models", "export", "bench", "cpu", "data"]


def run(*args: str, cwd: Path | None = None, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CROMWELL, *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, env=cromwell_env(), timeout=300)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = run(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout


def test_apply_dry_run_then_apply(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.txt").write_text("three\n")
    patch = tmp_path / "change.diff"
    patch.write_text(unified_diff("one\ntwo\n", "one\n2\n", "a.txt")
                     + unified_diff("three\n", "3\n", "b.txt"))
    dry = run("apply", str(patch), "--root", str(tmp_path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["applied"] is False and [f["path"] for f in report["files"]] == ["a.txt",
                                                                                   "b.txt"]
    assert (tmp_path / "a.txt").read_text() == "one\ntwo\n"
    done = run("apply", "-", "--backup", cwd=tmp_path, stdin=patch.read_text())
    assert done.returncode == 0, done.stderr
    assert "changed a.txt" in done.stdout
    assert (tmp_path / "a.txt").read_text() == "one\n2\n"
    assert (tmp_path / "b.txt").read_text() == "3\n"
    assert (tmp_path / "b.txt.orig").read_text() == "three\n"
    again = run("apply", str(patch), "--root", str(tmp_path))
    assert again.returncode == 3 and "does not apply" in again.stderr  # already applied
    assert (tmp_path / "a.txt").read_text() == "one\n2\n"


def test_apply_refuses_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = run("apply", "-", "--root", str(tmp_path), stdin="this is no diff\n")
    assert garbage.returncode == 3 and "no file changes" in garbage.stderr
    missing = run("apply", "-", "--root", str(tmp_path),
                  stdin=unified_diff("x\n", "y\n", "nope.txt"))
    assert missing.returncode == 3 and "no such file" in missing.stderr


def test_edit_prints_a_diff_and_apply_writes_it(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(SAMPLE)
    shown = run("edit", str(target), "-i", "fix add: it must return a + b", "--lines", "1:2",
                "--max-tokens", "24", "--json")
    assert shown.returncode == 0, shown.stderr
    proposal = json.loads(shown.stdout)
    assert "return a + b" in proposal["new_text"]
    assert apply_diff(SAMPLE, proposal["diff"]) == proposal["new_text"]
    assert target.read_text() == SAMPLE and proposal["applied"] is False
    written = run("edit", str(target), "-i", "fix add: it must return a + b", "--lines", "1:2",
                  "--max-tokens", "24", "--apply")
    assert written.returncode == 0, written.stderr
    assert written.stdout == proposal["diff"]  # greedy: the same edit
    assert target.read_text() == proposal["new_text"]


@pytest.mark.parametrize("lines", ["x", "3:1", "1:99"])
def test_edit_refuses_bad_lines(tmp_path: Path, lines: str) -> None:
    target = tmp_path / "m.py"
    target.write_text(SAMPLE)
    out = run("edit", str(target), "-i", "x", "--lines", lines)
    assert out.returncode == 2 and lines.split(":")[0] in out.stderr


def test_complete_prints_json(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text(SAMPLE)
    out = run("complete", str(target), "--line", "6", "--column", "5", "--max-tokens", "4",
              "--json")
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout)["text"], str)
    bad = run("complete", str(target), "--line", "99", "--column", "1")
    assert bad.returncode == 2 and "outside" in bad.stderr


@pytest.mark.parametrize(("args", "flag", "message"), [
    (["complete", "--line", "999", "--column", "1"], "'--line'",
     "line 999 is outside the 6-line document"),
    (["complete", "--line", "2", "--column", "40"], "'--column'",
     "column 40 is outside line 2 (16 characters)"),
    (["edit", "-i", "x", "--lines", "5:99"], "'--lines'", "lines 5:99 are outside the 6-line"),
    (["edit", "-i", "x", "--lines", "5:x"], "'--lines'", "expected A:B"),
])
def test_position_errors_name_the_flag_in_the_users_numbers(
        tmp_path: Path, args: list[str], flag: str, message: str) -> None:
    target = tmp_path / "m.py"
    target.write_text(SAMPLE)
    out = run(args[0], str(target), *args[1:])
    assert out.returncode == 2
    error = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and flag in error[0] and message in error[0], out.stderr


def test_screenshot_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a picture")
    out = run("screenshot", str(fake), "-o", str(tmp_path / "ui.py"))
    assert out.returncode == 2 and "not an image" in out.stderr
    assert not (tmp_path / "ui.py").exists()
    picture = tmp_path / "real.png"
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    real = run("screenshot", str(picture), "-o", str(tmp_path / "ui.py"), "--max-tokens", "4")
    # The embedded default model is text-only and says so; a vision model writes the file.
    if real.returncode == 0:
        assert (tmp_path / "ui.py").is_file()
    else:
        assert real.returncode == 2 and "image" in real.stderr
        assert not (tmp_path / "ui.py").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.org"])
def test_serve_refuses_a_public_address_without_a_token(host: str) -> None:
    # Checked in-process, before anything could be bound.
    with pytest.raises(ConfigError, match="token"):
        ServerConfig(host=host).check()
    ServerConfig(host=host, token="t").check()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_serve_needs_no_token_on_loopback(host: str) -> None:
    ServerConfig(host=host).check()
