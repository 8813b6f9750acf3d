"""Tokenizers: Cromwell's code-aware BPE, and byte-level BPE vocabularies read from GGUF files.

    tok = load_cromwell_bpe()                 # the committed 50,000-token code BPE
    tok = from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf")
    ids = tok.encode("def f():\n    return 1\n")
    text = tok.decode(ids)                    # == the input: byte-level BPE is lossless

Both are `CodeTokenizer`s: GGUF vocabularies on Cromwell's own byte-level BPE (native, built in
milliseconds), the code BPE on HF `tokenizers` (its file is that library's format). Special
tokens written in the text are matched whole (`parse_special=False` spells them out as plain
text instead, for untrusted file contents).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.tokenizers import chat_template, cromwell_bpe
from engine.tokenizers.backend import AddedToken, TokenizerBackend
from engine.tokenizers.gguf_import import KEY_PREFIX, VocabSpec, vocab_spec
from engine.tokenizers.gguf_meta import as_metadata
from engine.tokenizers.hf_backend import bytes_to_unicode
from engine.tokenizers.special_tokens import CROMWELL_TOKENS, FIM_ALIASES

# Token texts that end generation whatever the model (llama.cpp's list of the same).
_EOG_TEXTS = frozenset(
    {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"}
)


class CodeTokenizer:
    """A byte-level BPE tokenizer with its special tokens and chat template, over a backend
    (engine/tokenizers/backend.py): Cromwell's own BPE for GGUF vocabularies, the tokenizer
    library for Cromwell's code BPE."""

    def __init__(
        self,
        backend: TokenizerBackend,
        *,
        name: str,
        bos_id: int | None,
        eos_id: int | None,
        pad_id: int | None,
        add_bos: bool = False,
        add_eos: bool = False,
        chat_template: str | None = None,
    ) -> None:
        self.backend = backend
        self.name = name
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.add_bos = add_bos
        self.add_eos = add_eos
        self.chat_template = chat_template

    def __repr__(self) -> str:
        return f"CodeTokenizer({self.name!r}, vocab_size={self.vocab_size})"

    # --- vocabulary -------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included (the embedding needs this many rows)."""
        return self.backend.vocab_size

    @property
    def added_tokens(self) -> dict[int, AddedToken]:
        """Tokens matched whole in text, by id."""
        return self.backend.added

    @property
    def special_tokens(self) -> dict[str, int]:
        """Every special (control) token, text -> id."""
        return {t.content: i for i, t in self.backend.added.items() if t.special}

    @property
    def eog_ids(self) -> frozenset[int]:
        """Ids that end generation: eos and the end-of-turn tokens of the vocabulary."""
        ids = {i for t, i in self.special_tokens.items() if t in _EOG_TEXTS}
        if self.eos_id is not None:
            ids.add(self.eos_id)
        return frozenset(ids)

    @property
    def missing_bytes(self) -> frozenset[int]:
        """Bytes with no token of their own. Text containing one cannot round-trip: it is
        dropped when no larger token covers it, as llama.cpp drops it. Empty for the Cromwell
        BPE; SmolLM2 lacks a few control characters (e.g. 0x1d) and bytes that UTF-8 never
        uses."""
        return frozenset(b for b, c in bytes_to_unicode().items() if self.token_to_id(c) is None)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(token_id)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for: what a streaming decoder appends before it knows
        whether a multi-byte character is complete."""
        try:
            return self.backend.token_bytes(token_id)
        except IndexError:
            raise ValueError(
                f"token id {token_id} is outside the vocabulary of {self.name}") from None

    def merges(self) -> list[str]:
        """The merges by rank, "left right" (what a GGUF file's tokenizer.ggml.merges holds)."""
        return self.backend.merges()

    # --- encode / decode --------------------------------------------------------------------

    def encode(self, text: str, add_special: bool = False, parse_special: bool = True) -> list[int]:
        """Token ids of `text`. `add_special` adds bos/eos where the vocabulary asks for them
        (llama.cpp's add_special); `parse_special=False` encodes special-token texts as plain
        text."""
        ids = self.backend.encode(text, parse_special)
        if add_special:
            if self.add_bos and self.bos_id is not None:
                ids.insert(0, self.bos_id)
            if self.add_eos and self.eos_id is not None:
                ids.append(self.eos_id)
        return ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.backend.encode_many(texts)

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        return self.backend.decode(ids, skip_special)

    def stream_decoder(self) -> StreamDecoder:
        """A decoder for ids arriving one at a time (generation), emitting text only once
        each character's bytes are complete."""
        return StreamDecoder(self)

    def count(self, text: str) -> int:
        """Number of tokens `encode(text)` gives."""
        return self.backend.count(text)

    # --- chat -------------------------------------------------------------------------------

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        **extra: Any,
    ) -> str:
        """The prompt text for `messages` ([{"role": ..., "content": ...}, ...])."""
        if not self.chat_template:
            raise chat_template.ChatTemplateError(f"{self.name} has no chat template")
        return chat_template.render(
            self.chat_template,
            messages,
            add_generation_prompt=add_generation_prompt,
            special_tokens={
                "bos_token": self._text_of(self.bos_id),
                "eos_token": self._text_of(self.eos_id),
                "pad_token": self._text_of(self.pad_id),
            },
            **extra,
        )

    def _text_of(self, token_id: int | None) -> str | None:
        return None if token_id is None else self.backend.id_to_token(token_id)

    # --- growing the vocabulary -------------------------------------------------------------

    def add_special_tokens(self, tokens: Sequence[str]) -> dict[str, int]:
        """Add `tokens` as special tokens (those already present keep their id); returns the
        id of each. New ids follow the current vocabulary in order."""
        self.backend.add_special_tokens(tokens)
        ids = {t: self.backend.token_to_id(t) for t in tokens}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise RuntimeError(f"tokens {missing} were not added to {self.name}")
        return {t: int(i) for t, i in ids.items() if i is not None}


class StreamDecoder:
    """Token ids in, text out, one id at a time; a multi-byte character split across tokens
    is held back until its last byte arrives."""

    def __init__(self, tok: CodeTokenizer) -> None:
        self._tok = tok
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        return self._utf8.decode(self._tok.token_bytes(token_id))

    def flush(self) -> str:
        """The text still held back (invalid trailing bytes become U+FFFD)."""
        return self._utf8.decode(b"", final=True)


@dataclass(frozen=True)
class AddedCromwellTokens:
    """Result of `extend_with_cromwell_tokens`."""

    added: dict[str, int]  # tokens that were new, with their new ids
    reused: dict[str, int]  # Cromwell token -> id of the token already playing its role
    old_vocab_size: int
    new_vocab_size: int


def extend_with_cromwell_tokens(tok: CodeTokenizer) -> AddedCromwellTokens:
    """Give `tok` the seed's special tokens and the FIM tokens that it lacks.

    A FIM token the vocabulary already has under another spelling llama.cpp knows (e.g.
    `<|fim_prefix|>`) is reused, not duplicated. The embedding must be resized to
    `new_vocab_size` rows by the caller.
    """
    old = tok.vocab_size
    reused: dict[str, int] = {}
    missing: list[str] = []
    for token in CROMWELL_TOKENS:
        spellings = (token, *FIM_ALIASES.get(token, ()))
        found = next((i for s in spellings if (i := tok.token_to_id(s)) is not None), None)
        if found is None:
            missing.append(token)
        else:
            reused[token] = found
    added = tok.add_special_tokens(missing) if missing else {}
    return AddedCromwellTokens(added, reused, old, tok.vocab_size)


def load_cromwell_bpe(path: str | Path | None = None) -> CodeTokenizer:
    """Cromwell's own code BPE (50,000 tokens), from the file committed in the package."""
    path = Path(path) if path is not None else cromwell_bpe.ASSET_PATH
    if not path.is_file():
        raise FileNotFoundError(f"Cromwell BPE file not found: {path}")
    from tokenizers import Tokenizer

    from engine.tokenizers.hf_backend import HFBackend

    tok = Tokenizer.from_file(str(path))
    return CodeTokenizer(
        HFBackend(tok),
        name="cromwell-bpe-50k",
        bos_id=tok.token_to_id(cromwell_bpe.BOS),
        eos_id=tok.token_to_id(cromwell_bpe.EOS),
        pad_id=tok.token_to_id(cromwell_bpe.PAD),
        add_bos=True,
        chat_template=cromwell_bpe.CHAT_TEMPLATE,
    )


def from_gguf(source: str | Path | Mapping[str, Any] | Any) -> CodeTokenizer:
    """The tokenizer of a GGUF file: a path (only the metadata section is read), an open
    `gguf.GGUFReader`, or a mapping of its metadata keys to values."""
    meta = as_metadata(source, KEY_PREFIX)
    name = Path(source).name if isinstance(source, str | Path) else "gguf"
    return from_vocab_spec(vocab_spec(meta), name)


def from_vocab_spec(spec: VocabSpec, name: str = "gguf") -> CodeTokenizer:
    """The tokenizer of a checked GGUF vocabulary (`gguf_import.vocab_spec`, or its cached
    copy: engine/runtime/load_cache.py), on Cromwell's own byte-level BPE."""
    from engine.tokenizers.native_bpe import NativeBPE

    return CodeTokenizer(
        NativeBPE(spec),
        name=name,
        bos_id=spec.bos_id,
        eos_id=spec.eos_id,
        pad_id=spec.pad_id,
        add_bos=spec.add_bos,
        add_eos=spec.add_eos,
        chat_template=spec.chat_template,
    )
