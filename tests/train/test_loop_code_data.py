"""The loop on the real data pipeline: code from a folder (text, FIM and edit examples, and
screenshots of it), Cromwell's BPE, a tiny model with that vocabulary; the data position is
part of the checkpoint, so a resumed run reads on exactly where it stopped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch
import yaml

from engine.config import resolve_config_path
from engine.train.checkpoint import read_trainer
from engine.train.loop import TrainSettings, train
from engine.train.metrics import read_metrics

SOURCES = {
    "geometry.py": '''
        import math


        def area(radius: float) -> float:
            """Area of a circle."""
            return math.pi * radius * radius


        def perimeter(radius: float) -> float:
            return 2 * math.pi * radius


        class Rectangle:
            def __init__(self, width: float, height: float) -> None:
                self.width = width
                self.height = height

            def area(self) -> float:
                return self.width * self.height
        ''',
    "text_tools.py": '''
        def words(text: str) -> list[str]:
            """Split on whitespace, dropping empty pieces."""
            return [w for w in text.split() if w]


        def count_lines(text: str) -> int:
            total = 0
            for line in text.splitlines():
                if line.strip():
                    total += 1
            return total


        def title_case(text: str) -> str:
            return " ".join(w.capitalize() for w in words(text))
        ''',
}


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    code = tmp_path / "code"
    code.mkdir()
    for name, text in SOURCES.items():
        (code / name).write_text(textwrap.dedent(text).lstrip())
    data = yaml.safe_load(resolve_config_path("cromwell-tiny").read_text())
    data["model"]["language"]["vocab_size"] = 50_000  # Cromwell's BPE
    cfg = tmp_path / "tiny-bpe.yaml"
    cfg.write_text(yaml.safe_dump(data))
    return code, cfg


def _settings(out: Path, code: Path, cfg: Path, until: int) -> TrainSettings:
    return TrainSettings(config=str(cfg), stage=3, out_dir=out, steps=20, until=until,
                         batch_size=2, seq_len=32, save_every=2, lr=1e-3, warmup_steps=0,
                         data="code", tokenizer="cromwell-bpe", data_folders=str(code),
                         data_stdlib=False, data_workers=0, max_image_side=256, threads=1,
                         progress=False)


def test_code_data_trains_and_resumes_at_its_position(tmp_path):
    code, cfg = _setup(tmp_path)
    train(_settings(tmp_path / "a", code, cfg, until=2))
    summary = train(_settings(tmp_path / "a", code, cfg, until=4))  # resumes from step 2
    straight = train(_settings(tmp_path / "b", code, cfg, until=4))
    trainer = read_trainer(Path(summary["checkpoint"]))
    assert trainer["data"] == "code" and trainer["tokenizer"] == "cromwell-bpe"
    a = read_metrics(tmp_path / "a" / "stage3" / "metrics.jsonl")
    b = read_metrics(tmp_path / "b" / "stage3" / "metrics.jsonl")
    assert [r["step"] for r in a] == [1, 2, 3, 4]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert straight["loss"] == summary["loss"]
    # Stage 3 reads a batch of code screenshots every 4th batch: step 4's was one.
    state = torch.load(Path(summary["checkpoint"]) / "rank-0.pt", weights_only=False)["data"]
    assert state["count"] == 4 and state["vision"]["offset"] >= 1

    # The exported file carries the vocabulary the model was trained with.
    import gguf

    from engine.tokenizers.pretokenizers import CROMWELL_PRE
    from engine.train.export import export_checkpoint

    reader = gguf.GGUFReader(export_checkpoint(Path(summary["checkpoint"]),
                                               tmp_path / "bpe.gguf", "F16"))
    assert len(reader.fields["tokenizer.ggml.tokens"].contents()) == 50_000
    assert reader.fields["tokenizer.ggml.pre"].contents() == CROMWELL_PRE
