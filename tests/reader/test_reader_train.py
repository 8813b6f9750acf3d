"""Training the reader: CTC steps lower the loss on a fixed batch of real rendered lines, and a
stopped run resumes with the same stream and weights as one that never stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.data.reader_lines import LineStream, training_files
from engine.model.reader import LineReader, ReaderConfig
from engine.train import reader as train_reader


@pytest.fixture(scope="module")
def files() -> list[tuple[str, str]]:
    return training_files()[:40]


def test_steps_lower_the_ctc_loss_on_a_fixed_batch(files: list[tuple[str, str]]) -> None:
    torch.manual_seed(0)
    lines = LineStream(files, seed=5).batch(8)
    assert all(line.text for line in lines[:1]) and len(lines) == 8
    batch = train_reader.collate(lines)
    model = LineReader(ReaderConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    with torch.no_grad():
        before = float(train_reader.ctc_loss(model, batch))
    for _ in range(25):
        opt.zero_grad()
        loss = train_reader.ctc_loss(model, batch)
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(train_reader.ctc_loss(model, batch))
    assert after < 0.6 * before


def test_resume_continues_exactly(tmp_path: Path, files: list[tuple[str, str]]) -> None:
    def settings(out: Path, resume: bool) -> train_reader.ReaderSettings:
        return train_reader.ReaderSettings(out=str(out), steps=4, batch=4, warmup=2,
                                           checkpoint_every=2, eval_lines=0, resume=resume)

    straight = train_reader.run(settings(tmp_path / "a", False), files=files, eval_set=[])
    train_reader.run(settings(tmp_path / "b", False), files=files, eval_set=[], stop_after=2)
    resumed = train_reader.run(settings(tmp_path / "b", True), files=files, eval_set=[])
    assert resumed["step"] == straight["step"] == 4
    assert resumed["losses"] == pytest.approx(straight["losses"][2:], rel=1e-5)
    a = torch.load(tmp_path / "a" / train_reader.CHECKPOINT, weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / train_reader.CHECKPOINT, weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert (tmp_path / "b" / train_reader.WEIGHTS).stat().st_size > 0
    assert (tmp_path / "b" / "loss.png").stat().st_size > 0


def test_a_finished_folder_is_not_overwritten(tmp_path: Path,
                                              files: list[tuple[str, str]]) -> None:
    s = train_reader.ReaderSettings(out=str(tmp_path), steps=1, batch=2, eval_lines=0)
    train_reader.run(s, files=files, eval_set=[])
    with pytest.raises(ValueError, match="already holds a run"):
        train_reader.run(s, files=files, eval_set=[])


def test_ship_records_how_the_weights_were_made(tmp_path: Path,
                                                files: list[tuple[str, str]]) -> None:
    from engine.runtime.reader_file import read_npz

    run = tmp_path / "run"
    s = train_reader.ReaderSettings(out=str(run), steps=2, batch=2, eval_lines=0)
    train_reader.run(s, files=files, eval_set=[])
    dest = tmp_path / "assets" / "reader.npz"
    assert train_reader.main(["--out", str(run), "--ship", str(dest)]) == 0
    shipped, trained = read_npz(dest), read_npz(run / train_reader.WEIGHTS)
    assert shipped.meta["step"] == 2 and shipped.meta["lines"] == 4
    assert shipped.meta["cpu"] and shipped.meta["step_seconds"] >= 0
    assert shipped.meta["heldout_cer"] is None  # no evaluation in this run
    assert shipped.config == trained.config
    assert all((shipped.arrays[k] == trained.arrays[k]).all() for k in trained.arrays)
    # A folder that holds no run is one line on stderr, nothing written.
    assert train_reader.main(["--out", str(tmp_path / "none"), "--ship",
                              str(tmp_path / "x.npz")]) == 2
    assert not (tmp_path / "x.npz").exists()


def test_a_run_can_start_from_shipped_weights(tmp_path: Path,
                                              files: list[tuple[str, str]]) -> None:
    from engine.runtime.reader_file import read_npz

    first = tmp_path / "first"
    train_reader.run(train_reader.ReaderSettings(out=str(first), steps=1, batch=2,
                                                 eval_lines=0), files=files, eval_set=[])
    shipped = first / train_reader.WEIGHTS
    model = train_reader.initial_model(str(shipped))
    stored = read_npz(shipped)
    for name, value in model.state_dict().items():
        assert (value.numpy().astype("float16") == stored.arrays[name]).all(), name
    second = tmp_path / "second"
    train_reader.run(train_reader.ReaderSettings(out=str(second), steps=1, batch=2, seed=1,
                                                 eval_lines=0, init=str(shipped)),
                     files=files, eval_set=[])
    assert read_npz(second / train_reader.WEIGHTS).meta["init"]["step"] == 1
    with pytest.raises(ValueError, match="not a reader weights file"):
        train_reader.initial_model(str(tmp_path / "missing.npz"))
