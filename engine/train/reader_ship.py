"""Shipping a trained reader: a run's reader.npz copied to where the package takes it from
(engine/assets/reader.npz), its record completed from the run's own log, so the shipped file
says how it was made: the command, the step, the held-out CER at the last evaluation, the
CPU and the time it took.

    cromwell train reader --out runs/reader --ship engine/assets/reader.npz
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.machine import cpu_name
from engine.runtime.reader_file import ReaderFile, read_npz, write_npz


def run_record(metrics: Path) -> dict[str, Any]:
    """What the run's metrics.jsonl says about it: steps, seconds spent in steps, wall time
    between its first and last rows, the last held-out CER."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{metrics}: no training steps logged")
    evals = [r for r in rows if "heldout_cer" in r]
    first, last = (datetime.fromisoformat(rows[i]["time"].replace("Z", "+00:00"))
                   for i in (0, -1))
    return {"step": rows[-1]["step"], "lines": sum(r["lines"] for r in rows),
            "step_seconds": round(sum(r["seconds"] for r in rows)),
            "wall_seconds": round((last - first).total_seconds()),
            "started": rows[0]["time"], "finished": rows[-1]["time"],
            "heldout_cer": evals[-1]["heldout_cer"] if evals else None,
            "heldout_cer_step": evals[-1]["step"] if evals else None}


def ship(run: Path, dest: Path) -> dict[str, Any]:
    """run/reader.npz -> dest, with the record completed; returns the record."""
    stored = read_npz(run / "reader.npz")
    meta = {**stored.meta, **run_record(run / "metrics.jsonl"), "cpu": cpu_name(),
            "shipped": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_npz(ReaderFile(stored.config, meta, stored.arrays, str(dest)), dest)
    return meta
