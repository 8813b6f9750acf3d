"""Fine-tuning of the text path: real rows from the training split (the real tokenizer, the
ghost pipeline's layout, the product's edit prompt, HumanEval's chat turn), a small model of the
real vocabulary: a few steps lower the loss on a fixed batch of each kind, and a run stopped and
resumed continues with the same losses as one that never stopped."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from training_files import instruction_pool, some_training_files

import engine.runtime
from engine.train.adapter import ADAPTER_FILE, Adapter, save_adapter
from engine.train.fim_rows import FIM_TOKENS, FimRows
from engine.train.finetune import (
    FinetuneSettings,
    build_optimizer,
    run,
    settings_of,
    train_step,
)
from engine.train.instruct_pool import load_pool
from engine.train.mixed_rows import KINDS, MixedRows
from engine.train.text_model import TextModel


@pytest.fixture(scope="module")
def rows() -> FimRows:
    return FimRows(engine.runtime.load(None).tokenizer, some_training_files(), seed=0)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return instruction_pool(tmp_path_factory.mktemp("pool"))


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


@pytest.mark.parametrize("kind", KINDS)
def test_a_few_steps_lower_the_loss_on_a_fixed_batch_of_each_kind(rows: FimRows, pool: Path,
                                                                  kind: str) -> None:
    only = MixedRows(rows.tokenizer, rows.files, 0, [float(k == kind) for k in KINDS],
                     instruct_pool=load_pool(pool))
    model = small_model(rows)
    opt = build_optimizer(model, FinetuneSettings(lr=3e-2, rows_lr=3e-2))
    batch, _ = only.batch(0, 2, 512)
    assert all(only.kind(i) == kind for i in range(20))
    first, _, by_kind = train_step(model, opt, batch, bf16=False, kind_of=only.kind)
    assert by_kind == {kind: pytest.approx(first, rel=1e-4)}
    for _ in range(12):
        last, _, _ = train_step(model, opt, batch, bf16=False)
    assert last < first - 0.5


def test_a_mixed_batch_logs_each_kinds_loss(rows: FimRows) -> None:
    mixed = MixedRows(rows.tokenizer, rows.files, 0)
    model = small_model(rows)
    opt = build_optimizer(model, FinetuneSettings())
    batch, _ = mixed.batch(0, 2, 512)
    loss, scored, by_kind = train_step(model, opt, batch, bf16=False, kind_of=mixed.kind)
    docs = batch["docs"][batch["labels"] >= 0].tolist()
    counts = {k: sum(mixed.kind(d) == k for d in docs) for k in by_kind}
    assert len(by_kind) >= 2 and sum(counts.values()) == scored
    # The kinds' means, weighted by their token counts, are the batch's mean.
    assert sum(by_kind[k] * counts[k] for k in by_kind) / scored == pytest.approx(loss, rel=1e-3)


def test_resume_after_a_stop_continues_with_the_same_losses(rows: FimRows,
                                                            tmp_path: Path) -> None:
    mixed = MixedRows(rows.tokenizer, rows.files, 0)

    def settings(out: Path, resume: bool = False) -> FinetuneSettings:
        return FinetuneSettings(out=str(out), steps=6, rows=2, row_len=512, lr=5e-3,
                                warmup=2, checkpoint_every=3, bf16=False, resume=resume,
                                threads=1)

    straight = run(settings(tmp_path / "a"), mixed, small_model(rows))["losses"]
    stopped = run(replace(settings(tmp_path / "b"), stop_after=3), mixed, small_model(rows))
    assert stopped["step"] == 3 and (tmp_path / "b" / "checkpoint.pt").is_file()
    resumed = run(settings(tmp_path / "b", resume=True), mixed, small_model(rows))
    assert resumed["step"] == 6
    assert stopped["losses"] == pytest.approx(straight[:3], rel=1e-6)
    assert resumed["losses"] == pytest.approx(straight[3:], rel=1e-6)
    with pytest.raises(ValueError, match="--resume"):
        run(settings(tmp_path / "a"), mixed, small_model(rows))


def first_phase(rows: FimRows, out: Path, steps: int) -> FinetuneSettings:
    """The first `steps` steps of a 4-step run in `out`, checkpointed at their end."""
    first = FinetuneSettings(out=str(out), steps=4, rows=2, row_len=512, lr=5e-3, warmup=1,
                             checkpoint_every=steps, bf16=False, threads=1, stop_after=steps)
    run(first, MixedRows(rows.tokenizer, rows.files, 0), small_model(rows))
    return first


def test_a_resume_changes_the_mix_only_when_asked_and_records_it(rows: FimRows,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "run"
    first_phase(rows, out, 2)

    kept = settings_of(["--out", str(out), "--resume", "--steps", "6", "--lr", "0.5"])
    assert (kept.steps, kept.lr, kept.mix, kept.resume) == (6, 5e-3, "0.5,0.3,0.2", True)
    with pytest.raises(ValueError, match="--mix"):
        run(replace(kept, mix="1,x,0"), MixedRows(rows.tokenizer, rows.files, 0),
            small_model(rows))
    assert json.loads((out / "settings.json").read_text())["mix"] == "0.5,0.3,0.2"

    # A copy of the run folder resumes itself, not the folder it was copied from.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert settings_of(["--out", str(copy), "--resume"]).out == str(copy)

    phase = settings_of(["--out", str(out), "--resume", "--steps", "4", "--mix", "0,0,1"])
    assert phase.mix == "0,0,1"
    run(phase, MixedRows(rows.tokenizer, rows.files, 0, (0, 0, 1)), small_model(rows))
    saved = json.loads((out / "settings.json").read_text())
    assert (saved["mix"], saved["lr"]) == ("0,0,1", 5e-3)
    # A later resume, without --mix, draws as the last phase did.
    assert settings_of(["--out", str(out), "--resume"]).mix == "0,0,1"
    record = [json.loads(line) for line in (out / "invocations.jsonl").read_text().splitlines()]
    assert [(r["from_step"], r["to_step"], r["mix"]) for r in record] == [
        (0, 2, "0.5,0.3,0.2"), (2, 4, "0,0,1")]


def test_file_window_rows_are_the_editors_own_prompt_over_the_whole_file(rows: FimRows) -> None:
    import random

    from engine.runtime.prompt_window import Cursor, layout
    from engine.train.fim_rows import FILE_EXAMPLE_TOKENS, MAX_EXAMPLE_TOKENS, cut

    long = FimRows(rows.tokenizer, rows.files, seed=0, window="file")
    sizes = [sum(map(len, long.example(i))) for i in range(12)]
    assert max(sizes) <= FILE_EXAMPLE_TOKENS and max(sizes) > MAX_EXAMPLE_TOKENS
    # Example 4 rebuilt by hand: the cut over the whole text, laid out as the ghost pipeline
    # lays out the file for the editor (its window trims what is shown).
    rng = random.Random("0:4")
    while True:
        path, text = long.files[rng.randrange(len(long.files))]
        c = cut(text, rng, whole_file=True)
        if c is not None and c.middle.strip():
            break
    lines = c.document.split("\n")
    assert len(lines) == len(text.split("\n")) - c.middle.count("\n")
    prompt = layout(long.fim, Cursor.at(c.document, c.line, c.column), [long.repo],
                    long.fim.file_head(long.tokenizer, path), long.window, long.blocks, None).ids
    assert long.example(4)[0] == prompt
    with pytest.raises(ValueError, match=str(FILE_EXAMPLE_TOKENS)):
        long.batch(0, 1, 1024)
    with pytest.raises(ValueError, match="window"):
        FimRows(rows.tokenizer, rows.files, seed=0, window="page")


def test_a_phase_may_draw_fim_over_the_file_and_it_is_recorded(rows: FimRows,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = first_phase(rows, out, 1)
    with pytest.raises(ValueError, match="--fim-window"):
        run(replace(first, resume=True, fim_window="page"), None, small_model(rows))
    assert json.loads((out / "settings.json").read_text())["fim_window"] == "excerpt"

    phase = settings_of(["--out", str(out), "--resume", "--fim-window", "file",
                         "--row-len", "2560", "--rows", "1"])
    assert (phase.fim_window, phase.row_len, phase.rows, phase.lr) == ("file", 2560, 1, 5e-3)
    run(replace(phase, stop_after=1), MixedRows(rows.tokenizer, rows.files, 0,
                                                fim_window="file"), small_model(rows))
    saved = json.loads((out / "settings.json").read_text())
    assert (saved["fim_window"], saved["row_len"], saved["rows"]) == ("file", 2560, 1)
    assert settings_of(["--out", str(out), "--resume"]).fim_window == "file"
    record = [json.loads(line) for line in (out / "invocations.jsonl").read_text().splitlines()]
    assert [(r["from_step"], r["fim_window"], r["row_len"]) for r in record] == [
        (0, "excerpt", 512), (1, "file", 2560)]


def test_an_instruction_share_needs_a_pool_and_the_pool_is_recorded(rows: FimRows, pool: Path,
                                                                   tmp_path: Path) -> None:
    base = FinetuneSettings(out=str(tmp_path / "run"), steps=2, rows=2, row_len=512,
                            checkpoint_every=2, bf16=False, threads=1, mix="0,0.5,0,0.5")
    with pytest.raises(ValueError, match="--instruct-pool"):
        run(base, MixedRows(rows.tokenizer, rows.files, 0), small_model(rows))
    with pytest.raises(ValueError, match="--instruct-pool"):
        run(replace(base, instruct_pool=str(tmp_path / "missing.jsonl")),
            MixedRows(rows.tokenizer, rows.files, 0), small_model(rows))
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with_pool = replace(base, instruct_pool=str(pool))
    mixed = MixedRows(rows.tokenizer, rows.files, 0, (0, 0.5, 0, 0.5),
                      instruct_pool=load_pool(pool))
    assert {mixed.kind(i) for i in range(40)} == {"edit", "instruct"}
    run(with_pool, mixed, small_model(rows))
    record = json.loads((tmp_path / "run" / "invocations.jsonl").read_text())
    assert record["instruct_pool"] == str(pool) and len(record["instruct_pool_sha256"]) == 64


def test_a_new_run_can_start_from_an_adapter(rows: FimRows, tmp_path: Path) -> None:
    trained = small_model(rows)
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.normal_(0, 0.05)
    path = save_adapter(trained, tmp_path / ADAPTER_FILE, {})
    settings = FinetuneSettings(out=str(tmp_path / "run"), steps=1, rows=2, row_len=512,
                                rank=4, alpha=8.0, checkpoint_every=1, bf16=False, threads=1,
                                lr=0.0, rows_lr=0.0, init_adapter=str(path))
    fresh = small_model(rows)
    run(settings, MixedRows(rows.tokenizer, rows.files, 0), fresh)
    # A step at learning rate 0 leaves the adapter where it started: the one given (as
    # stored: float16 pairs, float32 rows).
    given = Adapter(path)
    for name, layer in fresh.adapters().items():
        a, b = given.pairs[name]
        assert torch.equal(layer.lora_A, torch.from_numpy(a)), name
        assert torch.equal(layer.lora_B, torch.from_numpy(b)), name
    assert given.new_rows is not None and torch.equal(fresh.new_rows,
                                                      torch.from_numpy(given.new_rows))
    assert not torch.equal(fresh.new_rows, small_model(rows).new_rows)
    assert Adapter(tmp_path / "run" / ADAPTER_FILE).pairs.keys() == given.pairs.keys()
    with pytest.raises(ValueError, match="--rank 4 --alpha 8"):
        run(replace(settings, out=str(tmp_path / "other"), rank=8, alpha=16.0),
            MixedRows(rows.tokenizer, rows.files, 0), small_model(rows))
