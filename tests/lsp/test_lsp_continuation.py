"""Continuation edits, called directly: the raw prompt for "complete body" and "add
docstring", the dedent stop, the repair of an answer cut off at the token limit, and the
fence opened in the assistant turn for chat edits."""

from __future__ import annotations

import pytest

from cromwell_lsp import context, edits, patches, prompts
from cromwell_lsp.actions import ActionRequest

SHAPES = '''"""Shapes."""


class Rectangle:
    width: float
    height: float

    def area(self) -> float:
        return self.width * self.height

    def perimeter(self) -> float:
        pass


def total_area(shapes):
    return sum(shape.area() for shape in shapes)


def scale(factor: float) -> float:
    """Scale by `factor`."""
    ...
'''
HELPER = context.SourceFile(
    "app.py", "from shapes import Rectangle, total_area\n\nprint(total_area([Rectangle()]))\n"
)


class Words:
    """A whitespace tokenizer: enough to count budgets in pure tests."""

    def encode(self, text: str) -> list[int]:
        return [len(w) for w in text.split()]


def chat(messages: list[dict[str, str]]) -> str:
    return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


def prepare(action: str, lo: int, hi: int, instruction: str | None = None):
    doc = edits.DocumentView("file:///w/shapes.py", "shapes.py", SHAPES, 3)
    request = ActionRequest(action, doc.uri, 3, lo, hi, instruction=instruction)
    prepared = edits.prompt_for(request, doc, [HELPER], {}, Words(), chat, 2048, 64, None)
    return request, doc, prepared


def patch(action: str, lo: int, hi: int, answer: str, instruction: str | None = None):
    request, doc, prepared = prepare(action, lo, hi, instruction)
    return edits.patch_from_output(request, doc, prepared, answer, 3)


def test_dedent_cut_finds_the_first_line_back_at_the_definition():
    # The first line continues the indentation the prompt ended with: never a cut.
    assert prompts.dedent_cut("return 1\n", 4) is None
    assert prompts.dedent_cut("x = 1\n        return x\n\n    def other", 4) == 24
    assert prompts.dedent_cut("x = 1\n        if x:\n            y = 2\n", 4) is None
    # Blank lines are no dedent; a line counts as soon as its first character is there.
    assert prompts.dedent_cut("x = 1\n\n\n@", 4) == 8
    assert prompts.dedent_cut("x = 1\nd", 0) == 6
    assert prompts.dedent_cut("x = 1\n    y", 0) is None
    assert prompts.dedent_cut("x = 1\n\ty = 2", 4) == 6  # a tab is four columns


def test_complete_body_is_a_raw_continuation_of_the_file_up_to_the_signature():
    _, _, prepared = prepare("completeBody", 10, 12)
    assert prepared.continuation is not None
    assert "<user>" not in prepared.prompt  # no chat template
    assert prepared.prompt.endswith("    def perimeter(self) -> float:\n        ")
    assert (
        "pass" not in prepared.prompt
        and "total_area(shapes)" not in prepared.prompt.split("# ---- file: shapes.py ----\n")[1]
    )
    # Related code comes first, commented out, so it reads as context and not as this file.
    assert prepared.prompt.startswith("# Related code from the workspace:\n# app.py (lines 1-3)\n")
    assert "#   from shapes import Rectangle, total_area\n" in prepared.prompt
    assert prepared.tokens == len(Words().encode(prepared.prompt))
    assert prepared.plan.after == ""  # nothing below the insertion point takes budget


def test_stop_when_ends_a_body_at_the_dedent_and_a_docstring_at_its_quotes():
    _, _, body = prepare("completeBody", 10, 12)
    assert not body.stop_when(" return 2 * (self.width + self.height)\n")
    assert not body.stop_when(" x = 1\n        return x\n\n")
    assert body.stop_when(" return 1\n\n\nd")
    _, _, doc = prepare("addDocstring", 10, 12)
    assert doc.prompt.endswith('    def perimeter(self) -> float:\n        """')
    assert not doc.stop_when("Return the perimeter.")
    assert doc.stop_when('Return the perimeter."""')


def test_body_replaces_pass_and_stops_at_the_next_definition():
    p = patch("completeBody", 10, 12, " return 2 * (self.width + self.height)\n\n\ndef")
    assert "-        pass\n+        return 2 * (self.width + self.height)\n" in p.diff
    assert p.new == SHAPES.replace(
        "        pass\n", "        return 2 * (self.width + self.height)\n"
    )


def test_body_after_a_docstring_keeps_the_docstring():
    p = patch("completeBody", 18, 21, " return factor * 2\n")
    assert '    """Scale by `factor`."""\n    return factor * 2\n' in p.new
    assert "    ...\n" not in p.new


def test_body_cut_at_the_token_limit_drops_its_unfinished_lines():
    cut = " w = self.width\n        h = self.height\n        if w > h:\n            return 2 * (w +"
    p = patch("completeBody", 10, 12, cut)
    assert "        w = self.width\n        h = self.height\n\n" in p.new
    assert "if w > h" not in p.new  # an `if` without its body cannot stay either


@pytest.mark.parametrize("answer", [" return 2 * (self.width", " pass\n\n", "\n\ndef other():"])
def test_body_with_nothing_usable_is_refused(answer: str):
    with pytest.raises(patches.PatchError, match="no usable body"):
        patch("completeBody", 10, 12, answer)


def test_docstring_is_inserted_before_the_body():
    p = patch("addDocstring", 14, 16, 'Sum the areas of `shapes`."""\n    return')
    assert p.new == SHAPES.replace(
        "def total_area(shapes):\n",
        'def total_area(shapes):\n    """Sum the areas of `shapes`."""\n',
    )
    many = patch(
        "addDocstring", 10, 12, 'Return the perimeter.\n\n        Twice the sum.\n        """'
    )
    assert '        """Return the perimeter.\n\n        Twice the sum.\n        """\n' in many.new
    # Cut off before the closing quotes: the whole lines stay, the cut one goes.
    cut = patch("addDocstring", 10, 12, "Return the perimeter.\n        Of the rect")
    assert '        """Return the perimeter."""\n        pass\n' in cut.new
    with pytest.raises(patches.PatchError, match="no docstring"):
        patch("addDocstring", 10, 12, "Return the per")


def test_one_line_definitions_go_through_the_chat_prompt():
    doc = edits.DocumentView("file:///w/f.py", "f.py", "def f(): pass\n", 1)
    request = ActionRequest("completeBody", doc.uri, 1, 0, 1)
    prepared = edits.prompt_for(request, doc, [], {}, Words(), chat, 2048, 64, None)
    assert prepared.continuation is None and prepared.prompt.endswith("<assistant>```python\n")


def test_edit_selection_puts_the_instruction_last_and_opens_the_answer_fence():
    request, doc, prepared = prepare(
        "editSelection", 14, 16, instruction="rename the function to compute_total_area"
    )
    assert prepared.prompt.endswith(
        "```python\ndef total_area(shapes):\n    return sum(shape.area() for shape in shapes)\n"
        "```\nRename the function to compute_total_area. Reply with the new version of these"
        " lines only.</user><assistant>```python\n"
    )
    answer = "def compute_total_area(shapes):\n    return sum(s.area() for s in shapes)\n```\nDone."
    assert prepared.stop_when(answer)
    assert not prepared.stop_when("def compute_total_area(shapes):\n")
    p = edits.patch_from_output(request, doc, prepared, answer, 3)
    assert "+def compute_total_area(shapes):\n" in p.diff


def test_complete_lines_keeps_the_longest_parsing_head():
    build = lambda body: "def f():\n" + body  # noqa: E731
    assert patches.complete_lines("python", build, "    x = 1\n    y = (\n") == "    x = 1\n"
    assert patches.complete_lines("python", build, "    y = (\n") == ""
    assert patches.complete_lines(None, build, "any (\n") == "any (\n"  # unparsed language


def test_body_written_one_space_too_far_right_is_realigned():
    # The model's first indentation token overshoots the prompt's margin by a space, and it
    # keeps that margin on the next lines.
    answer = (
        " total = 0\n     for s in shapes:\n         total += s.area()\n     return total\n\ndef"
    )
    p = patch("completeBody", 14, 16, answer)
    assert (
        "def total_area(shapes):\n    total = 0\n    for s in shapes:\n"
        "        total += s.area()\n    return total\n\n\ndef scale("
    ) in p.new


def test_a_body_that_is_only_a_docstring_is_refused():
    with pytest.raises(patches.PatchError, match="no usable body"):
        patch("completeBody", 10, 12, ' """Return the perimeter."""\n\n    def')
