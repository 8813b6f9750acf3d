"""The runtime against the PyTorch model on cromwell-tiny: a model built with a fixed seed and
open fusion gates (so fusion changes the logits), exported with `export_model`, loaded by the
torch-free runtime. Logits must match and greedy tokens must be identical, text-only and with
an image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.config import load_config
from engine.model.vljepa import VLJEPA
from engine.runtime.generate import prefill
from engine.runtime.gguf_file import GGUFFile
from engine.runtime.model import Model
from engine.tokenizer import from_gguf
from engine.train.export import export_model

PROMPT = [5, 17, 200, 33, 1021, 7, 64, 999, 12]
STEPS = 32


@pytest.fixture(scope="module")
def torch_model() -> VLJEPA:
    torch.manual_seed(0)
    model = VLJEPA(load_config("cromwell-tiny").model, ema_target=False).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.fill_(0.5)  # open: fusion must matter
            elif name.endswith("rel_bias"):
                p.normal_(0.0, 0.5)  # initialised at 0: give the bias table something to do
    return model


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    # 48x48 -> a 6x6 token grid in 4x4 windows: padded windows are exercised too.
    return np.random.default_rng(1).random((48, 48, 3), dtype=np.float32)


def runtime_model(
    torch_model: VLJEPA, tmp: Path, fmt: str, smollm2_path: Path, kv_cache: str = "f32"
) -> Model:
    path = export_model(torch_model, tmp / f"tiny-{fmt}.gguf", fmt, ["none"])
    # The tiny model has no vocabulary of its own; SmolLM2's serves (ids stay < 2048). A float
    # KV cache by default: parity with the torch model holds the whole computation to float32.
    return Model(GGUFFile(path), from_gguf(smollm2_path), kv_cache=kv_cache)


def torch_logits(
    model: VLJEPA, ids: list[int], image: np.ndarray | None, prompt_len: int
) -> np.ndarray:
    img = None if image is None else torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids]), img, prompt_len)
    return logits[0].numpy()


def torch_greedy(model: VLJEPA, image: np.ndarray | None) -> list[int]:
    ids = list(PROMPT)
    for _ in range(STEPS):
        ids.append(int(torch_logits(model, ids, image, len(PROMPT))[-1].argmax()))
    return ids[len(PROMPT) :]


@pytest.fixture(scope="module")
def f32_model(
    torch_model: VLJEPA, tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path
) -> Model:
    return runtime_model(torch_model, tmp_path_factory.mktemp("f32"), "F32", smollm2_path)


@pytest.mark.parametrize("with_image", [False, True])
def test_logits_match_torch_at_f32(
    torch_model: VLJEPA, f32_model: Model, image: np.ndarray, with_image: bool
) -> None:
    img = image if with_image else None
    tokens = f32_model.generate_tokens(
        PROMPT, max_tokens=4, stop_ids=[], image=img, speculative=False
    )
    ids = PROMPT + tokens[:3]
    want = torch_logits(torch_model, ids, img, len(PROMPT))
    # The last prompt position (prefill) and the generated ones (decode steps, fused text).
    dec, fusion = f32_model.decoder, None
    if with_image:
        fusion = f32_model.fusion
        fusion.set_image(f32_model.encode_image(image))
    got = [prefill(dec, PROMPT, fusion).copy()]
    for t in tokens[:3]:
        got.append(dec.forward([t]).copy())
    np.testing.assert_allclose(np.stack(got), want[len(PROMPT) - 1 :], atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("with_image", [False, True])
def test_greedy_tokens_equal_torch_for_32_steps(
    torch_model: VLJEPA, f32_model: Model, image: np.ndarray, with_image: bool
) -> None:
    img = image if with_image else None
    want = torch_greedy(torch_model, img)
    for speculative in (False, True):
        got = f32_model.generate_tokens(
            PROMPT, max_tokens=STEPS, stop_ids=[], image=img, speculative=speculative
        )
        assert got == want, f"speculative={speculative}"


def test_the_image_changes_the_output(f32_model: Model, image: np.ndarray) -> None:
    a = f32_model.generate_tokens(PROMPT, max_tokens=8, stop_ids=[])
    b = f32_model.generate_tokens(PROMPT, max_tokens=8, stop_ids=[], image=image)
    c = f32_model.generate_tokens(PROMPT, max_tokens=8, stop_ids=[])
    assert a == c  # a text request after an image request is not fused
    assert a != b


def test_vision_tokens_match_torch(
    torch_model: VLJEPA, f32_model: Model, image: np.ndarray
) -> None:
    with torch.no_grad():
        want = torch_model.encode_image(torch.from_numpy(image).permute(2, 0, 1)[None])[0]
    got = f32_model.encode_image(image)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("fmt", ["F16", "Q8_0"])
def test_lower_precision_exports_load_and_stay_close(
    torch_model: VLJEPA, tmp_path: Path, image: np.ndarray, fmt: str, smollm2_path: Path
) -> None:
    model = runtime_model(torch_model, tmp_path, fmt, smollm2_path)
    model.fusion.set_image(model.encode_image(image))
    got = prefill(model.decoder, PROMPT, model.fusion)
    want = torch_logits(torch_model, PROMPT, image, len(PROMPT))[-1]
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max() + 0.02


def test_a_prompt_longer_than_a_chunk_is_fused_whole(
    torch_model: VLJEPA, f32_model: Model, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # V->L must read the whole prompt even when the layers run it in chunks.
    import engine.runtime.decoder as decoder_module

    monkeypatch.setattr(decoder_module, "PREFILL_CHUNK", 4)
    fusion = f32_model.fusion
    fusion.set_image(f32_model.encode_image(image))
    got = prefill(f32_model.decoder, PROMPT, fusion)
    want = torch_logits(torch_model, PROMPT, image, len(PROMPT))[-1]
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("kv_cache", ["f32", "f16"])
@pytest.mark.parametrize("fmt", ["F32", "Q8_0"])
def test_image_decode_steps_fused_equal_the_python_loop_bit_for_bit(
    torch_model: VLJEPA,
    tmp_path: Path,
    image: np.ndarray,
    fmt: str,
    smollm2_path: Path,
    kv_cache: str,
) -> None:
    # With an image the fused step runs in two spans around fusion's text side; the Python
    # loop (fused_step None) calls the same kernels in the same order, and rounds the new K/V
    # rows into a half cache as the fused step does.
    fused = runtime_model(torch_model, tmp_path, fmt, smollm2_path, kv_cache)
    loop = Model(GGUFFile(fused.path), fused.tokenizer, kv_cache=kv_cache)
    loop.decoder.fused_step = None
    assert fused.decoder.fused_step is not None
    for speculative in (False, True):
        want = loop.generate_tokens(
            PROMPT, max_tokens=STEPS, stop_ids=[], image=image, speculative=speculative
        )
        got = fused.generate_tokens(
            PROMPT, max_tokens=STEPS, stop_ids=[], image=image, speculative=speculative
        )
        assert got == want, f"speculative={speculative}"
    for m in (fused, loop):
        m.fusion.set_image(m.encode_image(image))
        prefill(m.decoder, PROMPT, m.fusion)
    for t in want[:4]:
        np.testing.assert_array_equal(fused.decoder.forward([t]), loop.decoder.forward([t]))
