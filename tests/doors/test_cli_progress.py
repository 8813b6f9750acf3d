"""Long commands show what they are doing on stderr when it is a terminal, and nothing when
it is not (a pipe, a log file)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from doors_helpers import cromwell_env


def run(argv: list[str], terminal: bool) -> tuple[int, str]:
    """(exit code, stderr) of `cromwell argv`, stderr a pseudo-terminal or a pipe."""
    command = [sys.executable, "-m", "cromwell_cli", *argv]
    env = cromwell_env() | {"COLUMNS": "120", "TERM": "xterm"}
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        return done.returncode, done.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the command ends
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=120), seen.decode(errors="replace")


def test_a_preview_shows_its_work_on_a_terminal_only(tmp_path: Path) -> None:
    argv = ["data", "preview", "chart", "--count", "1", "--out", str(tmp_path)]
    code, shown = run(argv, terminal=True)
    assert code == 0 and "making chart examples" in shown
    code, piped = run(argv, terminal=False)
    assert code == 0 and piped == ""


def test_bench_decode_names_the_model_it_measures(tmp_path: Path) -> None:
    model = tmp_path / "not-a-model.gguf"
    model.write_bytes(b"GGUF" + bytes(64))
    code, shown = run(["bench", "decode", "--model", str(model), "--threads", "1"], True)
    assert code == 1 and "not-a-model.gguf, 1 thread" in shown
    code, piped = run(["bench", "decode", "--model", str(model), "--threads", "1"], False)
    assert code == 1 and "not-a-model.gguf, 1 thread" not in piped
