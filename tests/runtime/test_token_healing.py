"""Token healing on the real SmolLM2 file: what the prompt leaves out at the cursor, the
tokens allowed to spell it (against a scan of the whole vocabulary), and generation that
spells it in the model's own best tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.runtime.prompt_window import Cursor
from engine.runtime.token_healing import SpellingConstraint, heal_span, spelling_index


@pytest.fixture(scope="module")
def model(smollm2_path: Path):
    import engine.runtime

    return engine.runtime.load(smollm2_path, threads=1)


@pytest.mark.parametrize(
    ("line_before", "left_out"),
    [
        ("        if self.replace_whitespac", "replace_whitespac"),  # after a dot: the word
        ("    return valu", " valu"),  # the space before the word goes with it
        ("x = ", " "),  # after code, the space a word will take
        ("    x =\t ", "\t "),
        ("        ", "        "),  # indentation: its last space goes with the first word
        ("", ""),
        ("print(", ""),  # after punctuation: a token boundary
        ("total_2", "total_2"),
        ("    naïve", " naïve"),
        ("x = " + "y" * 47, " " + "y" * 47),  # 48 characters at most
        ("x = " + "y" * 48, ""),  # longer: a blob, not a word; nothing healed
        (" " * 60, ""),
    ],
)
def test_the_prompt_leaves_out_the_word_at_the_cursor(line_before, left_out):
    n = heal_span(line_before)
    assert line_before[len(line_before) - n :] == left_out


def test_cutting_before_the_cursor_keeps_the_rest_of_the_line_and_the_other_lines():
    cursor = Cursor.at("a = 1\nb = comp(x)\nc\n", 1, 8)
    cut = cursor.cut_before(4)
    assert cut.lines == ("a = 1\n", "b = (x)\n", "c\n")
    assert (cut.line, cut.column, cut.line_after) == (1, 4, "(x)")
    assert cursor.cut_before(0) is cursor
    with pytest.raises(ValueError, match="cannot cut 9 characters before column 9"):
        cursor.cut_before(9)


@pytest.mark.parametrize(
    "rest", ["whitespac", " valu", " ", "\t ", "_", "é", "self._x",
             b"\xc3", b"\xff", b"\xe2\x80"])  # bytes: half a character, or none at all
def test_allowed_tokens_are_exactly_those_that_spell_on(model, rest):
    tok = model.tokenizer
    want = rest if isinstance(rest, bytes) else rest.encode()
    added = set(tok.added_tokens)
    expected = {
        i for i in range(tok.vocab_size)
        if i not in added and (b := tok.token_bytes(i))
        and (b.startswith(want) or want.startswith(b))
    }
    got = spelling_index(tok).allowed(want)
    assert sorted(got.tolist()) == sorted(expected)
    assert expected or want == b"\xff"  # single bytes at least (0xff is never UTF-8)


def test_a_constraint_spells_its_text_then_lets_go(model):
    tok = model.tokenizer
    spelling = SpellingConstraint(tok, "whitespace")
    logits = np.zeros(tok.vocab_size, dtype=np.float32)
    masked = spelling.mask(logits)
    allowed = np.isfinite(masked)
    assert all(
        tok.token_bytes(i).startswith(b"whitespace") or b"whitespace".startswith(
            tok.token_bytes(i)) for i in np.flatnonzero(allowed)
    )
    spelling.advance(tok.token_to_id("white"))
    assert spelling.active and spelling.rest == b"space"
    spelling.advance(tok.token_to_id("spaces"))  # spells past the end: done
    assert not spelling.active
    assert spelling.mask(logits) is not None


def test_healed_generation_spells_the_word_in_the_models_best_tokens(model):
    tok = model.tokenizer
    prefix = "def strip_trailing(text):\n    return text.rstrip()\n\n\ndef strip_"
    healed = tok.encode(prefix[: -len("strip_")], parse_special=False)
    out = model.generate_tokens(healed, max_tokens=8, spell="strip_", speculative=False)
    text = tok.decode(out)
    assert text.startswith("strip_") and len(text) > len("strip_")
    # Its first token is the best of the allowed ones under the plain logits.
    decoder = model.decoder_for(None)
    decoder.cache.rollback(0)
    logits = decoder.forward(list(healed))
    allowed = spelling_index(tok).allowed(b"strip_")
    assert out[0] == int(allowed[np.argmax(logits[allowed])])
    # And the same tokens come with speculation on.
    assert model.generate_tokens(healed, max_tokens=8, spell="strip_") == out

