"""continuation_logprobs: one batched prefill gives the log probabilities the decode steps
would have given, token by token."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine.runtime
from engine.runtime.model import Model
from engine.runtime.scoring import continuation_logprobs, log_softmax, most_likely


@pytest.fixture(scope="module")
def model(smollm2_path: Path) -> Model:
    return engine.runtime.load(str(smollm2_path), n_ctx=1024)


def stepwise(model: Model, prompt: list[int], continuation: list[int]) -> list[np.ndarray]:
    """Each step's log-softmax as generation computes it, the prompt prefilled and then one
    decode step per token: the independent reference."""
    decoder = model.decoder
    decoder.cache.rollback(0)
    rows = [log_softmax(decoder.forward(prompt))]
    for token in continuation[:-1]:
        rows.append(log_softmax(decoder.forward([token])))
    return rows


def test_logprobs_match_decoding_token_by_token(model: Model) -> None:
    prompt = model.tokenizer.encode("def add(a, b):\n", add_special=True)
    continuation = model.generate_tokens(prompt, max_tokens=12)
    scores = continuation_logprobs(model.decoder, prompt, continuation, top_n=5)
    reference = stepwise(model, prompt, continuation)
    assert [s.token for s in scores] == continuation and len(reference) == len(scores)
    for score, row in zip(scores, reference, strict=True):
        assert score.logprob == pytest.approx(row[score.token], abs=1e-4)
        assert [t for t, _ in score.top] == most_likely(row, 5).tolist()
        # Greedy: every chosen token was the most likely one.
        assert score.top[0][0] == score.token
        assert all(a >= b for (_, a), (_, b) in zip(score.top, score.top[1:], strict=False))


def test_long_prompts_are_scored_across_prefill_chunks(model: Model) -> None:
    prompt = model.tokenizer.encode("x = 1\n" * 110, add_special=True)  # over one chunk
    continuation = model.tokenizer.encode("x = 2\n")
    scores = continuation_logprobs(model.decoder, prompt, continuation, top_n=0)
    reference = stepwise(model, prompt, continuation)
    assert [s.token for s in scores] == continuation
    for score, row in zip(scores, reference, strict=True):
        assert score.logprob == pytest.approx(row[score.token], abs=1e-4) and score.top == []
    assert continuation_logprobs(model.decoder, prompt, [], top_n=3) == []
