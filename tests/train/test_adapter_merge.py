"""An adapter merged into cromwell-smol's GGUF (what `cromwell models fetch` ships) gives the
logits the adapter gives on the fly over the unmerged file, on the tasks it was trained for
(infill, edit), while every other request keeps the base's own weights; the merged file
declares its FIM ids, and the build is deterministic. Needs SmolLM2 in the cache
(`make setup`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.runtime.model_store import SMOLLM2_135M, cached_path

SOURCE = cached_path(SMOLLM2_135M)
pytestmark = pytest.mark.skipif(not SOURCE.is_file(), reason="SmolLM2 not in the cache")


def random_adapter(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.train.adapter import save_adapter

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in model.adapters().values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.2)
        model.new_rows.add_(torch.randn(model.new_rows.shape, generator=gen) * 0.05)
    save_adapter(model, path, {"seed": 1})


def logits(model, ids: list[int]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    t = torch.tensor([ids])
    with torch.no_grad():
        h = model.hidden(t, torch.arange(len(ids))[None], torch.zeros_like(t))
        return model.head(h[0]).float()


def test_merged_file_gives_the_on_the_fly_logits(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import engine.runtime
    from engine.runtime.decoder_weights import TUNED_PREFIX
    from engine.runtime.model_store import cromwell_smol_path
    from engine.runtime.reader_file import file_sha256
    from engine.train import export
    from engine.train.adapter import Adapter, load_into_text_model
    from engine.train.export import build_cromwell_smol, smol_adapter_sha
    from engine.train.text_model import load_text_model

    base_path = build_cromwell_smol(tmp_path / "base.gguf", SOURCE)
    torch.manual_seed(0)
    on_the_fly = load_text_model(base_path)
    plain = logits(on_the_fly, [1, 2, 3])  # before adapters: the base's own logits
    on_the_fly.add_lora(4, 8.0)
    on_the_fly.train_new_rows(49161)
    adapter_path = tmp_path / "adapter.npz"
    random_adapter(on_the_fly, adapter_path)
    load_into_text_model(on_the_fly, Adapter(adapter_path))  # the f16 values, as shipped

    merged_path = build_cromwell_smol(tmp_path / "merged.gguf", SOURCE, adapter=adapter_path)
    again = build_cromwell_smol(tmp_path / "again.gguf", SOURCE, adapter=adapter_path)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (merged_path, again)]
    assert digest[0] == digest[1]
    assert smol_adapter_sha(merged_path) == file_sha256(adapter_path)
    assert smol_adapter_sha(base_path) is None

    # `models fetch` rebuilds a cached cromwell-smol when the committed adapter is new to it.
    monkeypatch.setenv("CROMWELL_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "models").mkdir(parents=True)
    (tmp_path / "home" / "models" / SOURCE.name).symlink_to(SOURCE)
    monkeypatch.setattr(export, "READER_ASSET", tmp_path / "none.npz")
    monkeypatch.setattr(export, "SMOL_ADAPTER", tmp_path / "none.npz")
    cached = export.ensure_cromwell_smol()
    assert smol_adapter_sha(cached) is None
    monkeypatch.setattr(export, "SMOL_ADAPTER", adapter_path)
    assert export.ensure_cromwell_smol() == cromwell_smol_path() == cached
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest[0]

    model = engine.runtime.load(str(merged_path))
    assert model.tuned_tasks == {"edit"}  # what ships (export.SMOL_TUNED_TASKS)...
    assert model.fim.family == "none"  # ...so ghost text stays prefix-only, on the base
    tok = model.tokenizer
    ids = tok.encode("def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n")
    first_fim = tok.token_to_id("<fim_prefix>")
    merged = load_text_model(merged_path, TUNED_PREFIX)
    # An edit's prompt holds no FIM token, and the edit route keeps the base's rows for them
    # (only the infilling route writes the trained ones): compared on the other tokens.
    want, got = logits(on_the_fly, ids)[:, :first_fim], logits(merged, ids)[:, :first_fim]
    base_ids = logits(load_text_model(base_path), ids)[:, :first_fim]
    def rms(x: torch.Tensor) -> float:
        return x.pow(2).mean().sqrt().item()

    # Root mean square over the vocabulary: Q8_0 rounding of the merged weights moves a few
    # of 49k logits by up to a unit, which a maximum would weigh like the adapter's change.
    moved, err = rms(want - base_ids), rms(want - got)
    assert moved > 0.5  # the adapter changes the answer...
    assert err < 0.1 * moved  # ...and the merged file carries that change
    # The rounding may swap near-tied tokens, rarely.
    agree = (want.argmax(-1) == got.argmax(-1)).float().mean().item()
    print(f"moved {moved:.2f}, merged vs on the fly {err:.3f}, top-1 agreement {agree:.2f}")
    assert agree >= 0.8
    assert np.isfinite(plain.numpy()).all()

    # The runtime: the tasks the adapter serves run on its weights, as torch computes them...
    tuned = model.decoder_for("edit")
    assert tuned is not model.decoder and model.decoder_for("infill") is model.decoder
    tuned.cache.rollback(0)
    runtime = tuned.forward(ids)[:first_fim]
    last = got[-1].numpy()
    assert rms(torch.from_numpy(runtime - last)) < 0.1 * moved
    assert runtime.argmax() == last.argmax()
    # ...and every other request runs on SmolLM2's own bytes: the base build's logits.
    assert model.decoder_for(None) is model.decoder_for("chat") is model.decoder
    untuned = engine.runtime.load(str(base_path))
    model.decoder.cache.rollback(0)
    untuned.decoder.cache.rollback(0)
    np.testing.assert_array_equal(model.decoder.forward(ids), untuned.decoder.forward(ids))
    # A fine-tune of the shipped file starts from the base, the FIM rows included.
    assert torch.equal(load_text_model(merged_path).embed, load_text_model(base_path).embed)
    assert not untuned.tuned_tasks and untuned.decoder_for("infill") is untuned.decoder


def test_requests_run_on_the_weights_of_their_task(tmp_path: Path) -> None:
    """With an adapter built in for infilling and edits, ghost text and an edit action run
    on the tuned decoder, a plain generation on the base: each leaves its prefill record on
    the decoder it ran on."""
    import engine.runtime
    from cromwell_lsp import domain
    from engine.train.export import build_cromwell_smol
    from engine.train.text_model import load_text_model

    torch.manual_seed(0)
    on_the_fly = load_text_model(build_cromwell_smol(tmp_path / "base.gguf", SOURCE))
    on_the_fly.add_lora(4, 8.0)
    on_the_fly.train_new_rows(49161)
    random_adapter(on_the_fly, tmp_path / "adapter.npz")
    path = build_cromwell_smol(tmp_path / "merged.gguf", SOURCE, adapter=tmp_path / "adapter.npz",
                               tasks=("infill", "edit"))
    model = engine.runtime.load(str(path), threads=1)
    assert model.fim.order == "psm"  # trained on the FIM markers: the file declares them
    tuned = model.decoder_for("infill")
    assert tuned is model.decoder_for("edit") and tuned is not model.decoder

    domain.infill(model, "def add(a, b):\n    return ", "\n", max_tokens=4)
    assert tuned.last_prefill is not None and model.decoder.last_prefill is None

    tuned.last_prefill = None
    domain.generate(model, "def add(a, b):", max_tokens=4)
    assert model.decoder.last_prefill is not None and tuned.last_prefill is None

    model.decoder.last_prefill = None
    domain.generate(model, "def add(a, b):", max_tokens=4, task=domain.EDIT_TASK)
    assert tuned.last_prefill is not None and model.decoder.last_prefill is None
