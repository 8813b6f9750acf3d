"""Edit examples: every kind gives verified pairs on real standard-library code; verification
rejects examples that do not show what they claim; the prompt is the product's own."""

from __future__ import annotations

import ast
import dataclasses
import io
import random
import sysconfig
import tokenize
from pathlib import Path
from typing import Any

import pytest

from cromwell_lsp import edits
from cromwell_lsp.actions import ActionRequest
from engine.data import edit_makers
from engine.data.edit_makers import (
    EditExample,
    EditVerificationError,
    example_from_texts,
    make_examples,
    split_lines,
    to_prompt,
    verify,
)
from engine.data.pycheck import undefined_names
from engine.edit_format import chat_renderer
from engine.tokenizer import CodeTokenizer, load_cromwell_bpe

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SAMPLE = ("textwrap.py", "shlex.py", "json/decoder.py", "fractions.py", "calendar.py",
          "dataclasses.py")


@pytest.fixture(scope="module")
def examples() -> dict[str, list[EditExample]]:
    by_kind: dict[str, list[EditExample]] = {k: [] for k in edit_makers.SYNTHETIC_KINDS}
    for name in SAMPLE:
        text = (STDLIB / name).read_text()
        for example in make_examples(name, text, random.Random(name)):
            by_kind[example.kind].append(example)
    return by_kind


def _names(source: str) -> set[str]:
    return {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type == tokenize.NAME}


def test_every_kind_is_made_and_verified(examples: dict[str, list[EditExample]]) -> None:
    for kind, found in examples.items():
        assert len(found) >= 3, f"{kind}: only {len(found)} examples from {len(SAMPLE)} files"
        for example in found:
            verify(example)
            assert example.before.startswith(example.prefix)
            assert example.region_before != example.region_after
            original = (STDLIB / example.path).read_text()
            if kind in (edit_makers.RENAME_LOCAL, edit_makers.RENAME_FUNCTION):
                assert example.before == original
            else:  # the real code is always the answer
                assert example.after == original


def test_injected_errors_break_before_and_not_after(examples) -> None:
    for example in examples[edit_makers.FIX_SYNTAX]:
        with pytest.raises(SyntaxError):
            ast.parse(example.before)
        ast.parse(example.after)
        assert "syntax error on line" in example.instruction
    for example in examples[edit_makers.FIX_NAME]:
        typo = example.meta["typo"]
        assert typo in {n for n, _ in undefined_names(example.before)}
        assert typo not in {n for n, _ in undefined_names(example.after)}
        assert f"`{typo}`" in example.instruction


def test_renames_are_consistent(examples) -> None:
    for example in examples[edit_makers.RENAME_LOCAL] + examples[edit_makers.RENAME_FUNCTION]:
        old, new = example.meta["old"], example.meta["new"]
        assert (old not in _names(example.region_after)
                or example.kind == edit_makers.RENAME_FUNCTION)
        assert new in _names(example.region_after)
        assert new not in _names(example.before)
        assert f"`{old}` to `{new}`" in example.instruction


def test_docstring_fill_and_reformat_keep_everything_else(examples) -> None:
    for example in examples[edit_makers.ADD_DOCSTRING]:
        name, line = example.meta["function"], int(example.meta["lineno"])
        fn_after = next(f for f in ast.walk(ast.parse(example.after))
                        if isinstance(f, ast.FunctionDef) and (f.name, f.lineno) == (name, line))
        docstring = ast.get_docstring(fn_after, clean=False)
        assert docstring
        first_words = docstring.strip().split("\n")[0][:20]
        assert first_words in example.region_after and first_words not in example.region_before
    for example in examples[edit_makers.FILL_BODY]:
        assert example.region_before.rstrip().endswith(edit_makers.STUB_BODIES)
    for example in examples[edit_makers.REFORMAT]:
        assert ast.dump(ast.parse(example.before)) == ast.dump(ast.parse(example.after))


def test_rename_local_leaves_attributes_and_strings_alone() -> None:
    source = (
        "class Counter:\n"
        "    def bump(self, step):\n"
        "        count = self.count + step\n"
        "        label = 'count'\n"
        "        self.count = count\n"
        "        return count, label\n"
    )
    found = [e for seed in range(40)
             for e in make_examples("c.py", source, random.Random(seed), [edit_makers.RENAME_LOCAL])
             if e.meta["old"] == "count"]
    assert found, "no rename of `count` in 40 seeds"
    new = found[0].meta["new"]
    assert "self.count + step" in found[0].after
    assert "label = 'count'" in found[0].after
    assert f"{new} = self.count + step" in found[0].after
    assert f"self.count = {new}" in found[0].after


def test_verify_rejects_examples_that_lie(examples) -> None:
    rename = examples[edit_makers.RENAME_LOCAL][0]
    extra = rename.region_after.replace("\n", "\n    pass\n", 1) \
        if rename.region_after.count("\n") > 1 else rename.region_after + "x = 1\n"
    with pytest.raises(EditVerificationError):
        verify(dataclasses.replace(rename, region_after=extra))
    wrong_words = dataclasses.replace(rename, instruction="Rename something.")
    with pytest.raises(EditVerificationError, match="instruction"):
        verify(wrong_words)
    doc = examples[edit_makers.ADD_DOCSTRING][0]
    with pytest.raises(EditVerificationError):
        verify(dataclasses.replace(doc, region_before=doc.region_after))
    syntax = examples[edit_makers.FIX_SYNTAX][0]
    with pytest.raises(EditVerificationError, match="parses"):
        verify(dataclasses.replace(syntax, region_before=syntax.region_after + "\n"))
    name = examples[edit_makers.FIX_NAME][0]
    with pytest.raises(EditVerificationError):
        verify(dataclasses.replace(name, meta={**name.meta, "typo": "zz_not_there"},
                                   instruction="Fix the undefined name `zz_not_there`."))
    wrong_line = name.instruction.replace(" on line ", " on line 9")
    with pytest.raises(EditVerificationError, match="line"):
        verify(dataclasses.replace(name, instruction=wrong_line))
    fill = examples[edit_makers.FILL_BODY][0]
    with pytest.raises(EditVerificationError, match="name the function"):
        verify(dataclasses.replace(fill, instruction="Implement the body of `other`."))
    with pytest.raises(EditVerificationError, match="line"):
        moved = syntax.instruction.replace("line ", "line 9")
        verify(dataclasses.replace(syntax, instruction=moved))
    with pytest.raises(EditVerificationError, match="differ outside"):
        example_from_texts("commit", "a.py", "x", "a\nb\nc\n", "z\nb\nc\n", region=(1, 2))


@pytest.fixture(scope="module")
def bpe() -> CodeTokenizer:
    return load_cromwell_bpe()


def product_prompt(example: EditExample, bpe: CodeTokenizer) -> tuple[Any, Any, Any]:
    """The product's own prepared prompt for the example's edit ("Edit selection" on its
    region, the instruction as typed; no other files; a window wide enough for the file)."""
    start = example.prefix.count("\n")
    end = start + example.region_before.count("\n")
    request = ActionRequest("editSelection", f"file:///w/{example.path}", None, start, end,
                            example.instruction)
    doc = edits.DocumentView(request.uri, example.path, example.before, None)
    prepared = edits.prompt_for(request, doc, [], {}, bpe, chat_renderer(bpe), 1 << 20, 512,
                                None)
    return request, doc, prepared


def test_the_training_prompt_is_the_products_prompt(examples, bpe) -> None:
    for kind, made in examples.items():
        example = made[0]
        row = to_prompt(example, chat_renderer(bpe), context_lines=1 << 20)
        request, doc, prepared = product_prompt(example, bpe)
        assert row.prompt == prepared.prompt, kind
        # The target, given to the product as the model's answer, stops generation where it
        # ends and is exactly the reference edit.
        assert row.target.endswith("\n```") and prepared.stop_when(row.target), kind
        patch = edits.patch_from_output(request, doc, prepared, row.target, None)
        assert patch.new == example.after, kind


def test_the_surroundings_are_cut_to_context_lines(examples) -> None:
    example = examples[edit_makers.FILL_BODY][0]
    user_turn = to_prompt(example, lambda messages: messages[0]["content"], context_lines=3)
    surroundings = user_turn.prompt.split("for context:\n```python\n")[1].split("```\n\n")[0]
    assert surroundings == "".join(split_lines(example.prefix)[-3:]
                                   + split_lines(example.suffix)[:3])
    alone = to_prompt(example, lambda messages: messages[0]["content"], context_lines=0)
    assert "for context" not in alone.prompt and example.region_before in alone.prompt
    with pytest.raises(ValueError, match="context_lines"):
        to_prompt(example, lambda messages: "", context_lines=-1)


def test_files_that_do_not_parse_give_nothing() -> None:
    assert make_examples("bad.py", "def f(:\n    pass\n", random.Random(0)) == []
    with pytest.raises(ValueError, match="unknown edit kinds"):
        make_examples("a.py", "x = 1\n", random.Random(0), ["translate"])
