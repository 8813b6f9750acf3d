"""Choosing the next token from logits: repetition penalty, temperature, top-k, top-p, and a
seeded random generator, so the same seed gives the same text. Temperature 0 is greedy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy (argmax)
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1: no nucleus cut
    repetition_penalty: float = 1.0  # 1: off; >1 discourages tokens seen in the window
    repeat_window: int = 64  # how many recent tokens the penalty looks at; 0: all of them
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Sampler:
    def __init__(self, params: SamplingParams | None = None) -> None:
        self.params = params or SamplingParams()
        self.rng = np.random.default_rng(self.params.seed)

    def penalize(self, logits: np.ndarray, history: Sequence[int]) -> np.ndarray:
        """The repetition penalty as in llama.cpp and HF: a seen token's positive logit is
        divided by the penalty, a negative one multiplied. Returns a new array."""
        p = self.params
        out = np.array(logits, dtype=np.float32, copy=True)
        if p.repetition_penalty == 1.0 or not history:
            return out
        window = history[-p.repeat_window :] if p.repeat_window else history
        seen = np.unique(np.asarray(window, dtype=np.int64))
        vals = out[seen]
        out[seen] = np.where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty)
        return out

    def probabilities(self, logits: np.ndarray, history: Sequence[int] = ()) -> np.ndarray:
        """The distribution sampled from (f64[vocab], zeros outside top-k/top-p); needs T > 0."""
        p = self.params
        if p.greedy:
            raise ValueError("a greedy sampler has no distribution; use temperature > 0")
        z = self.penalize(logits, history).astype(np.float64) / p.temperature
        if 0 < p.top_k < z.size:
            kth = np.partition(z, -p.top_k)[-p.top_k]
            z[z < kth] = -np.inf
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        if p.top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            cumulative = np.cumsum(probs[order])
            # Keep the smallest head whose mass reaches top_p (always at least one token).
            n_keep = int(np.searchsorted(cumulative, p.top_p)) + 1
            cut = np.zeros_like(probs)
            cut[order[:n_keep]] = probs[order[:n_keep]]
            probs = cut / cut.sum()
        return probs

    def sample(self, logits: np.ndarray, history: Sequence[int] = ()) -> int:
        if self.params.greedy:
            if self.params.repetition_penalty == 1.0:
                return int(np.argmax(logits))
            return int(np.argmax(self.penalize(logits, history)))
        probs = self.probabilities(logits, history)
        return int(self.rng.choice(probs.size, p=probs))
