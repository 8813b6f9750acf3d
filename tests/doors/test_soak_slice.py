"""A slice of `make soak` (bench/soak.py): 20 mixed requests from 2 clients, abandoned ones
among them, against a real `cromwell serve`, and 5 applies killed with SIGKILL. None lost, no
5xx, every status the one expected, every file old or new, no staged file after the next
apply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from doors_helpers import REPO, cromwell_env


def test_soak_slice(tmp_path: Path) -> None:
    report_path = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--clients", "2", "--requests", "10",
         "--kill-trials", "5", "--files", "10", "--file-bytes", "50000", "--deadline", "400",
         "--json", str(report_path)],
        env=cromwell_env(), capture_output=True, text=True, timeout=600,
    )
    assert report_path.is_file(), done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    http, kill = report["http"], report["kill"]
    assert http["requests"] == 20
    assert sum(http["outcomes"].values()) == 20
    assert http["lost"] == 0 and http["server_errors"] == 0, http["examples"]
    assert http["unexpected_status"] == 0, http["examples"]
    # Every kind of request was sent and answered (or, abandoned, hung up on).
    kinds = {key.split()[0] for key in http["outcomes"]}
    assert kinds == {"health", "context", "complete", "edit", "bad", "abandon"}
    assert http["health_after"]["status"] == "ok"
    assert kill["trials"] == 5
    assert kill["neither_old_nor_new"] == [] and kill["stray_after_next_apply"] == []
    assert all(report["goals"].values()) and done.returncode == 0, report["goals"]
