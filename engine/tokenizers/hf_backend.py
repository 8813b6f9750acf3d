"""The tokenizer library (HF `tokenizers`) under `CodeTokenizer`: Cromwell's code BPE, whose
file is the library's own format. GGUF vocabularies run on native_bpe.py instead."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from tokenizers import AddedToken as LibraryAddedToken
from tokenizers import Tokenizer, pre_tokenizers

from engine.tokenizers.backend import AddedToken

# Above this many characters `encode` and `count` cut the text at line starts (see
# line_chunks) and encode the pieces in parallel.
CHUNK_CHARS = 1 << 15


class HFBackend:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self.hf = tokenizer
        self._literal: Tokenizer | None = None  # a twin that spells special tokens out
        self._byte_decoder = {c: b for b, c in bytes_to_unicode().items()}
        self._sync_added()

    def _sync_added(self) -> None:
        self.added = {i: AddedToken(t.content, bool(t.special))
                      for i, t in self.hf.get_added_tokens_decoder().items()}

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.hf.id_to_token(token_id)

    def token_bytes(self, token_id: int) -> bytes:
        text = self.hf.id_to_token(token_id)
        if text is None:
            raise IndexError(f"token id {token_id} is outside the vocabulary")
        added = self.added.get(token_id)
        if added is not None:
            return added.content.encode("utf-8")
        return bytes(self._byte_decoder[c] for c in text)

    def merges(self) -> list[str]:
        model = json.loads(self.hf.to_str())["model"]
        return [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]

    def encode(self, text: str, parse_special: bool = True) -> list[int]:
        tok = self.hf if parse_special else self._literal_twin()
        if len(text) <= CHUNK_CHARS or not self._chunkable():
            return tok.encode(text, add_special_tokens=False).ids
        return [i for e in tok.encode_batch_fast(line_chunks(text), False) for i in e.ids]

    def count(self, text: str) -> int:
        """Number of tokens `encode(text)` gives, without building the id list in Python."""
        if len(text) <= CHUNK_CHARS or not self._chunkable():
            return len(self.hf.encode_batch_fast([text], add_special_tokens=False)[0])
        return sum(len(e) for e in self.hf.encode_batch_fast(line_chunks(text), False))

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.hf.encode_batch_fast(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=skip_special)

    def add_special_tokens(self, tokens: Sequence[str]) -> None:
        self._literal = None
        self.hf.add_special_tokens(
            [LibraryAddedToken(t, special=True, normalized=False) for t in tokens])
        self._sync_added()

    def _chunkable(self) -> bool:
        # An added token holding a newline could straddle a cut.
        return not any("\n" in t.content for t in self.added.values())

    def _literal_twin(self) -> Tokenizer:
        if self._literal is None:
            twin = Tokenizer.from_str(self.hf.to_str())
            twin.encode_special_tokens = True
            self._literal = twin
        return self._literal


def line_chunks(text: str) -> list[str]:
    """`text` cut into pieces of about CHUNK_CHARS. Each cut falls just after a "\\n"
    with a non-whitespace character on both sides: there every supported pre-tokenizer ends
    a word, and the newline's own word is "\\n" whether the text goes on or not (a whitespace
    run before the cut would be cut differently by the GPT-2 regex's `\\s+(?!\\S)`)."""
    chunks: list[str] = []
    start = 0
    while len(text) - start > CHUNK_CHARS:
        cut = start + CHUNK_CHARS
        while cut < len(text) and not _is_cut_point(text, cut):
            cut += 1
        chunks.append(text[start:cut])
        start = cut
    chunks.append(text[start:])
    return chunks


def _is_cut_point(text: str, i: int) -> bool:
    return text[i - 1] == "\n" and not text[i].isspace() and not text[i - 2].isspace()


def bytes_to_unicode() -> dict[int, str]:
    """The byte-level alphabet: byte -> the printable character that stands for it."""
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())  # a list: `in` would scan it per byte
    printable = [b for b in range(256) if chr(b) in alphabet]
    mapping = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + n)
            n += 1
    return mapping
