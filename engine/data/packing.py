"""Tokens: examples encoded with any tokenizer that has `encode(text) -> list[int]` (and, for
edits, the model's chat template), packed into fixed-length sequences with a loss mask, and
batched as numpy arrays.

Plain code is trained on every token; an edit example only on its target (the prompt is
context, not something to imitate), which is what the mask says; it is asked exactly as the
product asks for an edit, in the tokenizer's chat template. Documents are packed back to back;
a document longer than the sequence continues in the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.edit_format import ChatTemplated, chat_renderer

from .edit_makers import EditExample, to_prompt
from .fim import FIM_MARKERS, FimExample, to_fim_prompt


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


class ChatTokenizer(Tokenizer, ChatTemplated, Protocol):
    """A tokenizer with the model's chat template, which edit prompts are rendered in."""


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    mask: list[int]  # 1 where the model is trained to predict this token


def encode_text(text: str, tokenizer: Tokenizer, eos_id: int | None = None) -> Encoded:
    ids = list(tokenizer.encode(text)) + ([eos_id] if eos_id is not None else [])
    return Encoded(ids, [1] * len(ids))


def encode_edit(example: EditExample, tokenizer: ChatTokenizer, context_lines: int = 60) -> Encoded:
    """Prompt tokens (mask 0), then target tokens (mask 1): the product's own edit prompt in
    the tokenizer's chat template (`edit_makers.to_prompt`). Prompt and target are encoded
    separately, so no token straddles the boundary and the mask is exact."""
    prompt = to_prompt(example, chat_renderer(tokenizer), context_lines)
    head, tail = list(tokenizer.encode(prompt.prompt)), list(tokenizer.encode(prompt.target))
    return Encoded(head + tail, [0] * len(head) + [1] * len(tail))


def encode_fim(
    example: FimExample,
    tokenizer: Tokenizer,
    eos_id: int | None = None,
    markers: Mapping[str, str] = FIM_MARKERS,
) -> Encoded:
    """Prompt tokens (mask 0), the middle and the end-of-text token (mask 1): the model
    learns to write the middle and then stop."""
    prompt = to_fim_prompt(example, markers)
    head = list(tokenizer.encode(prompt.prompt))
    tail = list(tokenizer.encode(prompt.target)) + ([eos_id] if eos_id is not None else [])
    return Encoded(head + tail, [0] * len(head) + [1] * len(tail))


class PackedStream:
    """Sequences of exactly `seq_len` tokens from a resumable stream of `Encoded` examples.

    `source` must have `state_dict()/load_state_dict()` (an ExampleStream or the loader) whose
    state, read right after an example was produced, resumes after that example. Our own state
    is the source's state plus the tokens not yet emitted.
    """

    def __init__(
        self, source: Any, seq_len: int, max_example_tokens: int | None = None
    ) -> None:
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2, got {seq_len}")
        self.source = source
        self.seq_len = seq_len
        self.max_example_tokens = max_example_tokens
        self._ids: list[int] = []
        self._mask: list[int] = []
        self._source_state = source.state_dict()
        self.dropped = 0

    def state_dict(self) -> dict[str, Any]:
        return {"source": self._source_state, "ids": list(self._ids), "mask": list(self._mask)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["ids"]) != len(state["mask"]):
            raise ValueError("packed state has ids and mask of different lengths")
        self.source.load_state_dict(state["source"])
        self._source_state = state["source"]
        self._ids, self._mask = list(state["ids"]), list(state["mask"])

    def __iter__(self) -> Iterator[tuple[list[int], list[int]]]:
        n = self.seq_len
        for encoded in self.source:
            if not isinstance(encoded, Encoded):
                raise TypeError(f"PackedStream packs encoded text examples, got "
                                f"{type(encoded).__name__} (pictures go to vision_batches)")
            source_state = self.source.state_dict()
            if self.max_example_tokens is not None and len(encoded.ids) > self.max_example_tokens:
                self.dropped += 1
                self._source_state = source_state
                continue
            self._ids += encoded.ids
            self._mask += encoded.mask
            self._source_state = source_state
            while len(self._ids) >= n:
                ids, mask = self._ids[:n], self._mask[:n]
                self._ids, self._mask = self._ids[n:], self._mask[n:]
                yield ids, mask


def batches(
    sequences: Iterable[tuple[list[int], list[int]]], batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, mask) int64 / uint8 arrays of shape (batch_size, seq_len); a last partial batch
    is dropped (every step of a run has the same shape)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    ids: list[list[int]] = []
    masks: list[list[int]] = []
    for seq, mask in sequences:
        ids.append(seq)
        masks.append(mask)
        if len(ids) == batch_size:
            yield np.asarray(ids, dtype=np.int64), np.asarray(masks, dtype=np.uint8)
            ids, masks = [], []
