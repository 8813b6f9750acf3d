"""Log probabilities of a continuation: what the model gave each token of a text it generated
(or was given), and the most likely alternatives at each step, for an OpenAI-style `logprobs`.

The generation loop samples from the logits and moves on; keeping every step's distribution
there would cost a vocabulary-sized row per token on every request. Scoring instead reruns them
only when asked: the prompt prefilled as a generation prefills it, then the continuation in
batched passes computed as decode steps compute them (`as_decode`, as speculative verification
does), so each row is the one the decode step that chose the token saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.runtime.decoder import PREFILL_CHUNK, Decoder


@dataclass(frozen=True)
class TokenLogprob:
    token: int
    logprob: float
    top: list[tuple[int, float]]  # the top_n (token, logprob), most likely first


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max()
    return z - np.log(np.exp(z).sum())


def most_likely(logprobs: np.ndarray, n: int) -> np.ndarray:
    """The ids of the n largest entries, largest first."""
    if n <= 0:
        return np.empty(0, np.int64)
    n = min(n, logprobs.size)
    head = np.argpartition(-logprobs, n - 1)[:n]
    return head[np.argsort(-logprobs[head], kind="stable")]


def continuation_logprobs(
    decoder: Decoder, prompt: Sequence[int], continuation: Sequence[int], top_n: int = 0
) -> list[TokenLogprob]:
    """For each token of `continuation`, its log probability after `prompt` and the tokens
    before it, with the `top_n` most likely tokens at that step. Runs from position 0: the KV
    cache is left holding the prompt and the continuation but its last token."""
    if not prompt:
        raise ValueError("the prompt is empty: at least one token is needed")
    if not continuation:
        return []
    if len(prompt) + len(continuation) > decoder.n_ctx:
        raise ValueError(f"{len(prompt) + len(continuation)} tokens to score; the context "
                         f"holds {decoder.n_ctx}")
    decoder.text_hook = None  # text only: no image's fusion
    decoder.cache.rollback(0)
    scores = [_score(decoder.forward(list(prompt)), continuation[0], top_n)]
    inputs = continuation[:-1]  # row i of their logits predicts continuation[i + 1]
    for start in range(0, len(inputs), PREFILL_CHUNK):
        chunk = inputs[start : start + PREFILL_CHUNK]
        logits = decoder.forward(chunk, all_logits=True, as_decode=True)  # (len(chunk), vocab)
        targets = continuation[start + 1 : start + 1 + len(chunk)]
        scores.extend(_score(row, token, top_n) for row, token in zip(logits, targets,
                                                                      strict=True))
    return scores


def _score(logits: np.ndarray, token: int, top_n: int) -> TokenLogprob:
    logprobs = log_softmax(logits)
    top = [(int(t), float(logprobs[t])) for t in most_likely(logprobs, top_n)]
    return TokenLogprob(int(token), float(logprobs[token]), top)
