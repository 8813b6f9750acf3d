"""FIM fine-tuning of the text path: real rows from the training split (the real tokenizer,
the ghost pipeline's layout), a small model of the real vocabulary: a few steps lower the loss
on a fixed batch, and a run stopped and resumed continues with the same losses as one that
never stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import engine.runtime
from engine.train.fim_rows import FIM_TOKENS, FimRows
from engine.train.finetune import FinetuneSettings, build_optimizer, run, train_step
from engine.train.text_model import TextModel


def some_training_files(n: int = 8) -> list[tuple[str, str]]:
    from engine.data.corpus import indexable_text, stdlib_source
    from engine.data.split import is_heldout

    source = stdlib_source()
    files = []
    for rel in sorted(source.relpaths):
        if rel.endswith(".py") and not is_heldout(rel):
            text = indexable_text(Path(source.root) / rel)
            if text and len(text) > 2000:
                files.append((rel, text))
        if len(files) == n:
            break
    return files


@pytest.fixture(scope="module")
def rows() -> FimRows:
    return FimRows(engine.runtime.load(None).tokenizer, some_training_files(), seed=0)


def small_model(rows: FimRows) -> TextModel:
    torch.manual_seed(0)
    vocab = rows.tokenizer.vocab_size
    model = TextModel(vocab, 64, 2, 4, 2, 128, 1e-5, 10000.0, max_len=1024)
    with torch.no_grad():
        model.embed.normal_(0, 0.3)  # logits that hidden states can move
        for name, p in model.named_parameters():
            if p.dim() == 2 and name != "embed":
                p.normal_(0, 0.02)
    model.add_lora(4, 8.0)
    model.train_new_rows(rows.tokenizer.token_to_id(FIM_TOKENS[0]))
    return model


def test_rows_are_psm_prompts_scored_on_the_middle_only(rows: FimRows) -> None:
    batch, following = rows.batch(0, 2, 512)
    tok = rows.tokenizer
    ids = batch["tokens"][0].tolist()
    assert ids.count(tok.token_to_id("<fim_middle>")) >= 1
    scored = batch["labels"] >= 0
    assert 0 < scored.sum() < batch["tokens"].numel() // 2
    # Each scored position is followed by its label: the loss is on the target tokens.
    r, c = scored.nonzero()[0].tolist()
    assert batch["tokens"][r, c + 1] == batch["labels"][r, c]
    assert following > 1 and rows.batch(0, 2, 512)[1] == following  # deterministic


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(rows: FimRows) -> None:
    model = small_model(rows)
    opt = build_optimizer(model, FinetuneSettings(lr=3e-2, rows_lr=3e-2))
    batch, _ = rows.batch(0, 2, 512)
    first, _ = train_step(model, opt, batch, bf16=False)
    for _ in range(12):
        last, _ = train_step(model, opt, batch, bf16=False)
    assert last < first - 0.5


def test_resume_after_a_stop_continues_with_the_same_losses(rows: FimRows,
                                                            tmp_path: Path) -> None:
    def settings(out: Path, resume: bool = False) -> FinetuneSettings:
        return FinetuneSettings(out=str(out), steps=6, rows=2, row_len=512, lr=5e-3,
                                warmup=2, checkpoint_every=3, bf16=False, resume=resume,
                                threads=1)

    straight = run(settings(tmp_path / "a"), rows, small_model(rows))["losses"]
    stopped = run(settings(tmp_path / "b"), rows, small_model(rows), stop_after=3)
    assert stopped["step"] == 3 and (tmp_path / "b" / "checkpoint.pt").is_file()
    resumed = run(settings(tmp_path / "b", resume=True), rows, small_model(rows))
    assert resumed["step"] == 6
    assert stopped["losses"] == pytest.approx(straight[:3], rel=1e-6)
    assert resumed["losses"] == pytest.approx(straight[3:], rel=1e-6)
    with pytest.raises(ValueError, match="--resume"):
        run(settings(tmp_path / "a"), rows, small_model(rows))
