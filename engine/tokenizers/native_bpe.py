"""A GGUF file's byte-level BPE vocabulary on Cromwell's own tokenizer (native/src/bpe_tokenizer.h).

The tokenizer library builds a 151k-token vocabulary in about half a second, on every model
load; this one builds it in milliseconds, so a 1.5B model loads in well under the 200 ms a user
should wait. It gives the tokenizer library's ids and text (tests/test_native_bpe.py holds it to
them over code, prose and random Unicode): added tokens are cut out of the text first (leftmost,
longest; control tokens only when the text is parsed for them), the rest is cut into words by
llama.cpp's regexes for `tokenizer.ggml.pre` (the `regex` module, the tokenizer library's
patterns), and BPE merges run inside each word.

One known difference: characters unassigned in the Unicode version of the tokenizer library's
regex engine but assigned in `regex`'s (newer) tables can fall into another word class. Every
character assigned in Unicode 14 is cut the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine import _native
from engine.tokenizers.backend import AddedToken
from engine.tokenizers.gguf_import import GGUFTokenizerError, VocabSpec, merge_ids_of
from engine.tokenizers.pretokenizers import GGUF_PRE_IGNORE_MERGES, gguf_words


class NativeBPE:
    """The byte-level BPE of a checked GGUF vocabulary (`VocabSpec`, packed or not)."""

    def __init__(self, spec: VocabSpec) -> None:
        self.pre = spec.pre
        ignore_merges = spec.pre in GGUF_PRE_IGNORE_MERGES
        t = spec.tables
        if t is not None:
            self._merge_ids = (t.lefts, t.rights)
        else:
            self._merge_ids = spec.merge_ids or merge_ids_of(
                {token: i for i, token in enumerate(spec.tokens)}, spec.merges)
        try:
            if t is not None:
                self._bpe = _native.BpeTokenizer.from_utf8(t.tokens_utf8, t.n_tokens, t.lefts,
                                                           t.rights, ignore_merges)
            else:
                self._bpe = _native.BpeTokenizer(spec.tokens, *self._merge_ids, ignore_merges)
        except ValueError as e:
            raise GGUFTokenizerError(f"tokenizer.ggml.merges does not fit the vocabulary: {e}"
                                     ) from e
        self.added: dict[int, AddedToken] = {}
        for text, special in [(t, True) for t in spec.special] + [
                (t, False) for t in spec.user_defined]:
            token_id = self._bpe.find(text)
            if token_id is not None:
                self.added[token_id] = AddedToken(text, special)
        self._sync_added()

    def _sync_added(self) -> None:
        ids = sorted(self.added)
        self._bpe.set_added(ids, [self.added[i].special for i in ids])
        self._special_ids = frozenset(i for i in ids if self.added[i].special)

    # --- vocabulary -------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._bpe)

    def token_to_id(self, token: str) -> int | None:
        return self._bpe.find(token)

    def id_to_token(self, token_id: int) -> str | None:
        if not 0 <= token_id < len(self._bpe):
            return None
        return self._bpe.spelling(token_id)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (an added token's own text where it is not spelt in
        the byte-level alphabet)."""
        return self._bpe.token_bytes(token_id)

    def merges(self) -> list[str]:
        """The merges by rank, as the file spells them ("left right")."""
        spell = self._bpe.spelling
        return [f"{spell(a)} {spell(b)}" for a, b in zip(*self._merge_ids, strict=True)]

    # --- encode / decode --------------------------------------------------------------------

    def encode(self, text: str, parse_special: bool = True) -> list[int]:
        ids: list[int] = []
        for piece, token_id in self._bpe.split_added(text, parse_special):
            if token_id >= 0:
                ids.append(token_id)
            else:
                ids += self._bpe.encode_words(gguf_words(self.pre, piece))
        return ids

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        kept = [i for i in ids if not (skip_special and i in self._special_ids)]
        return self._bpe.decode_bytes(kept).decode("utf-8", errors="replace")

    # --- growing the vocabulary -------------------------------------------------------------

    def add_special_tokens(self, tokens: Sequence[str]) -> None:
        """Make `tokens` special: those in the vocabulary keep their id, the others get the
        next ids, in order."""
        new = [t for t in dict.fromkeys(tokens) if self._bpe.find(t) is None]
        if new:
            known = [self._bpe.spelling(i) for i in range(len(self._bpe))]
            self._bpe = _native.BpeTokenizer([*known, *new], *self._merge_ids,
                                             self.pre in GGUF_PRE_IGNORE_MERGES)
        for t in tokens:
            self.added[self._bpe.find(t)] = AddedToken(t, True)
        self._sync_added()

