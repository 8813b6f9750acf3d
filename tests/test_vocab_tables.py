"""engine._native.vocab_tables: a first load's vocabulary packed in one native pass, equal to
what Python builds from the same lists, and None (the Python checks then name the fault) for
every list that is not a clean vocabulary."""

from __future__ import annotations

import random

import numpy as np
import pytest

from engine import _native
from engine.tokenizers.gguf_import import GGUFTokenizerError, vocab_spec


def python_tables(tokens: list[str], merges: list[str]) -> tuple[bytes, list[int], list[int]]:
    named = [t or f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
    ids = {t: i for i, t in enumerate(named)}
    pairs = [m.partition(" ") for m in merges]
    return ("\0".join(named).encode("utf-8", "surrogatepass"),
            [ids[a] for a, _, _ in pairs], [ids[b] for _, _, b in pairs])


def test_tables_match_the_python_construction() -> None:
    tokens = ["a", "b", "ab", "Ġ", "Ġab", "", "\udcff", "日本", "日", "本", "", "a b"]
    merges = ["a b", "Ġ ab", "日 本", "[EMPTY_5] a", "\udcff [EMPTY_10]"]
    blob, lefts, rights = _native.vocab_tables(tokens, merges)
    want = python_tables(tokens, merges)
    assert blob == want[0]
    assert lefts.dtype == np.int32 and lefts.tolist() == want[1] and rights.tolist() == want[2]


def test_a_large_random_vocabulary() -> None:
    rng = random.Random(3)
    alphabet = "abcdefgĠ日本\udcff"
    tokens = sorted({"".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(20000)})
    merges = [f"{rng.choice(tokens)} {rng.choice(tokens)}" for _ in range(30000)]
    blob, lefts, rights = _native.vocab_tables(tokens, merges)
    want = python_tables(tokens, merges)
    assert (blob, lefts.tolist(), rights.tolist()) == want


def test_no_tokens() -> None:
    blob, lefts, rights = _native.vocab_tables([], [])
    assert blob == b"" and len(lefts) == len(rights) == 0


@pytest.mark.parametrize(("tokens", "merges"), [
    (["a", "b", "a"], []),  # a repeated token
    (["a", "", "[EMPTY_1]"], []),  # an empty token's name taken by another
    (["a", "b\0"], []),  # a NUL inside a token
    (["a", "b"], ["ab"]),  # a merge without a space
    (["a", "b"], ["a c"]),  # a side that is not a token
    (["a", "b"], ["a b", "a  b"]),  # " b" is not a token
])
def test_an_unclean_vocabulary_is_none(tokens: list[str], merges: list[str]) -> None:
    assert _native.vocab_tables(tokens, merges) is None


def test_vocab_spec_packs_a_clean_vocabulary_and_names_the_faults_of_others() -> None:
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "default",
            "tokenizer.ggml.tokens": ["a", "b", "ab", "", "<s>"],
            "tokenizer.ggml.token_type": [1, 1, 1, 1, 3], "tokenizer.ggml.merges": ["a b"]}
    spec = vocab_spec(meta)
    assert spec.tables is not None and spec.tokens == [] and spec.special == ["<s>"]
    full = spec.unpacked()
    assert full.tokens == ["a", "b", "ab", "[EMPTY_3]", "<s>"] and full.merges == [("a", "b")]
    with pytest.raises(GGUFTokenizerError, match="'a' appears twice"):
        vocab_spec({**meta, "tokenizer.ggml.tokens": ["a", "b", "ab", "a", "<s>"]})
    with pytest.raises(GGUFTokenizerError, match="'ab' is not two tokens"):
        vocab_spec({**meta, "tokenizer.ggml.merges": ["ab"]})
    unknown = vocab_spec({**meta, "tokenizer.ggml.merges": ["a c"]})
    assert unknown.tables is None and unknown.merge_ids is None  # the tokenizer names it
