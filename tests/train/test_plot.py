"""`cromwell train plot`: loss curves from a run folder, a clear refusal for anything else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def plot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cromwell_cli", "train", "plot", *args],
                          capture_output=True, text=True, timeout=120)


def test_plot_draws_a_run_folder(tmp_path: Path) -> None:
    stage = tmp_path / "stage3"
    stage.mkdir()
    rows = [{"step": s, "stage": 3, "loss": 5.0 / s, "lm": 4.0 / s, "jepa": 1.0 / s}
            for s in range(1, 6)]
    (stage / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = plot(str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["app.py", "empty", "metrics.jsonl"])
def test_plot_refuses_what_is_no_run(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    if name == "empty":
        target.mkdir()
    else:
        target.write_text("import os\n" if name == "app.py" else "")
    out = plot(str(target))
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "expected a run folder" in errors[0], out.stderr
    assert "Traceback" not in out.stderr
    assert not list(tmp_path.rglob("*.png"))
