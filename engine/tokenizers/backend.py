"""What `CodeTokenizer` (engine/tokenizer.py) asks of the tokenizer under it. Two stand under
it: Cromwell's own byte-level BPE for GGUF vocabularies (native_bpe.py), and the tokenizer
library for Cromwell's code BPE (hf_backend.py), whose file is the library's own format."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class AddedToken:
    """A token matched whole in text: special (control) ones can be spelt out instead, and
    skipped when decoding."""

    content: str
    special: bool


class TokenizerBackend(Protocol):
    added: dict[int, AddedToken]  # id -> the added token

    @property
    def vocab_size(self) -> int: ...  # ids, added tokens included

    def token_to_id(self, token: str) -> int | None: ...

    def id_to_token(self, token_id: int) -> str | None: ...

    def token_bytes(self, token_id: int) -> bytes: ...  # what the token stands for

    def merges(self) -> list[str]: ...  # by rank, "left right"

    def encode(self, text: str, parse_special: bool = True) -> list[int]: ...

    def count(self, text: str) -> int: ...  # len(encode(text))

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]: ...

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str: ...

    def add_special_tokens(self, tokens: Sequence[str]) -> None: ...
