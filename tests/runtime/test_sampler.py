"""The sampler: greedy, temperature, top-k, top-p, repetition penalty, seeded determinism."""

from __future__ import annotations

import numpy as np
import pytest

from engine.runtime.sampler import Sampler, SamplingParams

LOGITS = np.array([1.0, 3.0, 2.0, -1.0, 0.5, 2.5], np.float32)


def draw(params: SamplingParams, n: int = 50) -> list[int]:
    sampler = Sampler(params)
    return [sampler.sample(LOGITS) for _ in range(n)]


def test_temperature_zero_is_argmax() -> None:
    assert Sampler().sample(LOGITS) == 1


def test_temperature_scales_the_softmax() -> None:
    probs = Sampler(SamplingParams(temperature=2.0)).probabilities(LOGITS)
    expected = np.exp(LOGITS / 2.0) / np.exp(LOGITS / 2.0).sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    # A low temperature concentrates the mass on the argmax, a high one spreads it.
    cold = Sampler(SamplingParams(temperature=0.1)).probabilities(LOGITS)
    hot = Sampler(SamplingParams(temperature=10.0)).probabilities(LOGITS)
    assert cold[1] > 0.99 and hot.max() < 0.3


def test_the_same_seed_gives_the_same_draws_and_another_seed_does_not() -> None:
    a = draw(SamplingParams(temperature=1.0, seed=7))
    assert a == draw(SamplingParams(temperature=1.0, seed=7))
    assert a != draw(SamplingParams(temperature=1.0, seed=8))
    assert len(set(a)) > 2  # it really samples


def test_top_k_keeps_only_the_k_best() -> None:
    probs = Sampler(SamplingParams(temperature=1.0, top_k=2)).probabilities(LOGITS)
    assert set(np.flatnonzero(probs)) == {1, 5}
    assert probs.sum() == pytest.approx(1.0)
    assert set(draw(SamplingParams(temperature=5.0, top_k=2, seed=1))) == {1, 5}


def test_top_p_keeps_the_smallest_head_reaching_p() -> None:
    full = Sampler(SamplingParams(temperature=1.0)).probabilities(LOGITS)
    order = np.argsort(-full)
    p = float(full[order[:2]].sum()) + 1e-3  # just past the two best: the third is needed
    probs = Sampler(SamplingParams(temperature=1.0, top_p=p)).probabilities(LOGITS)
    assert set(np.flatnonzero(probs)) == set(order[:3].tolist())
    tiny = Sampler(SamplingParams(temperature=1.0, top_p=0.01)).probabilities(LOGITS)
    assert np.flatnonzero(tiny).tolist() == [1]  # at least one token always survives


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    sampler = Sampler(SamplingParams(repetition_penalty=2.0))
    out = sampler.penalize(LOGITS, history=[1, 3, 3])
    assert out[1] == pytest.approx(1.5) and out[3] == pytest.approx(-2.0)
    assert np.array_equal(np.delete(out, [1, 3]), np.delete(LOGITS, [1, 3]))
    assert sampler.sample(LOGITS, history=[1]) == 5  # the repeated argmax loses its place


def test_the_penalty_window_only_sees_recent_tokens() -> None:
    sampler = Sampler(SamplingParams(repetition_penalty=2.0, repeat_window=2))
    assert sampler.sample(LOGITS, history=[1, 0, 4]) == 1  # token 1 is out of the window


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -1.0},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -2},
        {"repetition_penalty": 0.0},
    ],
)
def test_bad_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SamplingParams(**bad)
