"""A llama GGUF written from one model's language path loads into another and gives the same
logits: exercises the name map both ways and the Q/K row order."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
import yaml

from engine.config import CONFIG_DIR, ModelConfig, config_from_dict
from engine.model.gguf_names import cromwell_to_llama, hf_to_gguf_qk
from engine.model.llama_gguf import load_llama_gguf
from engine.model.vljepa import VLJEPA


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    data = yaml.safe_load((CONFIG_DIR / "cromwell-tiny.yaml").read_text())["model"]
    return config_from_dict({"model": {**data, "tie_word_embeddings": True}}).model


def write_llama_gguf(model: VLJEPA, path: Path, vocab_rows: int | None = None) -> None:
    cfg = model.cfg
    lc, n_enc = cfg.language, cfg.language.num_layers
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(n_enc + cfg.autoregressive.num_layers)
    writer.add_embedding_length(lc.hidden_size)
    writer.add_feed_forward_length(lc.intermediate_size)
    writer.add_head_count(lc.num_attention_heads)
    writer.add_head_count_kv(lc.num_key_value_heads)
    for name, p in model.named_parameters():
        llama = cromwell_to_llama(name, n_enc)
        if llama is None:
            continue
        w = p.detach().numpy().copy()
        if llama.endswith("attn_q.weight"):
            w = hf_to_gguf_qk(w, lc.num_attention_heads)
        elif llama.endswith("attn_k.weight"):
            w = hf_to_gguf_qk(w, lc.num_key_value_heads)
        elif llama == "token_embd.weight" and vocab_rows is not None:
            w = w[:vocab_rows]
        writer.add_tensor(llama, np.ascontiguousarray(w))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_round_trip_gives_the_same_logits(cfg: ModelConfig, tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = VLJEPA(cfg, ema_target=False).eval()
    path = tmp_path / "llama.gguf"
    write_llama_gguf(source, path)
    torch.manual_seed(1)
    dest = VLJEPA(cfg).eval()
    loaded = load_llama_gguf(dest, path)
    assert "ar_head.layers.1.attn.q_proj.weight" in loaded and "ar_head.norm.weight" in loaded
    x = torch.randint(0, cfg.language.vocab_size, (2, 10))
    with torch.no_grad():
        assert torch.equal(source(x)[0], dest(x)[0])
    assert dest.target is not None  # the EMA target follows the loaded weights
    assert torch.equal(dest.target["language"].embed.weight, dest.language.embed.weight)


def test_added_tokens_start_at_the_mean_embedding(cfg: ModelConfig, tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = VLJEPA(cfg, ema_target=False)
    path = tmp_path / "llama.gguf"
    write_llama_gguf(source, path, vocab_rows=2000)
    dest = VLJEPA(cfg, ema_target=False)
    load_llama_gguf(dest, path)
    old = source.language.embed.weight[:2000]
    assert torch.equal(dest.language.embed.weight[:2000], old)
    assert torch.allclose(dest.language.embed.weight[2000:], old.mean(0).expand(48, -1),
                          atol=1e-6)


def test_a_file_of_another_shape_is_refused(cfg: ModelConfig, tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIG_DIR / "cromwell-tiny.yaml").read_text())["model"]
    data["language"]["num_layers"] = 3
    other = VLJEPA(config_from_dict({"model": data}).model, ema_target=False)
    path = tmp_path / "other.gguf"
    write_llama_gguf(other, path)
    with pytest.raises(ValueError, match="block_count is 5, the config needs 4"):
        load_llama_gguf(VLJEPA(cfg, ema_target=False), path)
