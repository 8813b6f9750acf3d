"""Cromwell's code-aware BPE: the committed 50k vocabulary, lossless on code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_snippets import LONG_TEXT

from engine.data.split import is_heldout
from engine.tokenizer import CodeTokenizer, load_cromwell_bpe
from engine.tokenizers import code_corpus, cromwell_bpe
from engine.tokenizers.chat_template import ChatTemplateError
from engine.tokenizers.special_tokens import CROMWELL_TOKENS, FIM_TOKENS, SEED_TOKENS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tok() -> CodeTokenizer:
    return load_cromwell_bpe()


ROUND_TRIP = [
    "",
    "def f(x):\n\treturn x\n",
    "class A:\n    def m(self):\n\t    pass  # mixed: four spaces, then a tab and spaces\n",
    "if True:\r\n    x = 1\r\n\r\n",  # CRLF
    "trailing spaces   \nand tabs\t\t\n   \n",
    "s = 'héllo wörld' + \"日本語のコード\" + '😀🚀👩‍💻'\n",
    "// 中文注释\nint main() { return 0; }\n",
    "\x00\x01\x7f binary-ish \ufeff BOM \u200b zero-width",
    " leading space",
    "\n\n\n",
    "a" * 300,
    "    " * 40 + "deep()\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_is_lossless(tok: CodeTokenizer, text: str) -> None:
    assert tok.decode(tok.encode(text)) == text
    assert tok.count(text) == len(tok.encode(text))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_round_trip_any_text(tok: CodeTokenizer, text: str) -> None:
    assert tok.decode(tok.encode(text, parse_special=False)) == text


def test_vocabulary_size_and_special_ids(tok: CodeTokenizer) -> None:
    assert tok.vocab_size == cromwell_bpe.VOCAB_SIZE
    assert tok.missing_bytes == frozenset()  # every byte has a token: nothing is ever lost
    for i, t in enumerate(cromwell_bpe.CROMWELL_SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i
    assert tok.special_tokens == {t: i for i, t in enumerate(cromwell_bpe.CROMWELL_SPECIAL_TOKENS)}
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert tok.eos_id in tok.eog_ids


def test_seed_and_fim_tokens_are_present() -> None:
    assert set(SEED_TOKENS) == {
        "<FILE>", "<EDIT>", "</EDIT>", "<DIFF>", "<INS>", "<DEL>",
        "<IMAGE>", "<VISION_START>", "<VISION_END>",
    }
    assert FIM_TOKENS == ("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>")


@pytest.mark.parametrize("special", CROMWELL_TOKENS)
def test_special_tokens_are_single_ids_and_never_split(tok: CodeTokenizer, special: str) -> None:
    sid = tok.token_to_id(special)
    assert tok.encode(special) == [sid]
    ids = tok.encode(f"x={special}1\n{special}{special}")
    assert ids.count(sid) == 3
    assert tok.decode(ids) == f"x={special}1\n{special}{special}"
    assert tok.decode(ids, skip_special=True) == "x=1\n"


def test_special_text_can_be_encoded_literally(tok: CodeTokenizer) -> None:
    # A file that happens to contain "<EDIT>" must not inject the marker.
    ids = tok.encode("<EDIT>", parse_special=False)
    assert tok.token_to_id("<EDIT>") not in ids
    assert len(ids) > 1
    assert tok.decode(ids) == "<EDIT>"


def test_digits_are_split(tok: CodeTokenizer) -> None:
    ids = tok.encode("12345")
    assert [tok.decode([i]) for i in ids] == ["1", "2", "3", "4", "5"]
    for i in tok.encode("x = 3.14159 + 2024 * 0x1F"):
        assert sum(c.isdigit() for c in tok.decode([i])) <= 1


@pytest.mark.parametrize("indent", [" " * 4, " " * 8, " " * 12, "\t", "\t\t"])
def test_indentation_runs_are_single_tokens(tok: CodeTokenizer, indent: str) -> None:
    ids = tok.encode(f"if x:\n{indent}return y\n")
    pieces = [tok.decode([i]) for i in ids]
    assert indent in pieces
    assert "return" in pieces  # the keyword after the indentation starts clean


def test_add_special_adds_bos(tok: CodeTokenizer) -> None:
    assert tok.encode("x", add_special=True) == [tok.bos_id, *tok.encode("x")]


def test_token_bytes_concatenate_to_the_text(tok: CodeTokenizer) -> None:
    text = "naïve 世界 😀 <EDIT>\n"
    assert b"".join(tok.token_bytes(i) for i in tok.encode(text)) == text.encode()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.token_bytes(10**9)


def test_long_text_encoded_in_chunks_is_encoded_whole(tok: CodeTokenizer) -> None:
    assert len(LONG_TEXT) > 1 << 16  # above the chunking threshold
    whole = tok.backend.hf.encode(LONG_TEXT, add_special_tokens=False).ids
    assert tok.encode(LONG_TEXT) == whole
    assert tok.count(LONG_TEXT) == len(whole)
    assert tok.decode(whole) == LONG_TEXT


def test_stream_decoder_emits_whole_characters(tok: CodeTokenizer) -> None:
    text = "x = '😀 世界 naïve' <EDIT>\n"
    stream = tok.stream_decoder()
    pieces = [stream.push(i) for i in tok.encode(text)] + [stream.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)  # no half character was ever emitted
    assert len([p for p in pieces if p]) < len(pieces)  # the emoji's bytes span tokens
    broken = tok.stream_decoder()
    assert broken.push(tok.encode("😀")[0]) == ""
    assert broken.flush() == "\ufffd"


def test_chat_template(tok: CodeTokenizer) -> None:
    msgs = [{"role": "system", "content": "Edit code."}, {"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(msgs) == (
        "<|im_start|>system\nEdit code.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert not tok.apply_chat_template(msgs, add_generation_prompt=False).endswith("assistant\n")
    with pytest.raises(ChatTemplateError, match="'role' and 'content'"):
        tok.apply_chat_template([{"content": "no role"}])


def test_committed_file_is_a_byte_level_bpe_with_the_code_pretokenizer() -> None:
    spec = json.loads(cromwell_bpe.ASSET_PATH.read_text())
    assert spec["model"]["type"] == "BPE"
    assert spec["decoder"]["type"] == "ByteLevel"
    splits = [p for p in spec["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"]
    from engine.tokenizers.pretokenizers import CODE_SPLIT_REGEX

    assert splits[0]["pattern"]["Regex"] == CODE_SPLIT_REGEX


def corpus_file(source: str, rel: str) -> code_corpus.CorpusFile:
    return code_corpus.CorpusFile(source, rel, Path(rel))


def test_held_out_split_is_the_projects_rule_by_path() -> None:
    assert corpus_file("stdlib", "os.py").held_out == corpus_file("stdlib", "os.py").held_out
    rels = [f"pkg/m{i}.py" for i in range(2000)]
    files = [corpus_file("stdlib", r) for r in rels]
    share = sum(f.held_out for f in files) / len(files)
    assert 0.07 < share < 0.13
    # One rule: training's path hash, keyed by source and path, at the tokenizer's fraction.
    assert all(f.held_out == is_heldout(f"stdlib/{f.rel}", code_corpus.HELDOUT_FRACTION)
               for f in files)
    # The source is part of the key: a path held out in one source is not so in every other.
    assert any(f.held_out != corpus_file("numpy", f.rel).held_out for f in files)


def test_compression_on_held_out_files_and_report(tok: CodeTokenizer) -> None:
    # The figure itself (not a speed): chars/token on a few held-out stdlib files, and the
    # report table in the docs.
    held = [f for f in code_corpus.stdlib_files() if f.held_out]
    texts = [t for f in held[:20] if (t := code_corpus.read_text(f.path))]
    assert texts
    chars = sum(map(len, texts))
    tokens = sum(tok.count(t) for t in texts)
    assert 2.0 < chars / tokens < 10.0
    report = (ROOT / "docs" / "TOKENIZER.md").read_text()
    assert re.search(r"\| all held-out \| \d+ \| [\d,]+ \| \d\.\d{3} \| \d\.\d{3} \|", report)
