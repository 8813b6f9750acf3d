"""Parameter budget: counted from the built model; cromwell-300m stays under 300M; the smol
language path has exactly SmolLM2-135M's shapes."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from cromwell_cli.main import main
from engine.config import load_config
from engine.model.budget import COMPONENTS, count_parameters, parameter_counts
from engine.model.vljepa import VLJEPA


def llama_layer(d: int, kv: int, ffn: int) -> int:
    """Parameters of one llama block: two norms, Q/O (d x d), K/V (d x kv), SwiGLU."""
    return 2 * d + 2 * d * d + 2 * d * kv + 3 * d * ffn


def test_300m_total_is_under_its_budget() -> None:
    cfg = load_config("cromwell-300m").model
    counts = parameter_counts(cfg)
    total = sum(counts.values())
    assert total < cfg.budget == 300_000_000
    assert total > 250_000_000  # and it is the seed's size, not a shrunken model
    # Token embeddings in `language`, the untied LM head on its own line.
    assert counts["lm_head"] == 768 * 50000
    assert counts["language"] == 50000 * 768 + 12 * llama_layer(768, 192, 3072)
    assert counts["ar_head"] == 6 * llama_layer(768, 192, 3072) + 768  # + final norm


def test_smol_language_path_is_smollm2() -> None:
    cfg = load_config("cromwell-smol").model
    counts = parameter_counts(cfg)
    vocab = cfg.language.vocab_size
    assert counts["language"] == vocab * 576 + 24 * llama_layer(576, 192, 1536)
    assert counts["ar_head"] == 6 * llama_layer(576, 192, 1536) + 576
    assert counts["lm_head"] == 0  # tied: the embedding is counted once, in `language`
    assert sum(counts.values()) < cfg.budget


def test_meta_count_equals_the_real_model() -> None:
    cfg = load_config("cromwell-tiny").model
    real = count_parameters(VLJEPA(cfg))  # with its EMA target, which is not counted
    assert real == parameter_counts(cfg)
    bare = VLJEPA(cfg, ema_target=False)
    assert sum(real.values()) == sum(p.numel() for p in bare.parameters())  # nothing missed

def test_info_json_and_table() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["info", "--config", "configs/cromwell-300m.yaml", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"total_params", "components", "model"}  # model: tests/runtime
    assert list(data["components"]) == list(COMPONENTS)
    assert data["total_params"] == sum(data["components"].values()) < 300_000_000
    table = runner.invoke(main, ["info", "--config", "cromwell-300m"])
    assert table.exit_code == 0, table.output
    assert "50M" in table.output and "300M" in table.output
    assert f"{data['total_params']:,}" in table.output


def test_info_reports_config_errors() -> None:
    result = CliRunner().invoke(main, ["info", "--config", "no-such-model"])
    assert result.exit_code != 0 and "no such config file or preset" in result.output


def test_counting_300m_needs_no_memory() -> None:
    cfg = load_config("cromwell-300m").model
    with torch.device("meta"):
        model = VLJEPA(cfg, ema_target=False)
    assert all(p.is_meta for p in model.parameters())
