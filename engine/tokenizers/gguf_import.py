"""A GGUF file's byte-level BPE vocabulary as an HF `tokenizers.Tokenizer`, with llama.cpp's
semantics: the same pre-tokenizer regexes (chosen by `tokenizer.ggml.pre`), the merges by
rank, control tokens special (matched whole in text, skippable on decode), user-defined tokens
matched whole in text but decoded as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models

from engine.tokenizers.pretokenizers import (
    GGUF_PRE_IGNORE_MERGES,
    GGUF_PRE_REGEXES,
    UnknownPreTokenizerError,
    gguf_pretokenizer,
)

KEY_PREFIX = "tokenizer."


class TokenType(IntEnum):
    """`tokenizer.ggml.token_type` values (llama.cpp's llama_token_type)."""

    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


class GGUFTokenizerError(ValueError):
    """The GGUF tokenizer metadata is missing, inconsistent, or of an unsupported kind."""


def _optional_id(meta: Mapping[str, Any], key: str, n_tokens: int) -> int | None:
    value = meta.get(key)
    if value is None:
        return None
    value = int(value)
    if not 0 <= value < n_tokens:
        # llama.cpp warns and ignores such an id; a silent fallback would hide a broken file.
        raise GGUFTokenizerError(f"{key} = {value} is outside the vocabulary (0..{n_tokens - 1})")
    return value


def _required(meta: Mapping[str, Any], key: str) -> Any:
    if key not in meta:
        raise GGUFTokenizerError(f"GGUF metadata has no {key!r}")
    return meta[key]


@dataclass(frozen=True)
class VocabTables:
    """A vocabulary and its merges packed as a load-cache entry holds them: the spellings'
    UTF-8 joined by NULs, the merges as int32 token ids. The native tokenizer builds from these
    without a Python object per token."""

    tokens_utf8: bytes | memoryview
    n_tokens: int
    lefts: Any  # numpy int32, by rank
    rights: Any


@dataclass(frozen=True)
class VocabSpec:
    """A checked GGUF vocabulary: everything a tokenizer is built from, so a cache can store
    it and build the same tokenizer again. The token and merge lists are empty when `tables`
    holds them packed (a load-cache entry's form); `unpacked()` gives the lists."""

    tokens: list[str]  # id order; empty tokens already renamed "[EMPTY_<id>]"
    merges: list[tuple[str, str]]  # by rank
    pre: str
    special: list[str]  # control and unknown tokens, id order
    user_defined: list[str]  # id order
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None
    tables: VocabTables | None = field(default=None, compare=False)  # arrays: no ==
    # The merges as int32 token ids (left, right), when whoever made the spec had them
    # (vocab_spec does: it builds the token -> id map anyway); None when a merge names a string
    # that is not a token, which the tokenizer then refuses by name.
    merge_ids: tuple[Any, Any] | None = field(default=None, compare=False)

    def unpacked(self) -> VocabSpec:
        """This spec with its token and merge lists (made from `tables` if it is packed)."""
        if self.tables is None:
            return self
        from engine import _native

        t = self.tables
        tokens, _, merges = _native.vocab_objects(t.tokens_utf8, t.n_tokens, t.lefts, t.rights)
        return replace(self, tokens=tokens, merges=merges, tables=None)


def vocab_spec(meta: Mapping[str, Any]) -> VocabSpec:
    """Read and check `tokenizer.*` metadata (as read by gguf_meta): packed (`tables`) when
    the vocabulary is clean, else with the lists, the merges then checked against the
    vocabulary when the tokenizer is built."""
    model = _required(meta, "tokenizer.ggml.model")
    if model != "gpt2":
        raise GGUFTokenizerError(
            f"tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2') vocabularies "
            "are supported"
        )
    # llama.cpp treats a missing pre name as 'default' (with a loud warning); so do we.
    pre = str(meta.get("tokenizer.ggml.pre") or "default")
    if pre not in GGUF_PRE_REGEXES:  # (building the library's pre-tokenizer cost a first load)
        raise UnknownPreTokenizerError(pre)

    import numpy as np

    from engine import _native

    tokens: list[str] = _required(meta, "tokenizer.ggml.tokens")
    merges: list[str] = _required(meta, "tokenizer.ggml.merges")
    n = len(tokens)
    types = meta.get("tokenizer.ggml.token_type")
    types = np.asarray([TokenType.NORMAL] * n if types is None else types, np.int64)
    if len(types) != n:
        raise GGUFTokenizerError(f"token_type has {len(types)} entries for {n} tokens")

    def name(i: int) -> str:  # llama.cpp names empty tokens "[EMPTY_<id>]": ids stay distinct
        return tokens[i] or f"[EMPTY_{i}]"

    special = np.flatnonzero((types == TokenType.CONTROL) | (types == TokenType.UNKNOWN))
    user_defined = np.flatnonzero(types == TokenType.USER_DEFINED)
    added = {"special": [name(int(i)) for i in special],
             "user_defined": [name(int(i)) for i in user_defined]}
    # A clean vocabulary (every token distinct, every merge two tokens) is packed in one
    # native pass, the load-cache entry's form; the lists below only say what is wrong.
    packed = _native.vocab_tables(tokens, merges)
    if packed is not None:
        blob, lefts, rights = packed
        return VocabSpec(tokens=[], merges=[], **added, **_spec_fields(meta, pre, n),
                         tables=VocabTables(blob, n, lefts, rights))

    tokens = [name(i) for i in range(n)]
    vocab = dict(zip(tokens, range(n), strict=True))
    if len(vocab) != n:
        dup = next(t for i, t in enumerate(tokens) if vocab[t] != i)
        raise GGUFTokenizerError(f"token {dup!r} appears twice in tokenizer.ggml.tokens")
    parts = [m.partition(" ") for m in merges]
    broken = next((m for m, (_, sep, _) in zip(merges, parts, strict=True) if not sep), None)
    if broken is not None:
        raise GGUFTokenizerError(f"tokenizer.ggml.merges: {broken!r} is not two tokens")
    merge_pairs = [(left, right) for left, _, right in parts]
    try:
        merge_ids: tuple[Any, Any] | None = merge_ids_of(vocab, merge_pairs)
    except GGUFTokenizerError:
        merge_ids = None  # the tokenizer refuses it by name when it is built
    return VocabSpec(tokens=tokens, merges=merge_pairs, **added, **_spec_fields(meta, pre, n),
                     merge_ids=merge_ids)


def _spec_fields(meta: Mapping[str, Any], pre: str, n: int) -> dict[str, Any]:
    """The spec's ids, flags and template from the metadata."""
    return dict(
        pre=pre,
        bos_id=_optional_id(meta, "tokenizer.ggml.bos_token_id", n),
        eos_id=_optional_id(meta, "tokenizer.ggml.eos_token_id", n),
        pad_id=_optional_id(meta, "tokenizer.ggml.padding_token_id", n),
        unk_id=_optional_id(meta, "tokenizer.ggml.unknown_token_id", n),
        # llama.cpp's defaults for BPE vocabularies: BOS only for the llama3 family.
        add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", pre in GGUF_PRE_IGNORE_MERGES)),
        add_eos=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        chat_template=meta.get("tokenizer.chat_template"),
    )


def merge_ids_of(vocab: dict[str, int], pairs: list[tuple[str, str]]) -> tuple[Any, Any]:
    """The merges' (left, right) token ids as two int32 arrays; GGUFTokenizerError naming the
    first side that is not a token."""
    import numpy as np

    try:
        return tuple(  # type: ignore[return-value]
            np.fromiter((vocab[p[side]] for p in pairs), np.int32, len(pairs)) for side in (0, 1))
    except KeyError as e:
        raise GGUFTokenizerError(
            f"tokenizer.ggml.merges does not fit the vocabulary: {e.args[0]!r} is not a token"
        ) from None


def tokenizer_from_spec(spec: VocabSpec) -> Tokenizer:
    """The HF tokenizer of `spec`: byte-level BPE with llama.cpp's pre-tokenizer for
    `spec.pre`, control tokens special, user-defined tokens matched whole."""
    spec = spec.unpacked()
    vocab = dict(zip(spec.tokens, range(len(spec.tokens)), strict=True))
    try:
        bpe = models.BPE(
            vocab=vocab, merges=spec.merges, ignore_merges=spec.pre in GGUF_PRE_IGNORE_MERGES
        )
    except Exception as e:  # the Rust side names the offending merge
        raise GGUFTokenizerError(f"tokenizer.ggml.merges does not fit the vocabulary: {e}") from e
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = gguf_pretokenizer(spec.pre)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in spec.special])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in spec.user_defined])
    return tok

