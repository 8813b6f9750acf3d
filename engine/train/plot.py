"""Loss curves of a run as a PNG: total, LM and JEPA loss per step, stages one after another.

    cromwell train plot runs/a --out runs/a/loss.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.train.metrics import METRICS_FILE, read_metrics


def metrics_files(run: Path) -> list[Path]:
    """A metrics file itself, or every stage's metrics under a run folder, in stage order."""
    if run.is_file():
        return [run]
    found = sorted(run.glob(f"stage*/{METRICS_FILE}")) or sorted(run.glob(METRICS_FILE))
    if not found:
        raise FileNotFoundError(f"{run}: expected a run folder (OUT_DIR, with stage*/"
                                f"{METRICS_FILE}) or a {METRICS_FILE}; found neither")
    return found


def loss_rows(run: Path) -> list[list[dict[str, Any]]]:
    """Each stage's rows that carry a step and a loss; an error naming what was expected when
    there are none (a source file or an empty folder would draw an empty picture)."""
    stages = []
    for path in metrics_files(run):
        try:
            rows = read_metrics(path)
        except (UnicodeDecodeError, IsADirectoryError):
            rows = []
        rows = [r for r in rows if isinstance(r, dict) and "step" in r and "loss" in r]
        if rows:
            stages.append(rows)
    if not stages:
        raise FileNotFoundError(f"{run}: expected a run folder (OUT_DIR, with stage*/"
                                f"{METRICS_FILE}) or a {METRICS_FILE}; found no loss rows")
    return stages


def plot_run(run: Path, out: Path) -> Path:
    stages = loss_rows(run)  # before matplotlib: a wrong path writes nothing
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    offset = 0
    for rows in stages:
        steps = [offset + r["step"] for r in rows]
        # A fine-tuning run has no stages: its curve is named by the loss alone.
        stage = f"stage {rows[0]['stage']} " if "stage" in rows[0] else ""
        for key, style in (("loss", "-"), ("lm", "--"), ("jepa", ":")):
            if all(key in r for r in rows):
                ax.plot(steps, [r[key] for r in rows], style, label=f"{stage}{key}")
        offset = steps[-1]
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"training loss: {run}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cromwell train plot",
                                     description="Draw a run's loss curves as a PNG.")
    parser.add_argument("run", type=Path, help="run folder (OUT_DIR) or a metrics.jsonl")
    parser.add_argument("--out", type=Path, default=None,
                        help="PNG path (default: RUN/loss.png)")
    ns = parser.parse_args(argv)
    out = ns.out or (ns.run if ns.run.is_dir() else ns.run.parent) / "loss.png"
    try:
        print(plot_run(ns.run, out))
    except FileNotFoundError as err:
        parser.error(str(err))
    return 0
