"""Model.embed: the mean of the final hidden states, checked through the output head.

The output projection is linear, so projecting the mean of the states must give the mean of
the logits the decoder computes for every token itself (`forward(..., all_logits=True)`):
an independent check that embed pools the right states, after the right norm, over every
chunk of a long text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import engine.runtime
from engine import _native as K
from engine.runtime.decoder import MATMUL_DECODE_ROWS, PREFILL_CHUNK
from engine.runtime.model import Model

CHAT = [{"role": "user", "content": "Name the capital city of France."}]


@pytest.fixture(scope="module")
def model(smollm2_path: Path) -> Model:
    return engine.runtime.load(str(smollm2_path), n_ctx=1024)


def mean_logits(model: Model, text: str) -> np.ndarray:
    ids = model.tokenizer.encode(text, add_special=True)
    model.decoder.cache.rollback(0)
    rows = [model.decoder.forward(ids[i : i + PREFILL_CHUNK], all_logits=True).copy()
            for i in range(0, len(ids), PREFILL_CHUNK)]
    return np.concatenate(rows).mean(axis=0)


def project(model: Model, vector: np.ndarray) -> np.ndarray:
    """The output head applied to `vector` (as a prefill's rows are)."""
    out = model.decoder.weights.output
    rows = np.repeat(vector[None, :], MATMUL_DECODE_ROWS + 1, axis=0)
    logits = np.zeros((len(rows), model.decoder.cfg.vocab_size), np.float32)
    K.matmul(out.data, out.fmt, rows, out=logits)
    return logits[0]


@pytest.fixture
def float_matrix_path() -> Iterator[None]:
    """The matrix kernels' float path: their integer one rounds each row's activations to 8
    bits, which is not linear, and the check below relies on the output head being linear."""
    K.set_no_int_gemm(True)
    yield
    K.set_no_int_gemm(False)


@pytest.mark.parametrize("text", ["def add(a, b):\n    return a + b\n",
                                  "x = 1\n" * 110])  # the second runs in two prefill chunks
@pytest.mark.usefixtures("float_matrix_path")
def test_embed_is_the_mean_of_the_states_the_output_head_reads(model: Model, text: str) -> None:
    n_tokens = len(model.tokenizer.encode(text, add_special=True))
    assert n_tokens > MATMUL_DECODE_ROWS
    vector = model.embed(text)
    assert vector.shape == (model.decoder.cfg.dim,) and vector.dtype == np.float32
    expected = mean_logits(model, text)
    np.testing.assert_allclose(project(model, vector), expected, atol=1e-3 * np.abs(expected).max())


def test_embed_is_deterministic_and_tells_texts_apart(model: Model) -> None:
    a = model.embed("def add(a, b): return a + b")
    assert np.array_equal(a, model.embed("def add(a, b): return a + b"))
    b = model.embed("The weather in Paris is mild in spring.")
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cosine < 0.999


def test_generation_after_embed_is_unchanged(model: Model) -> None:
    prompt = model.apply_chat_template(CHAT)
    before = model.generate(prompt, max_tokens=8)
    model.embed("some other text that takes the cache over")
    assert model.generate(prompt, max_tokens=8) == before


def test_embed_refuses_text_longer_than_the_context(model: Model) -> None:
    with pytest.raises(ValueError, match="context holds 1024"):
        model.embed("x = 1\n" * 400)
