"""The llama GGUF name map against the built cromwell-smol model, and the Q/K row order."""

from __future__ import annotations

import numpy as np
import torch

from engine.config import load_config
from engine.model.gguf_names import (
    cromwell_to_llama,
    gguf_to_hf_qk,
    hf_to_gguf_qk,
    llama_to_cromwell,
)
from engine.model.layers import apply_rope, rope_cache
from engine.model.vljepa import VLJEPA

KINDS = ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
         "ffn_up", "ffn_down")


def test_every_smollm2_tensor_has_a_parameter() -> None:
    cfg = load_config("cromwell-smol").model
    with torch.device("meta"):
        model = VLJEPA(cfg, ema_target=False)
    params = dict(model.named_parameters(remove_duplicate=False))
    n_enc = cfg.language.num_layers
    names = ["token_embd.weight", "output_norm.weight"] + [
        f"blk.{n}.{kind}.weight" for n in range(30) for kind in KINDS]
    mapped = [llama_to_cromwell(name, n_enc) for name in names]
    assert all(m in params for m in mapped)
    assert len(set(mapped)) == len(names)
    assert llama_to_cromwell("blk.24.attn_q.weight", n_enc) == (
        "ar_head.layers.0.attn.q_proj.weight")
    assert llama_to_cromwell("blk.23.ffn_down.weight", n_enc) == (
        "language.layers.23.mlp.down_proj.weight")
    assert llama_to_cromwell("output.weight", n_enc) == "lm_head.weight"
    assert llama_to_cromwell("rope_freqs.weight", n_enc) is None
    assert all(cromwell_to_llama(m, n_enc) == n for n, m in zip(names, mapped, strict=True) if m)
    assert cromwell_to_llama("fusion.blocks.0.l2v_gate", n_enc) is None


def test_qk_permutation_round_trips_and_keeps_attention_scores() -> None:
    n_heads, hd, d = 3, 8, 16
    rng = np.random.default_rng(0)
    w_q = rng.standard_normal((n_heads * hd, d)).astype(np.float32)
    w_k = rng.standard_normal((n_heads * hd, d)).astype(np.float32)
    assert np.array_equal(gguf_to_hf_qk(hf_to_gguf_qk(w_q, n_heads), n_heads), w_q)
    x = torch.from_numpy(rng.standard_normal((5, d)).astype(np.float32))
    cos, sin = rope_cache(hd, 5, 10000.0)

    def half_rope(w: np.ndarray) -> torch.Tensor:  # ours: pairs (j, j + hd/2)
        q = (x @ torch.from_numpy(w).T).view(5, n_heads, hd).transpose(0, 1)  # (nh, T, hd)
        return apply_rope(q, cos, sin)

    def interleaved_rope(w: np.ndarray) -> torch.Tensor:  # ggml's llama: pairs (2j, 2j+1)
        q = (x @ torch.from_numpy(w).T).view(5, n_heads, hd // 2, 2).transpose(0, 1)
        c, s = cos[:, : hd // 2], sin[:, : hd // 2]
        a, b = q[..., 0], q[..., 1]
        return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)

    ours = half_rope(w_q) @ half_rope(w_k).transpose(1, 2)
    ggml = interleaved_rope(hf_to_gguf_qk(w_q, n_heads)) @ interleaved_rope(
        hf_to_gguf_qk(w_k, n_heads)).transpose(1, 2)
    assert torch.allclose(ours, ggml, atol=1e-4)


def test_config_and_name_map_import_without_torch() -> None:
    """The torch-free runtime and exporter use these two modules."""
    import subprocess
    import sys

    code = ("import sys, engine.config, engine.model.gguf_names; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
