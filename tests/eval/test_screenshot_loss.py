"""The teacher-forced reading probe on a real (tiny) training checkpoint: every held-out target
token is scored, in each of the three modes; with the fusion gates still closed the picture
cannot matter, so the three losses agree."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import yaml

from engine.config import resolve_config_path
from engine.eval.screenshot import MODES, heldout_tasks
from engine.eval.screenshot_loss import main, reading_losses
from engine.train.loop import TrainSettings, train
from engine.train.tokenizer_choice import load_tokenizer


def _checkpoint(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "circle.py").write_text(textwrap.dedent('''
        import math


        def area(radius: float) -> float:
            return math.pi * radius * radius


        def perimeter(radius: float) -> float:
            return 2 * math.pi * radius
        ''').lstrip())
    data = yaml.safe_load(resolve_config_path("cromwell-tiny").read_text())
    data["model"]["language"]["vocab_size"] = 50_000  # Cromwell's BPE
    cfg = tmp_path / "tiny-bpe.yaml"
    cfg.write_text(yaml.safe_dump(data))
    # One step at a vanishing rate: trained weights in a real checkpoint, gates still ~0.
    summary = train(TrainSettings(
        config=str(cfg), stage=1, out_dir=tmp_path / "run", steps=1, batch_size=1, seq_len=64,
        lr=1e-9, warmup_steps=0, data="code", tokenizer="cromwell-bpe", data_folders=str(code),
        data_stdlib=False, data_workers=0, max_image_side=256, vision_every=1, threads=1,
        progress=False))
    return Path(summary["checkpoint"])


def test_the_probe_scores_every_target_token_in_every_mode(tmp_path, capsys) -> None:
    ckpt = _checkpoint(tmp_path)
    report = reading_losses(ckpt, limit=2)
    tok, _ = load_tokenizer("cromwell-bpe", 50_000)
    expected = sum(len(tok.encode(t.shot.text)) + 1 for t in heldout_tasks(2))  # + eos
    assert report["target_tokens"] == expected and report["step"] == 1
    losses = report["loss_per_token"]
    assert set(losses) == set(MODES)
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    assert math.isclose(losses["image"], losses["no_image"], abs_tol=1e-3)
    assert math.isclose(losses["blank_image"], losses["no_image"], abs_tol=1e-3)

    assert main(["--checkpoint", str(tmp_path / "missing")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
