"""Metrics as JSON lines (one object per logged step) and the progress bar.

A resumed run first drops the lines past its checkpoint, which a killed run may have written,
so the file always describes one unbroken run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            path.write_text("")
        elif path.is_file():
            kept = [line for line in read_metrics(path) if line["step"] <= resume_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics file")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill
    return rows


class ProgressBar:
    """Loss, tokens/s and ETA on stderr (rank 0 only); a no-op when disabled."""

    def __init__(self, total: int, start: int, enabled: bool, label: str) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        if not enabled:
            return
        self.progress = Progress(
            TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[tps]:,.0f} tok/s"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        self.task = self.progress.add_task(label, total=total, completed=start, loss=float("nan"),
                                           tps=0.0)
        self.progress.start()

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step, loss=loss, tps=tokens_per_s)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
