"""Patches, called directly: answer parsing, diff round trips, refusal of stale or broken
edits, and TextEdits whose UTF-16 positions are right for non-ASCII text."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from cromwell_lsp import domain, patches
from cromwell_lsp.patches import PatchError, StaleDocument

OLD = 'label = "naïve 😋 café"\n\n\ndef area(w, h):\n    pass\n'


def test_extract_code_copes_with_fences_and_prose():
    assert patches.extract_code("```python\nx = 1\n```") == "x = 1\n"
    assert patches.extract_code("Sure! Here it is:\n```py\nx = 1\n```\nIt sets x.") == "x = 1\n"
    # The longest block wins over a one-line example.
    answer = "Use `x`:\n```\nx\n```\nFull:\n```python\nx = 1\ny = 2\n```\n"
    assert patches.extract_code(answer) == "x = 1\ny = 2\n"
    # Generation cut off before the closing fence.
    assert patches.extract_code("```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"
    assert patches.extract_code("~~~\nz = 3\n~~~\n") == "z = 3\n"
    assert patches.extract_code("Here is the function:\ndef f():\n    pass\n") == (
        "def f():\n    pass\n"
    )


def test_region_answer_becomes_a_checked_patch():
    answer = "```python\ndef area(w, h):\n    return w * h\n```"
    patch = patches.from_model_output("geo.py", 4, OLD, (3, 5), answer, current_version=4)
    assert patch.new == OLD.replace("    pass\n", "    return w * h\n")
    assert "-    pass\n+    return w * h\n" in patch.diff
    assert patch.diff.startswith("--- a/geo.py\n+++ b/geo.py\n@@ -2,4 +2,4 @@")


def test_diff_answer_is_applied_exactly():
    new = OLD.replace("    pass\n", "    return w * h\n")
    diff = patches.unified_diff(OLD, new, "geo.py")
    answer = f"The fix:\n```diff\n{diff}```\n"
    patch = patches.from_model_output("geo.py", None, OLD, (3, 5), answer, None)
    assert patch.new == new
    # A diff computed on other text is refused, not fuzzed into place.
    drifted = OLD.replace("def area", "def surface")
    with pytest.raises(StaleDocument, match="line 4 reads 'def surface"):
        patches.apply_diff(drifted, diff)


def test_stale_version_and_empty_answers_are_refused():
    good = "```python\ndef area(w, h):\n    return w * h\n```"
    with pytest.raises(StaleDocument, match="version 4 -> 5"):
        patches.from_model_output("geo.py", 4, OLD, (3, 5), good, current_version=5)
    with pytest.raises(PatchError, match="no code"):
        patches.from_model_output("geo.py", 4, OLD, (3, 5), "```\n```", 4)
    with pytest.raises(PatchError, match="no change"):
        patches.from_model_output(
            "geo.py", 4, OLD, (3, 5), "```\ndef area(w, h):\n    pass\n```", 4
        )


def test_an_edit_is_offered_only_when_the_file_it_leaves_parses():
    def check(path: str, old: str, region: tuple[int, int], answer: str) -> None:
        domain.check_parses(patches.from_model_output(path, 1, old, region, answer, 1))

    broken = "```python\ndef area(w, h)\n    return w * h\n```"
    with pytest.raises(PatchError, match=r"edited python does not parse \(line 4"):
        check("geo.py", OLD, (3, 5), broken)
    with pytest.raises(PatchError, match="edited toml does not parse"):
        check("c.toml", "a = 1\n", (0, 1), "a = = 2\n")
    with pytest.raises(PatchError, match="edited json does not parse"):
        check("c.json", '{"a": 1}\n', (0, 1), '{"a": 2,}\n')
    # Languages we cannot parse are not blocked by the parse check.
    check("x.rs", "fn a() {}\n", (0, 1), "fn a( {}")
    # A file that did not parse before is held to the same rule: an edit that leaves it
    # broken is refused (and says the file was broken before) ...
    with pytest.raises(PatchError, match="did not parse before the edit either"):
        check("y.py", "def (:\n", (0, 1), "def (:\n    1\n")
    # ... and one that mends it is offered.
    check("y.py", "def (:\n", (0, 1), "def f():\n    return 1\n")


def test_a_broken_function_elsewhere_does_not_block_an_edit():
    # A file half-typed further down (or further up) is the usual state of a file being
    # edited: an edit of another top-level function is checked on its own statements.
    def check(old: str, region: tuple[int, int], answer: str) -> None:
        domain.check_parses(patches.from_model_output("m.py", 1, old, region, answer, 1))

    add = "def add(a, b):\n    return a - b\n"
    mul = "def mul(a, b)\n    return a * b\n"  # no colon
    fixed = "```python\ndef add(a, b):\n    return a + b\n```"
    check(f"{add}\n\n{mul}", (0, 2), fixed)
    check(f"{mul}\n\n{add}", (4, 6), fixed)
    check(f"@cache\n{add}\n\n{mul}", (1, 3), fixed)  # with its decorator above
    # What the edit writes must still parse ...
    with pytest.raises(PatchError, match="did not parse before the edit either"):
        check(f"{add}\n\n{mul}", (0, 2), "```python\ndef add(a, b)\n    return a + b\n```")
    # ... and so must the rest of a top-level statement it writes into: a method of a class
    # whose other method is broken is not checked apart from it.
    cls = "class C:\n    def add(self, a, b):\n        return a - b\n\n    def mul(self, a, b)\n"
    with pytest.raises(PatchError, match="did not parse before the edit either"):
        check(cls, (1, 3), "```python\n    def add(self, a, b):\n        return a + b\n```")
    # Formats read as one document must parse whole.
    with pytest.raises(PatchError, match="edited json does not parse"):
        check_json = patches.from_model_output("c.json", 1, '{"a": 1,}\n', (0, 1), '{"a": 2,}\n', 1)
        domain.check_parses(check_json)


def test_no_newline_at_end_of_file_round_trips():
    old, new = "a = 1\nb = 2", "a = 1\nb = 3"
    diff = patches.unified_diff(old, new, "n.py")
    assert "\\ No newline at end of file" in diff
    assert patches.apply_diff(old, diff) == new


def test_text_edits_use_utf16_positions():
    new = OLD.replace("café", "cafés").replace("    pass\n", "    return w * h\n")
    edits = patches.text_edits(OLD, new)
    # 'label = "naïve 😋 café' is 21 code points but 22 UTF-16 units (the emoji is two).
    assert edits[0].range == types.Range(types.Position(0, 22), types.Position(0, 22))
    assert edits[0].new_text == "s"
    assert patches.apply_text_edits(OLD, edits) == new
    # The same edit in UTF-8 units lands on the same text.
    utf8 = PositionCodec(types.PositionEncodingKind.Utf8)
    edits8 = patches.text_edits(OLD, new, utf8)
    assert edits8[0].range.start.character == len('label = "naïve 😋 café'.encode())
    assert patches.apply_text_edits(OLD, edits8, utf8) == new


@pytest.mark.parametrize(
    "old,new",
    [
        ("", "x = 1\n"),
        ("x = 1\n", ""),
        ("a\nb\nc\n", "a\nc\n"),
        ("a\nb\n", "a\nb\nc"),
        ("日本語\n🐍🐍\n", "日本語\n🐍x🐍\nend\n"),
        ("a\r\nb\r\n", "a\r\nB\r\n"),
    ],
)
def test_text_edits_reproduce_the_new_text(old: str, new: str):
    assert patches.apply_text_edits(old, patches.text_edits(old, new)) == new


def test_atomic_write_replaces_whole_file_and_keeps_mode(tmp_path: Path):
    target = tmp_path / "tool.sh"
    target.write_text("echo old\n")
    target.chmod(0o755)
    patches.atomic_write(target, "echo new 😋\r\n")
    assert target.read_bytes() == "echo new 😋\r\n".encode()
    assert target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["tool.sh"]  # no temporary file left
    with pytest.raises(UnicodeEncodeError):
        patches.atomic_write(target, "😋", encoding="ascii")
    assert target.read_bytes() == "echo new 😋\r\n".encode()  # a failed write changes nothing
    assert [p.name for p in tmp_path.iterdir()] == ["tool.sh"]


def test_code_written_flush_left_is_indented_like_the_region():
    old = "class R:\n    def p(self):\n        pass\n"
    answer = "```python\ndef p(self):\n    return 2\n\n    # done\n```"
    patch = patches.from_model_output("r.py", 1, old, (1, 3), answer, 1)
    assert patch.new == "class R:\n    def p(self):\n        return 2\n\n        # done\n"
    assert patches.match_indent("x = 1\n", "  y = 2\n") == "  x = 1\n"
    assert patches.match_indent("    x = 1\n", "  y = 2\n") == "    x = 1\n"  # deeper: kept
    assert patches.match_indent("\tx\n", "    y\n") == "\tx\n"  # tabs vs spaces: kept
