"""The load cache (engine/runtime/load_cache.py): a second load of a file reuses what the first
learnt, gives the same tokens, and never trusts an entry that no longer matches the file or
does not read back whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gguf import GGUFWriter
from tiny_gguf import write_tiny_gguf

import engine.runtime
from engine.runtime import load_cache
from engine.tokenizers.hf_backend import bytes_to_unicode

SAMPLE = "def área(r):\n    return 3.14159 * r ** 2  # ok\n<|im_start|>user\tπ 😀<|im_end|>\n"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "load-cache"
    monkeypatch.setenv("CROMWELL_LOAD_CACHE", str(folder))
    return folder


def test_a_second_load_reuses_the_entry_and_gives_the_same_tokens(smollm2_path: Path) -> None:
    first = engine.runtime.load(str(smollm2_path))
    assert not first.file.layout_reused
    assert load_cache.entry_path(smollm2_path).is_file()
    second = engine.runtime.load(str(smollm2_path))
    assert second.file.layout_reused
    assert second.tokenizer.encode(SAMPLE) == first.tokenizer.encode(SAMPLE)
    assert second.tokenizer.encode(SAMPLE, parse_special=False) == first.tokenizer.encode(
        SAMPLE, parse_special=False
    )
    assert second.stop_ids == first.stop_ids
    assert second.tokenizer.special_tokens == first.tokenizer.special_tokens
    assert second.tokenizer.chat_template == first.tokenizer.chat_template
    # The skipped arrays still read back on demand, equal to a full parse.
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        assert second.file.metadata[key] == first.file.metadata[key]


def _letters_vocab(swap: bool):
    """A byte-level vocabulary over 1,032 tokens (so the token list is read lazily); `swap`
    exchanges the ids of 'ab' and 'ba', which leaves the file's size unchanged."""
    alphabet = list(bytes_to_unicode().values())
    letters = "abcdefghijklmnopqrstuvwxyz"
    pairs = [a + b for a in letters for b in letters]
    triples = [p + c for p in pairs[:100] for c in "a"]
    tokens = alphabet + pairs + triples
    if swap:
        i, j = tokens.index("ab"), tokens.index("ba")
        tokens[i], tokens[j] = tokens[j], tokens[i]
    merges = [f"{p[0]} {p[1]}" for p in pairs] + [f"{t[:2]} {t[2]}" for t in triples]

    def add(writer: GGUFWriter) -> None:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_merges(merges)

    return add


def test_a_file_rewritten_with_the_same_size_and_mtime_gets_a_new_tokenizer(
    tmp_path: Path,
) -> None:
    path = write_tiny_gguf(tmp_path / "tiny.gguf", extra=_letters_vocab(swap=False))
    before = engine.runtime.load(str(path))
    ab = before.tokenizer.encode("ab")
    st = path.stat()
    entry = load_cache.entry_path(path)
    write_tiny_gguf(path, extra=_letters_vocab(swap=True))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert load_cache.entry_path(path) == entry  # same identity: only the hash can tell
    after = engine.runtime.load(str(path))
    assert not after.file.layout_reused
    assert after.tokenizer.encode("ab") != ab
    assert after.tokenizer.encode("ab") == [after.tokenizer.token_to_id("ab")]
    assert engine.runtime.load(str(path)).file.layout_reused  # the entry was replaced


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_a_corrupt_entry_is_rebuilt_with_the_same_tokens(smollm2_path: Path, damage: str) -> None:
    ids = engine.runtime.load(str(smollm2_path)).tokenizer.encode(SAMPLE)
    entry = load_cache.entry_path(smollm2_path)
    raw = bytearray(entry.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) - 1000]
    elif damage == "flip":
        raw[-5000] ^= 0x01  # inside the merges: only the CRC-32 of the blobs sees it
    elif damage == "garbage":
        raw = bytearray(b"\x00\xff" * 300)
    else:
        raw = bytearray()
    entry.write_bytes(bytes(raw))
    assert load_cache.read(smollm2_path) is None
    model = engine.runtime.load(str(smollm2_path))
    assert not model.file.layout_reused
    assert model.tokenizer.encode(SAMPLE) == ids
    assert load_cache.read(smollm2_path) is not None  # rewritten whole


def test_an_unwritable_cache_only_costs_the_full_build(
    smollm2_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CROMWELL_LOAD_CACHE", str(blocker / "load-cache"))
    model = engine.runtime.load(str(smollm2_path))
    assert model.tokenizer.encode("def f(): pass") and not model.file.layout_reused
