"""bench/bench_kernels.py: a worker's progress lines reach the parent while it runs, apart
from its rows; a failing worker is an error carrying its stderr."""

from __future__ import annotations

import runpy
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "bench_kernels.py"


def test_worker_progress_comes_apart_from_its_rows() -> None:
    bench = runpy.run_path(str(SCRIPT))
    heard: list[str] = []
    rows = bench["run_worker"](1, numpy_only=True, progress=heard.append)
    assert heard == ["numpy matmul"]
    assert rows[0]["numpy_gflops"] > 0


def test_a_failing_worker_raises_with_its_stderr() -> None:
    bench = runpy.run_path(str(SCRIPT))
    with pytest.raises(subprocess.CalledProcessError) as caught:
        bench["run_worker"](1, numpy_only=True, extra_env={"PYTHONHOME": "/nonexistent"})
    assert caught.value.stderr
