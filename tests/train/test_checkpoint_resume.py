"""A run killed with SIGKILL after a checkpoint resumes exactly: the next losses equal those of
an uninterrupted run at the same steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from train_args import TINY_ARGS

from engine.config import config_from_dict, load_config
from engine.model.vljepa import VLJEPA
from engine.train.checkpoint import latest_checkpoint, list_checkpoints, load_weights
from engine.train.loop import TrainSettings, train
from engine.train.metrics import read_metrics

STEPS = 400  # the schedules span this; the runs below stop far earlier
SAVE_EVERY = 3


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine.train", *TINY_ARGS, "--stage", "3", "--out-dir",
            str(out), "--steps", str(STEPS), "--save-every", str(SAVE_EVERY),
            "--image-size", "32", *extra]


def _kill_after_first_checkpoint(out: Path) -> Path:
    proc = subprocess.Popen(_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while latest_checkpoint(out / "stage3") is None:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt = latest_checkpoint(out / "stage3")
    assert ckpt is not None
    return ckpt


def test_a_killed_run_resumes_with_the_same_next_losses(tmp_path):
    killed = tmp_path / "killed"
    ckpt = _kill_after_first_checkpoint(killed)
    k = int(ckpt.name.split("-")[1])
    until = k + 2
    done = subprocess.run(_cmd(killed, "--until", str(until)), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr

    straight = TrainSettings(config="cromwell-tiny", stage=3, out_dir=tmp_path / "straight",
                             steps=STEPS, until=until, batch_size=2, seq_len=16, lr=3e-3,
                             warmup_steps=0, save_every=SAVE_EVERY, image_size=32, threads=1,
                             progress=False)
    train(straight)

    resumed = read_metrics(killed / "stage3" / "metrics.jsonl")
    uninterrupted = read_metrics(tmp_path / "straight" / "stage3" / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, until + 1))
    for a, b in zip(resumed[k:], uninterrupted[k:], strict=True):
        assert a["step"] == b["step"]
        for key in ("loss", "lm", "jepa", "lr", "ema_momentum"):
            assert a[key] == b[key], (a["step"], key, a[key], b[key])
    # And the weights agree bit for bit at the end, EMA target included.
    final_a = load_file(str(latest_checkpoint(killed / "stage3") / "model.safetensors"))
    final_b = load_file(str(latest_checkpoint(tmp_path / "straight" / "stage3") /
                            "model.safetensors"))
    assert final_a.keys() == final_b.keys()
    assert any(k.startswith("target.") for k in final_a)
    for name, tensor in final_a.items():
        assert torch.equal(tensor, final_b[name]), name


def test_tied_embeddings_round_trip_through_a_checkpoint(tmp_path):
    import yaml

    from engine.config import resolve_config_path

    data = yaml.safe_load(resolve_config_path("cromwell-tiny").read_text())
    data["model"]["tie_word_embeddings"] = True
    cfg_path = tmp_path / "tied.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    summary = train(TrainSettings(config=str(cfg_path), stage=3, out_dir=tmp_path / "run",
                                  steps=2, save_every=2, batch_size=2, seq_len=16, threads=1,
                                  progress=False))
    cfg = config_from_dict(data).model
    model = VLJEPA(cfg)
    load_weights(model, Path(summary["checkpoint"]))
    assert model.lm_head.weight is model.language.embed.weight
    saved = load_file(str(Path(summary["checkpoint"]) / "model.safetensors"))
    name = "language.embed.weight" if "language.embed.weight" in saved else "lm_head.weight"
    assert torch.equal(model.language.embed.weight, saved[name])
    assert load_config("cromwell-tiny").model.tie_word_embeddings is False


def test_an_unfinished_checkpoint_folder_is_not_a_checkpoint(tmp_path):
    run = tmp_path / "stage3"
    (run / "step-00000004.tmp").mkdir(parents=True)
    (run / "step-00000002").mkdir()
    assert list_checkpoints(run) == [] and latest_checkpoint(run) is None
