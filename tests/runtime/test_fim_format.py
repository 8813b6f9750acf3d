"""The FIM format read from a model file (engine/runtime/fim_format.py): small random-weight
GGUFs with each family's markers as control tokens of a byte-level vocabulary -> the right
family and ids; metadata ids before spellings; a `cromwell` file's spellings alone never make it
a FIM model; markers encode as one id; the prompt layouts; overrides; `cromwell info --model`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from gguf import GGUFWriter
from tiny_gguf import write_tiny_gguf
from tokenizers import pre_tokenizers

import engine.runtime
from cromwell_cli.main import main
from engine.runtime.fim_format import FAMILY_NAMES, FimFormat, chunk_header, detect_fim
from engine.runtime.gguf_file import GGUFFile
from engine.tokenizer import CodeTokenizer, from_gguf

EOS = "<|endoftext|>"
QWEN = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|repo_name|>",
        "<|file_sep|>", "<|im_end|>"]
CODEGEMMA = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"]
STARCODER = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<repo_name>",
             "<file_sep>"]
CODELLAMA = ["\u2581<PRE>", "\u2581<SUF>", "\u2581<MID>", "\u2581<EOT>"]
DEEPSEEK = ["<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>",
            "<\uff5cfim\u2581end\uff5c>"]
CODESTRAL = ["[PREFIX]", "[SUFFIX]"]
# family, vocabulary markers, and the spellings expected as prefix, suffix, middle, pad,
# repo_name, file_sep (None: absent).
CASES = [
    ("qwen", QWEN, QWEN[:6]),
    ("codegemma", CODEGEMMA, [*CODEGEMMA[:3], None, None, "<|file_separator|>"]),
    ("starcoder", STARCODER, STARCODER),
    ("codellama", CODELLAMA, [*CODELLAMA[:3], None, None, None]),
    ("codellama", ["<PRE>", "<SUF>", "<MID>"], ["<PRE>", "<SUF>", "<MID>", None, None, None]),
    ("deepseek", DEEPSEEK, [*DEEPSEEK, None, None, None]),
    ("codestral", CODESTRAL, [*CODESTRAL, None, None, None, None]),
]
ROLES = ("prefix", "suffix", "middle", "pad", "repo_name", "file_sep")


@pytest.fixture(autouse=True)
def own_load_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROMWELL_LOAD_CACHE", str(tmp_path / "load-cache"))


def write_model(
    path: Path,
    markers: Sequence[str],
    arch: str = "llama",
    ids: Mapping[str, str] | None = None,
    metadata_arch: str | None = None,
    words: Sequence[str] = (),
) -> Path:
    """A tiny random-weight decoder whose vocabulary is the byte alphabet, "ab", `words` as
    plain tokens, an eos and `markers` as control tokens; `ids`: metadata key -> the token
    whose id it holds."""
    tokens = [*sorted(pre_tokenizers.ByteLevel.alphabet()), "ab", *words, EOS, *markers]
    types = [1] * (len(tokens) - len(markers) - 1) + [3] * (len(markers) + 1)

    def add_vocab(writer: GGUFWriter) -> None:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(["a b"])
        writer.add_eos_token_id(tokens.index(EOS))
        for key, text in (ids or {}).items():
            writer.add_uint32(key, tokens.index(text))

    return write_tiny_gguf(path, arch, extra=add_vocab, metadata_arch=metadata_arch,
                           sizes={"vocab": len(tokens)})


def fim_of(path: Path, override: str | None = None) -> tuple[FimFormat, CodeTokenizer]:
    tok = from_gguf(path)
    return detect_fim(GGUFFile(path).metadata, tok, override), tok


def spelt(fim: FimFormat, tok: CodeTokenizer) -> list[str | None]:
    return [None if (i := getattr(fim, r)) is None else tok.id_to_token(i) for r in ROLES]


@pytest.mark.parametrize(("family", "markers", "want"), CASES)
def test_each_familys_vocabulary_gives_its_format(
    tmp_path: Path, family: str, markers: list[str], want: list[str | None]
) -> None:
    fim, tok = fim_of(write_model(tmp_path / "m.gguf", markers))
    assert fim.family == family and fim.fills
    assert spelt(fim, tok) == want
    assert fim.spm == (family == "codestral")
    assert tok.eos_id in fim.end_ids
    assert {i for i in (fim.pad, fim.file_sep, fim.repo_name) if i is not None} <= fim.end_ids


def test_codegemma_is_told_from_qwen_by_its_architecture(tmp_path: Path) -> None:
    path = write_model(tmp_path / "g.gguf", QWEN[:4], metadata_arch="gemma")
    assert fim_of(path)[0].family == "codegemma"
    assert fim_of(write_model(tmp_path / "q.gguf", QWEN[:4]))[0].family == "qwen"


def test_metadata_ids_name_the_family_and_win_over_spellings(tmp_path: Path) -> None:
    # Both families' spellings in the vocabulary: by spelling alone Qwen's come first...
    both = QWEN + STARCODER
    assert fim_of(write_model(tmp_path / "s.gguf", both))[0].family == "qwen"
    # ...but the file's ids point at StarCoder's.
    keys = {"tokenizer.ggml.fim_pre_token_id": "<fim_prefix>",
            "tokenizer.ggml.fim_suf_token_id": "<fim_suffix>",
            "tokenizer.ggml.fim_mid_token_id": "<fim_middle>"}
    fim, tok = fim_of(write_model(tmp_path / "m.gguf", both, ids=keys))
    assert fim.family == "starcoder"
    # The roles the file leaves out come from the family's own spellings.
    assert spelt(fim, tok) == STARCODER


def test_metadata_ids_of_unknown_spellings_are_family_gguf(tmp_path: Path) -> None:
    odd = ["<fim-prefix>", "<fim-suffix>", "<fim-middle>", "<fim-sep>"]
    keys = {"tokenizer.ggml.fim_pre_token_id": odd[0], "tokenizer.ggml.fim_suf_token_id": odd[1],
            "tokenizer.ggml.fim_mid_token_id": odd[2], "tokenizer.ggml.fim_sep_token_id": odd[3]}
    path = write_model(tmp_path / "m.gguf", odd, ids=keys)
    fim, tok = fim_of(path)
    assert fim.family == "gguf" and fim.fills
    assert spelt(fim, tok) == [*odd[:3], None, None, odd[3]]
    assert fim_of(write_model(tmp_path / "n.gguf", odd))[0].family == "none"  # no ids: unknown


def test_older_metadata_keys_are_read(tmp_path: Path) -> None:
    keys = {"tokenizer.ggml.prefix_token_id": "\u2581<PRE>",
            "tokenizer.ggml.suffix_token_id": "\u2581<SUF>",
            "tokenizer.ggml.middle_token_id": "\u2581<MID>"}
    fim, tok = fim_of(write_model(tmp_path / "m.gguf", CODELLAMA, ids=keys))
    assert fim.family == "codellama" and spelt(fim, tok)[:3] == CODELLAMA[:3]


def test_a_metadata_id_outside_the_vocabulary_is_a_clear_error(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.gguf", STARCODER)
    meta = dict(GGUFFile(path).metadata)
    meta["tokenizer.ggml.fim_pre_token_id"] = 10_000
    with pytest.raises(ValueError, match="fim_pre_token_id = 10000 is outside the vocabulary"):
        detect_fim(meta, from_gguf(path))


def test_a_cromwell_file_fills_only_when_its_metadata_says_so(tmp_path: Path) -> None:
    # cromwell-smol's case: the markers were added to the vocabulary, never trained.
    plain = write_model(tmp_path / "c.gguf", STARCODER, metadata_arch="cromwell")
    none, tok = fim_of(plain)
    assert none.family == "none"
    # Its markers in the output still end a prefix-only completion: the text left the file.
    assert {tok.token_to_id(t) for t in STARCODER} <= none.end_ids
    keys = {"tokenizer.ggml.fim_pre_token_id": "<fim_prefix>",
            "tokenizer.ggml.fim_suf_token_id": "<fim_suffix>",
            "tokenizer.ggml.fim_mid_token_id": "<fim_middle>"}
    trained = write_model(tmp_path / "t.gguf", STARCODER, metadata_arch="cromwell", ids=keys)
    fim, tok = fim_of(trained)
    assert fim.family == "starcoder" and spelt(fim, tok) == STARCODER
    # A user who knows better may still ask for the format by name.
    assert fim_of(plain, "starcoder")[0].fills


def test_the_default_model_completes_prefix_only() -> None:
    from engine.train.export import ensure_cromwell_smol

    # The shipped adapter (engine/assets/cromwell-smol-fim) serves edits only: ghost text runs
    # on SmolLM2's weights, which never learnt the FIM markers, so the file does not declare
    # them.
    model = engine.runtime.load(str(ensure_cromwell_smol()))
    assert model.architecture == "cromwell"
    assert model.tokenizer.token_to_id("<fim_prefix>") is not None
    assert model.fim.family == "none" and not model.fim.fills
    assert model.tuned_tasks == {"edit"}


def test_a_vocabulary_without_markers_is_none(tmp_path: Path) -> None:
    fim, tok = fim_of(write_model(tmp_path / "m.gguf", []))
    assert fim.family == "none" and not fim.fills and fim.order == "prefix-only"
    assert spelt(fim, tok) == [None] * 6 and fim.end_ids == {tok.eos_id}
    # A marker's spelling that is a plain word of the vocabulary ends nothing.
    fim, tok = fim_of(write_model(tmp_path / "w.gguf", [], words=["<PRE>", "<file_sep>"]))
    assert fim.family == "none" and fim.end_ids == {tok.eos_id}


@pytest.mark.parametrize(("family", "markers", "want"), CASES)
def test_markers_encode_as_their_single_special_id(
    tmp_path: Path, family: str, markers: list[str], want: list[str | None]
) -> None:
    fim, tok = fim_of(write_model(tmp_path / "m.gguf", markers))
    a, b = tok.encode("a"), tok.encode("b")
    for role, text in zip(ROLES, want, strict=True):
        if text is None:
            continue
        tid = getattr(fim, role)
        assert tok.encode(text) == [tid]
        assert tok.encode(f"a{text}b") == [*a, tid, *b]
        # File text that spells a marker stays text (chunk_ids encodes it this way).
        assert tid not in tok.encode(text, parse_special=False)


def test_assemble_lays_out_psm_spm_and_prefix_only(tmp_path: Path) -> None:
    qwen, _ = fim_of(write_model(tmp_path / "q.gguf", QWEN))
    codestral, _ = fim_of(write_model(tmp_path / "c.gguf", CODESTRAL))
    none, _ = fim_of(write_model(tmp_path / "n.gguf", []))
    extra, prefix, suffix = [[1, 2], [3]], [10, 11], [20, 21]
    assert qwen.assemble(extra, prefix, suffix, bos=7) == [
        7, 1, 2, 3, qwen.prefix, 10, 11, qwen.suffix, 20, 21, qwen.middle]
    assert codestral.middle is None and codestral.fills and codestral.order == "spm"
    assert codestral.assemble(extra, prefix, suffix) == [
        1, 2, 3, codestral.suffix, 20, 21, codestral.prefix, 10, 11]
    assert none.assemble(extra, prefix, suffix, bos=7) == [7, 1, 2, 3, 10, 11]  # ends at cursor


def test_extra_context_uses_the_repo_markers_where_the_model_has_them(tmp_path: Path) -> None:
    qwen, tok = fim_of(write_model(tmp_path / "q.gguf", QWEN))
    text = "def f():\n    return 1\n<|fim_prefix|>"  # a marker in a file stays text
    chunk = qwen.chunk_ids(tok, "pkg/util.py", text)
    assert chunk[0] == qwen.file_sep and qwen.prefix not in chunk
    assert tok.decode(chunk[1:]) == f"pkg/util.py\n{text}"
    assert qwen.repo_head(tok, "cromwell") == [qwen.repo_name, *tok.encode("cromwell\n")]
    assert qwen.file_head(tok, "main.py") == [qwen.file_sep, *tok.encode("main.py\n")]

    deepseek, tok = fim_of(write_model(tmp_path / "d.gguf", DEEPSEEK))
    chunk = deepseek.chunk_ids(tok, "src/app.ts", "let x = 1;\n")
    assert tok.decode(chunk) == "\n// src/app.ts\nlet x = 1;\n"
    assert deepseek.repo_head(tok, "cromwell") == [] and deepseek.file_head(tok, "a.py") == []
    assert chunk_header("notes/a.py") == "\n# notes/a.py\n"
    assert chunk_header("web/index.html") == "\n<!-- web/index.html -->\n"


def test_override_picks_a_family_or_none_and_refuses_what_cannot_serve(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.gguf", QWEN)
    assert fim_of(path, "none")[0].family == "none"
    assert fim_of(path, "auto")[0].family == "qwen"
    with pytest.raises(ValueError, match="unknown FIM format 'qwen3'; choose one of") as err:
        fim_of(path, "qwen3")
    assert all(name in str(err.value) for name in FAMILY_NAMES)
    with pytest.raises(ValueError, match="'starcoder' needs the tokens <fim_prefix>"):
        fim_of(path, "starcoder")
    with pytest.raises(ValueError, match="'gguf' needs FIM token ids in the model file"):
        fim_of(path, "gguf")


def test_the_model_reads_its_format_from_its_file(tmp_path: Path) -> None:
    model = engine.runtime.load(str(write_model(tmp_path / "q.gguf", QWEN, arch="qwen2")))
    assert model.fim.family == "qwen" and model.fim is model.fim  # computed once
    assert model.fim.prefix == model.tokenizer.token_to_id("<|fim_prefix|>")
    assert model.fim_format(None) is model.fim
    assert model.fim_format("none").family == "none"
    with pytest.raises(ValueError, match="choose one of"):
        model.fim_format("codestral")


def test_info_shows_the_files_architecture_and_fim_format(tmp_path: Path) -> None:
    path = write_model(tmp_path / "q.gguf", QWEN, arch="qwen2")
    runner = CliRunner()
    result = runner.invoke(main, ["info", "--config", "cromwell-tiny", "--model", str(path),
                                  "--json"])
    assert result.exit_code == 0, result.output
    model = json.loads(result.output)["model"]
    assert model["architecture"] == "qwen2" and model["path"] == str(path)
    fim = model["fim"]
    assert (fim["family"], fim["order"], fim["repo_markers"]) == ("qwen", "psm", True)
    assert {r: m["text"] for r, m in fim["markers"].items()} == dict(zip(ROLES, QWEN, strict=False))

    text = runner.invoke(main, ["info", "--config", "cromwell-tiny", "--model", str(path)])
    assert text.exit_code == 0, text.output
    assert "architecture  qwen2" in text.output
    assert "FIM format    qwen: prefix, suffix, middle" in text.output
    assert "<|fim_prefix|> <|fim_suffix|> <|fim_middle|>" in text.output
    assert "repo markers  yes: <|repo_name|> <|file_sep|>" in text.output

    none = runner.invoke(main, ["info", "--config", "cromwell-tiny", "--model",
                                str(write_model(tmp_path / "n.gguf", []))])
    assert "FIM format    none: prefix-only completion ending at the cursor" in none.output
    assert "repo markers  no" in none.output
    bad = runner.invoke(main, ["info", "--model", str(tmp_path / "missing.gguf")])
    assert bad.exit_code != 0 and "no such file" in bad.output
    assert "Traceback" not in bad.output
