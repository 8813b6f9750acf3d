"""engine._native.vocab_objects: a tokenizer's Python objects from a load-cache entry, equal to
the ones Python would build, and a clear error for counts or ids that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from engine import _native


def build(tokens: list[str], merges: list[tuple[int, int]]) -> tuple:
    blob = "\0".join(tokens).encode("utf-8", "surrogatepass")
    ids = np.array(merges, np.int32).reshape(-1, 2)
    return _native.vocab_objects(blob, len(tokens), ids[:, 0].copy(), ids[:, 1].copy())


def test_objects_match_the_python_construction() -> None:
    tokens = ["a", "b", "ab", "Ġ", "Ġab", "", "\udcff", "日本", "a"]  # a repeat: last id wins
    merges = [(0, 1), (3, 2), (7, 7)]
    got_tokens, vocab, got_merges = build(tokens, merges)
    assert got_tokens == tokens
    assert vocab == dict(zip(tokens, range(len(tokens)), strict=True))
    assert list(vocab) == list(dict(zip(tokens, range(len(tokens)), strict=True)))
    assert got_merges == [(tokens[a], tokens[b]) for a, b in merges]
    assert all(type(m) is tuple for m in got_merges)
    assert got_merges[1][1] is got_tokens[2]  # the vocabulary's own string objects


def test_no_tokens() -> None:
    assert build([], []) == ([], {}, [])


@pytest.mark.parametrize("n_tokens", [2, 4])
def test_a_token_count_that_does_not_fit_is_refused(n_tokens: int) -> None:
    no_merges = np.empty(0, np.int32)
    with pytest.raises(ValueError, match="NUL-separated tokens"):
        _native.vocab_objects(b"a\0b\0c", n_tokens, no_merges, no_merges)


@pytest.mark.parametrize("bad", [-1, 3])
def test_a_merge_id_outside_the_vocabulary_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="merge 1 names a token id outside 0..2"):
        build(["a", "b", "ab"], [(0, 1), (bad, 1)])


def test_arrays_of_another_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="lefts"):
        _native.vocab_objects(b"a", 1, np.zeros(1, np.int64), np.zeros(1, np.int32))
    with pytest.raises(ValueError, match="same length"):
        _native.vocab_objects(b"a", 1, np.zeros(1, np.int32), np.zeros(2, np.int32))
