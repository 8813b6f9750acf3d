"""Two CPU processes under torchrun (gloo; DDP, and FSDP with its sharded weights gathered for
the checkpoint): both ranks end with the same weights, which are the weights of the
checkpoint, and each rank read its own batches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_args import TINY_ARGS

from engine.config import load_config
from engine.model.vljepa import VLJEPA
from engine.train.checkpoint import latest_checkpoint, load_weights
from engine.train.distributed import param_digest
from engine.train.metrics import read_metrics

TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_gloo_processes_keep_identical_replicas(tmp_path, mode):
    cmd = [str(TORCHRUN), "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
           "-m", "engine.train", *TINY_ARGS, "--stage", "3", "--out-dir", str(tmp_path),
           "--steps", "2", "--save-every", "2", "--image-size", "32", "--parallel", mode,
           "--grad-accum", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "stage3"
    replicas = json.loads((run / "replicas.json").read_text())
    assert len(replicas["digests"]) == 2 and replicas["agree"] is True
    assert len(set(replicas["digests"])) == 1

    ckpt = latest_checkpoint(run)
    assert ckpt is not None and ckpt.name == "step-00000002"
    trainer = json.loads((ckpt / "trainer.json").read_text())
    assert trainer["world_size"] == 2 and trainer["parallel"] == mode
    model = VLJEPA(load_config("cromwell-tiny").model)
    load_weights(model, ckpt)
    assert param_digest(model) == replicas["digests"][0]
    # The weights moved: training happened, not just a broadcast of the initial weights.
    torch.manual_seed(0)
    assert param_digest(VLJEPA(load_config("cromwell-tiny").model)) != replicas["digests"][0]

    # Each rank kept its own data position: 2 steps x 2 micro-steps.
    for rank in (0, 1):
        state = torch.load(ckpt / f"rank-{rank}.pt", weights_only=False)
        assert state["data"] == {"index": 4}
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
