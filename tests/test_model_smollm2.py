"""cromwell-smol on the real SmolLM2-135M-Instruct weights (the embedded GGUF): the language
path is SmolLM2 itself, so it must answer like it. Needs the model in the cache
(`cromwell models fetch`, which `make demo` runs); skipped, and says so, without it."""

from __future__ import annotations

import gguf
import pytest
import torch

from engine.config import load_config
from engine.model.llama_gguf import load_llama_gguf
from engine.model.vljepa import VLJEPA
from engine.runtime.model_store import SMOLLM2_135M, cached_path

PATH = cached_path(SMOLLM2_135M)
pytestmark = pytest.mark.skipif(not PATH.is_file(),
                                reason=f"{PATH} absent: run `cromwell models fetch`")


def test_smol_completes_like_smollm2() -> None:
    model = VLJEPA(load_config("cromwell-smol").model, ema_target=False).eval()
    load_llama_gguf(model, PATH)
    field = gguf.GGUFReader(PATH).fields["tokenizer.ggml.tokens"]
    vocab = [bytes(field.parts[i]).decode() for i in field.data]
    ids = {t: i for i, t in enumerate(vocab)}
    prompt = torch.tensor([[ids[t] for t in ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"]]])
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = prompt
        for _ in range(2):
            logits, _ = model(x)
            x = torch.cat([x, logits[:, -1:].argmax(-1)], dim=1)
        # With an image and the fusion gates still closed, SmolLM2 is untouched.
        with_image, _ = model(x, image, prompt_len=x.shape[1])
    assert vocab[x[0, 5].item()] == "ĠParis"
    assert torch.equal(with_image, model(x)[0])
