"""The generation loop on the real SmolLM2 file: determinism, prompt-lookup speculation equal
to plain greedy, stop tokens, max tokens, the cancel flag, prefix reuse, a full context."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.runtime import generate
from engine.runtime.decoder import Decoder
from engine.runtime.generate import SpeculationStats, decode_n_tokens
from engine.runtime.gguf_file import GGUFFile
from engine.runtime.sampler import Sampler, SamplingParams
from engine.runtime.speculative import FIRST_DRAFT, MAX_DRAFT, draft_tokens

# Code that repeats itself, as an edit prompt does: the continuation copies the first copy.
REPEATED = (
    "def",
    "Ġadd",
    "(",
    "a",
    ",",
    "Ġb",
    "):",
    "Ċ",
    "ĠĠĠ",
    "Ġreturn",
    "Ġa",
    "Ġ+",
    "Ġb",
    "Ċ",
    "Ċ",
    "def",
    "Ġsub",
    "(",
    "a",
    ",",
    "Ġb",
    "):",
    "Ċ",
    "ĠĠĠ",
    "Ġreturn",
    "Ġa",
    "Ġ-",
    "Ġb",
    "Ċ",
    "Ċ",
    "def",
    "Ġadd",
)


@pytest.fixture(scope="module")
def decoder(smollm2_path: Path) -> Decoder:
    return Decoder(GGUFFile(smollm2_path), n_ctx=256)


@pytest.fixture(scope="module")
def prompt(decoder: Decoder) -> list[int]:
    vocab = {t: i for i, t in enumerate(decoder.file.metadata["tokenizer.ggml.tokens"])}
    return [vocab[t] for t in REPEATED]


def greedy(decoder: Decoder, prompt: list[int], n: int, **kwargs: object) -> list[int]:
    return list(decode_n_tokens(decoder, prompt, max_tokens=n, sampler=Sampler(), **kwargs))


def test_greedy_is_deterministic_and_reuses_the_cached_prefix(
    decoder: Decoder, prompt: list[int]
) -> None:
    decoder.cache.rollback(0)
    first = greedy(decoder, prompt, 12, speculative=False)
    assert len(first) == 12
    assert decoder.cache.tokens[: len(prompt)] == prompt
    again = greedy(decoder, prompt, 12, speculative=False)  # prefix found in the cache
    decoder.cache.rollback(0)
    fresh = greedy(decoder, prompt, 12, speculative=False)
    assert first == again == fresh


def test_speculative_greedy_equals_plain_greedy(decoder: Decoder, prompt: list[int]) -> None:
    plain = greedy(decoder, prompt, 24, speculative=False)
    stats = SpeculationStats()
    # every draft found is verified (not only where lookup has been paying: that is timing)
    fast = greedy(decoder, prompt, 24, speculative=True, adaptive=False, stats=stats)
    assert fast == plain
    assert stats.accepted >= 5  # drafts were really taken, not just tried
    assert stats.passes < 24
    # with lookup judging itself, whatever it decides, the output is the same
    for _ in range(3):
        assert greedy(decoder, prompt, 40, speculative=True) == greedy(
            decoder, prompt, 40, speculative=False
        )


class PauseOnceGrown:
    """A stand-in for `LookupPayoff` (whose decisions follow the machine's timings): drafts
    until a draft longer than the first has been asked for, then pauses for three plain steps,
    then drafts again."""

    def __init__(self, limits: list[int]) -> None:
        self.limits = limits
        self.plain_left: int | None = None

    def start(self) -> None:
        pass

    def drafting(self) -> bool:
        if self.plain_left is None and self.limits and self.limits[-1] > FIRST_DRAFT:
            self.plain_left = 3
        if self.plain_left:
            self.plain_left -= 1
            return False
        return True

    def record(self, seconds: float, tokens: int) -> None:
        pass


def test_drafting_resumes_at_the_first_draft_length_after_a_pause(
    decoder: Decoder, prompt: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    limits: list[int] = []

    def spy(history: list[int], max_draft: int = MAX_DRAFT) -> list[int]:
        limits.append(max_draft)
        return draft_tokens(history, max_draft)

    monkeypatch.setattr(generate, "draft_tokens", spy)
    monkeypatch.setattr(decoder, "lookup_payoff", PauseOnceGrown(limits))
    decoder.cache.rollback(0)
    out = greedy(decoder, prompt * 2, 60, speculative=True)
    decoder.cache.rollback(0)  # the same prefill as the drafting run's (no reused prefix)
    assert out == greedy(decoder, prompt * 2, 60, speculative=False)
    grown = next(i for i, n in enumerate(limits) if n > FIRST_DRAFT)
    # what the copied text earned does not outlive the pause
    assert limits[grown + 1] == FIRST_DRAFT


def test_speculation_keeps_greedy_output_under_a_repetition_penalty(
    decoder: Decoder, prompt: list[int]
) -> None:
    # The penalty depends on every token before the one chosen, drafted ones included.
    def run(speculative: bool) -> list[int]:
        sampler = Sampler(SamplingParams(repetition_penalty=1.3))
        return list(
            decode_n_tokens(
                decoder, prompt, max_tokens=16, sampler=sampler, speculative=speculative
            )
        )

    assert run(True) == run(False)


def test_stop_tokens_and_max_tokens(decoder: Decoder, prompt: list[int]) -> None:
    plain = greedy(decoder, prompt, 10, speculative=False)
    assert greedy(decoder, prompt, 4) == plain[:4]
    stop_at = plain[5]
    expected = plain[: plain.index(stop_at)]
    for speculative in (False, True):
        assert greedy(decoder, prompt, 10, stop_ids={stop_at}, speculative=speculative) == expected
    assert greedy(decoder, prompt, 0) == []


@pytest.mark.parametrize("speculative", [False, True])
def test_the_cancel_flag_stops_between_tokens(
    decoder: Decoder, prompt: list[int], speculative: bool
) -> None:
    cancel = threading.Event()
    got = []
    for token in decode_n_tokens(
        decoder, prompt, max_tokens=20, sampler=Sampler(), cancel=cancel, speculative=speculative
    ):
        got.append(token)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3
    assert greedy(decoder, prompt, 5, cancel=cancel) == []  # set before the start


def test_sampling_with_a_seed_is_reproducible(decoder: Decoder, prompt: list[int]) -> None:
    def sample(seed: int) -> list[int]:
        params = SamplingParams(temperature=1.0, top_k=40, top_p=0.95, seed=seed)
        return list(decode_n_tokens(decoder, prompt, max_tokens=8, sampler=Sampler(params)))

    assert sample(3) == sample(3)


def test_generation_stops_when_the_context_is_full(smollm2_path: Path, prompt: list[int]) -> None:
    small = Decoder(GGUFFile(smollm2_path), n_ctx=len(prompt) + 4)
    out = greedy(small, prompt, 50)
    assert len(out) == 5  # the last one is sampled from the last position, never cached
    with pytest.raises(ValueError, match="context holds"):
        greedy(small, prompt * 2, 5)
