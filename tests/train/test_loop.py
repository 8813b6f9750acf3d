"""The training loop on cromwell-tiny: every stage learns, stages chain, bad settings fail."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from engine.config import load_config
from engine.model.vljepa import VLJEPA
from engine.train.checkpoint import read_trainer
from engine.train.curriculum import STAGES, apply_stage, get_stage
from engine.train.distributed import enable_gradient_checkpointing
from engine.train.loop import TrainSettings, train
from engine.train.metrics import read_metrics
from engine.train.objective import batch_losses
from engine.train.smoke_batches import SyntheticBatches


def tiny_settings(out: Path, stage: int, steps: int, **kw: object) -> TrainSettings:
    base = dict(config="cromwell-tiny", stage=stage, out_dir=out, steps=steps, batch_size=2,
                seq_len=16, lr=1e-2, warmup_steps=0, min_lr_ratio=1.0, save_every=steps,
                threads=1, progress=False)
    base.update(kw)
    return TrainSettings(**base)  # type: ignore[arg-type]


def test_every_stage_lowers_the_loss_on_a_fixed_batch_and_starts_from_the_last(tmp_path):
    cfg = load_config("cromwell-tiny").model
    fixed = SyntheticBatches(cfg.language.vocab_size, 2, 16, seed=3, image_size=32).batch(0)
    for stage in STAGES:
        summary = train(tiny_settings(tmp_path, stage, steps=6), batches=itertools.repeat(fixed))
        rows = read_metrics(Path(summary["metrics"]))
        assert [r["step"] for r in rows] == list(range(1, 7))
        assert rows[-1]["loss"] < rows[0]["loss"] - 1e-3, (stage, rows[0], rows[-1])
        trainer = read_trainer(Path(summary["checkpoint"]))
        if stage > 1:  # each stage starts from the previous stage's last checkpoint
            assert trainer["started_from"].endswith(f"stage{stage - 1}/step-00000006")
        assert set(trainer["trained_parts"]) >= set(get_stage(stage).trains)


def test_stage_table_freezes_the_language_path_in_stage_1():
    model = VLJEPA(load_config("cromwell-tiny").model)
    names = apply_stage(model, get_stage(1))
    assert names and all(n.split(".")[0] in ("vision", "fusion", "jepa") for n in names)
    assert not any(p.requires_grad for n, p in model.named_parameters()
                   if n.startswith(("language.", "ar_head.", "lm_head.", "target.")))
    names = apply_stage(model, get_stage(2))
    assert {n.split(".")[0] for n in names} == {"language", "ar_head", "lm_head"}


def test_gradient_checkpointing_gives_the_same_gradients():
    cfg = load_config("cromwell-tiny").model
    batch = SyntheticBatches(cfg.language.vocab_size, 2, 16, image_size=32).batch(0)
    grads = []
    for checkpointed in (False, True):
        torch.manual_seed(0)
        model = VLJEPA(cfg)
        if checkpointed:
            assert enable_gradient_checkpointing(model) > 0
        batch_losses(model, batch, 0.3, 0.7).total.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("change, message", [
    ({"stage": 7}, "stage must be one of"),
    ({"until": 99}, "until must be in"),
    ({"precision": "fp8"}, "precision must be one of"),
    ({"parallel": "tp"}, "parallel mode must be one of"),
])
def test_bad_settings_fail_with_a_clear_message(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        settings = tiny_settings(tmp_path, 3, steps=2)
        for key, value in change.items():
            setattr(settings, key, value)
        train(settings)


def test_cli_trains_plots_and_reports_bad_settings(tmp_path):
    from click.testing import CliRunner

    from cromwell_cli.main import main

    args = ["train", "--config", "cromwell-tiny", "--out-dir", str(tmp_path), "--steps", "2",
            "--batch-size", "2", "--seq-len", "16", "--threads", "1", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stage3" / "step-00000002" / "model.safetensors").is_file()

    result = CliRunner().invoke(main, ["train", "plot", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = CliRunner().invoke(main, [*args, "--stage", "9"])
    assert result.exit_code == 2 and "stage must be one of 1, 2, 3, 4" in result.output
