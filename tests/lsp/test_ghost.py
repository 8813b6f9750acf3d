"""Ghost text without a transport: the prompt's layout (stable head, windows on a grid, FIM
markers as ids), where a suggestion ends, the suggestion cache, the extra-context ring, and
suggestions from the real default model that start at the cursor."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lsp_helpers import needs_model

from cromwell_lsp.ghost import (
    TASK,
    GhostCancelled,
    GhostRequest,
    GhostSettings,
    GhostText,
    Shaper,
    SuggestionCache,
    accepted,
)
from cromwell_lsp.ghost_ring import Chunk, ExtraRing, chunk_around, similarity
from engine.runtime.cache_reuse import common_prefix
from engine.runtime.prompt_window import BlockTokens, Cursor, WindowSettings, window_start

SOURCE = Path(threading.__file__).read_text()  # a real file of ~1,700 lines


@pytest.fixture(scope="module")
def model():
    import engine.runtime

    return engine.runtime.load(None, threads=1)


def type_at(text: str, line: int, column: int, typed: str) -> str:
    before = GhostRequest("f.py", text, line, column).before
    return before + typed + text[len(before) :]


# --- layout ---------------------------------------------------------------------------------


def test_window_starts_on_the_grid_at_least_prefix_lines_up():
    s = WindowSettings(prefix_lines=128, grid=16)
    assert window_start(10, s) == 0
    assert window_start(300, s) == 160  # 300 - 128 = 172, down to the grid
    assert all(300 - window_start(300 + k, s) >= 0 for k in range(16))
    assert {window_start(line, s) for line in range(304, 320)} == {176}


def test_cursor_outside_the_document_is_refused_in_the_users_numbering():
    with pytest.raises(ValueError, match="line 12 is outside the 3-line document"):
        Cursor.at("a\nb\nc\n", 11, 0)
    with pytest.raises(ValueError, match="column 5 is outside line 2"):
        Cursor.at("a\nbc\n", 1, 4)


def test_blocks_are_tokenized_once():
    class Counting:
        calls = 0

        def encode(self, text, add_special=False, parse_special=True):
            Counting.calls += 1
            assert not parse_special  # document text never turns into control tokens
            return [ord(c) for c in text]

    blocks = BlockTokens(Counting())
    assert blocks("abc\n") == blocks("abc\n") == (97, 98, 99, 10)
    assert Counting.calls == 1 and blocks.hits == 1


@needs_model
def test_a_keystroke_changes_only_the_prompts_tail(model):
    ghost = GhostText(model, GhostSettings(fim="none"))
    line = 700
    col = len(SOURCE.splitlines()[line])
    old = ghost.prompt(GhostRequest("threading.py", SOURCE, line, col),
                       Cursor.at(SOURCE, line, col))
    typed = type_at(SOURCE, line, col, "x")
    new = ghost.prompt(GhostRequest("threading.py", typed, line, col + 1),
                       Cursor.at(typed, line, col + 1))
    assert common_prefix(old, new) >= len(old) - 2


@needs_model
def test_enter_keeps_the_head_until_the_cursor_crosses_the_grid(model):
    ghost = GhostText(model, GhostSettings(fim="none"))
    line = 705  # window start (705 - 128) // 16 * 16 = 576 for the next lines too
    col = len(SOURCE.splitlines()[line])
    old = ghost.prompt(GhostRequest("t.py", SOURCE, line, col), Cursor.at(SOURCE, line, col))
    entered = type_at(SOURCE, line, col, "\n")
    new = ghost.prompt(GhostRequest("t.py", entered, line + 1, 0),
                       Cursor.at(entered, line + 1, 0))
    assert common_prefix(old, new) >= len(old) - 2


@needs_model
def test_prefix_only_prompt_ends_at_the_cursor(model):
    ghost = GhostText(model, GhostSettings(fim="none"))
    assert not ghost.fim.fills
    for line, col in ((40, 4), (700, 10), (1200, 0)):
        request = GhostRequest("threading.py", SOURCE, line, col)
        ids = ghost.prompt(request, Cursor.at(SOURCE, line, col))
        text = model.tokenizer.decode(ids, skip_special=True)
        assert request.before.endswith(text[-200:])  # the window's text, up to the cursor


@needs_model
def test_fim_prompt_puts_the_markers_as_single_ids_around_the_cursor(model):
    ghost = GhostText(model, GhostSettings(fim="starcoder"))
    fim = ghost.fim
    assert fim.fills and fim.order == "psm"
    line, col = 700, 8
    request = GhostRequest("threading.py", SOURCE, line, col)
    ids = ghost.prompt(request, Cursor.at(SOURCE, line, col))
    assert [ids.count(m) for m in (fim.prefix, fim.suffix, fim.middle)] == [1, 1, 1]
    assert ids[-1] == fim.middle
    pre, suf = ids.index(fim.prefix), ids.index(fim.suffix)
    decode = model.tokenizer.decode
    assert request.before.endswith(decode(ids[pre + 1 : suf]))
    assert request.after.startswith(decode(ids[suf + 1 : -1]))


@needs_model
def test_marker_spelt_in_the_document_stays_text(model):
    ghost = GhostText(model, GhostSettings(fim="starcoder"))
    text = "x = '<fim_prefix><fim_middle>'\n"
    ids = ghost.prompt(GhostRequest("m.py", text, 1, 0), Cursor.at(text, 1, 0))
    assert ids.count(ghost.fim.prefix) == 1 and ids.count(ghost.fim.middle) == 1


# --- where a suggestion ends ----------------------------------------------------------------


def shaper(text: str, line: int, column: int, max_lines: int = 8) -> Shaper:
    return Shaper(Cursor.at(text, line, column), max_lines)


def test_text_after_the_cursor_makes_a_one_line_suggestion():
    s = shaper("print(x)\n", 0, 6)
    assert s.single_line
    assert s.cut("x, y)\nmore") == 5
    assert s.finish("value)", True, "x)") == "value)"
    assert s.finish("x, y) + z", True, ")") == "x, y) + z"
    assert s.finish("x, y)", True, ")") == "x, y"  # the line's own rest is not repeated


def test_a_line_with_code_gets_the_rest_of_that_line_only():
    s = shaper("def f(x):\n    y = 1\n", 1, 9)
    assert s.single_line  # finishing a statement, not writing the next ones
    assert s.cut(" + 2\n    return y") == len(" + 2")


def test_a_block_ends_where_the_indentation_closes_it():
    doc = "def f(x):\n    y = 1\n    \nz = 2\n"
    s = shaper(doc, 2, 4)  # a blank line inside the body: several lines may come
    assert not s.single_line and s.base_indent == 4
    assert s.cut("return y\n") is None
    assert s.cut("return y\ndef g") == len("return y")
    assert s.cut("a = 1\n\n    b\n") == len("a = 1")  # a blank line ends it
    assert s.finish("return y\n", True, "") == "return y"


def test_a_suggestion_that_rewrites_the_next_line_is_cut_before_it():
    doc = "def f(x):\n    \n    return x\n"
    s = shaper(doc, 1, 4)
    assert s.cut("y = x\n    return x\n") == len("y = x")


def test_at_most_max_lines_and_only_complete_lines_after_a_time_cap():
    s = shaper("\n", 0, 0, max_lines=2)
    assert s.cut("a\nb\nc\n") == len("a\nb")
    assert s.finish("a\nb", False, "") == "a"  # stopped early: the unfinished line goes


def test_a_prefix_only_model_suggests_mid_line_only_before_closers():
    from cromwell_lsp.ghost import closers_only

    assert closers_only("") and closers_only(")") and closers_only('"]);')
    assert not closers_only("x)") and not closers_only(" return x")


@needs_model
def test_a_prefix_only_model_does_not_write_over_the_rest_of_the_line(model):
    ghost = GhostText(model, GhostSettings(max_tokens=8, fim="none"))
    text = "def f(x):\n    return x\n"
    suggestion = ghost.suggest(GhostRequest("f.py", text, 1, 4))
    assert suggestion.text == "" and suggestion.generated_tokens == 0  # the model not asked


# --- the suggestion cache -------------------------------------------------------------------


def test_typing_a_suggestions_own_characters_gets_its_rest():
    cache = SuggestionCache()
    cache.put("a.py", "def f(", ")\n", "x, y")
    assert cache.get("a.py", "def f(", ")\n").text == "x, y"
    typed = cache.get("a.py", "def f(x", ")\n")
    assert typed.text == ", y" and typed.source == "typed"
    assert cache.get("a.py", "def f(z", ")\n") is None  # typed something else
    assert cache.get("a.py", "def f(", "]\n") is None  # the text after the cursor changed
    assert cache.get("b.py", "def f(", ")\n") is None
    assert cache.get("a.py", "def f(x, y", ")\n") is None  # typed to its end


def test_accepting_moves_the_cursor_to_the_suggestions_end():
    request = GhostRequest("a.py", "def f(\n    pass\n", 0, 6)
    after = accepted(request, "x):\n    return x")
    assert after.text == "def f(x):\n    return x\n    pass\n"
    assert (after.line, after.column) == (1, 12)
    assert after.before == "def f(x):\n    return x"


# --- the extra-context ring -----------------------------------------------------------------


def test_ring_takes_offers_when_settled_and_evicts_the_oldest():
    ring = ExtraRing(max_chunks=2, chunk_lines=4, max_tokens=10_000)
    lines = [f"line {i}\n" for i in range(40)]
    a, b, c = (chunk_around("f.py", lines, n, 4) for n in (2, 12, 22))
    for chunk in (a, b, c):
        ring.offer(chunk)
    assert ring.ring == []  # nothing moves until the user pauses
    assert ring.settle(len_of)
    assert ring.ring == [b, c]
    assert not ring.settle(len_of)
    assert ring.chunks("f.py", (10, 16)) == [c]  # b overlaps the prompt's own windows
    assert ring.chunks("g.py", (10, 16)) == [b, c]


def test_a_similar_chunk_replaces_the_older_one():
    ring = ExtraRing(max_chunks=4, chunk_lines=4)
    old = Chunk("f.py", 0, "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
    new = Chunk("f.py", 1, "a\nb\nc\nd\ne\nf\ng\nh\ni\nk\n")
    assert similarity(old.text, new.text) >= 0.9
    ring.offer(old)
    ring.settle(len_of)
    ring.offer(new)
    ring.settle(len_of)
    assert ring.ring == [new]


def test_ring_keeps_to_its_token_budget():
    ring = ExtraRing(max_chunks=8, chunk_lines=4, max_tokens=40)  # two chunks of 19
    for n in range(4):
        ring.offer(Chunk("f.py", 10 * n, f"chunk {n} " + "x" * 10 + "\n"))
    ring.settle(len_of)
    assert [c.start for c in ring.ring] == [20, 30]


def len_of(chunk: Chunk) -> int:
    return len(chunk.text)


# --- suggestions from the real model --------------------------------------------------------


@needs_model
@pytest.mark.parametrize("fim", ["none", "starcoder"])
def test_suggestions_start_at_the_cursor_and_differ_by_place(model, fim):
    small = WindowSettings(prefix_lines=32, suffix_lines=8)  # CPU time in tests is scarce
    ghost = GhostText(model, GhostSettings(small, max_tokens=12, fim=fim))
    prompts = set()
    for line in (300, 700, 1200):
        col = len(SOURCE.splitlines()[line])
        request = GhostRequest("threading.py", SOURCE, line, col)
        prompt = ghost.prompt(request, ghost.healed(request)[1])
        prompts.add(tuple(prompt))
        suggestion = ghost.suggest(request)
        assert suggestion.source == "model" and suggestion.prompt_tokens == len(prompt)
        assert "<fim_" not in suggestion.text
        again = ghost.suggest(request)  # the same place again: from the cache, at once
        assert again.source == "cache" and again.text == suggestion.text
    assert len(prompts) == 3


AREA = '''def compute_total_area(shapes):
    """The sum of the shapes' areas."""
    return sum(s.area() for s in shapes)


def report(shapes):
    total = '''


@needs_model
def test_inside_a_word_the_suggestion_finishes_the_word_and_the_prompt_stays_put(model):
    # Without healing the prompt ends on a token the tokenizer never makes there ("tot"),
    # and SmolLM2 answers "_area(shapes)" after "compute_tot" and "opleft()" after
    # "compute_t". Healed, every keystroke in the word sends the same prompt.
    ghost = GhostText(model, GhostSettings(max_tokens=8, fim="none"))
    last = AREA.count("\n")
    computed = []
    for typed in ("compute_t", "compute_to", "compute_tot"):
        request = GhostRequest("area.py", AREA + typed, last, len("    total = ") + len(typed))
        cursor, healed, spell = ghost.healed(request)
        assert spell == " " + typed and healed.line_before == "    total ="
        suggestion = ghost.suggest(request)
        assert typed + suggestion.text == "compute_total_area(shapes)"
        computed.append(suggestion.computed_tokens)
    assert max(computed[1:]) <= 1  # at most the prompt's last token again, for its logits


def test_the_documents_first_word_and_a_huge_line_are_not_healed():
    ghost = GhostText.__new__(GhostText)  # healed() reads the settings only
    ghost.settings = GhostSettings()
    for text in ("impo", "x" * 90_000):
        cursor, healed, spell = ghost.healed(GhostRequest("f.py", text, 0, len(text)))
        assert healed is cursor and spell == ""
    _, healed, spell = ghost.healed(GhostRequest("f.py", "a\nimpo", 1, 4))
    assert spell == "impo" and healed.column == 0


@needs_model
def test_without_healing_the_prompt_ends_at_the_cursor(model):
    ghost = GhostText(model, GhostSettings(max_tokens=4, fim="none", heal=False))
    request = GhostRequest("area.py", AREA + "compute_t", AREA.count("\n"), 21)
    cursor, healed, spell = ghost.healed(request)
    assert healed is cursor and spell == ""
    assert model.tokenizer.decode(ghost.prompt(request, healed)).endswith("total = compute_t")


class CancelAfter(threading.Event):
    """A stop flag that turns on at its n-th look: a request superseded at a known point."""

    def __init__(self, looks: int) -> None:
        super().__init__()
        self.looks = looks

    def is_set(self) -> bool:
        self.looks -= 1
        return self.looks < 0 or super().is_set()


@needs_model
def test_a_superseded_request_stops_inside_its_prefill_and_keeps_what_it_ran(model):
    ghost = GhostText(model, GhostSettings(max_tokens=4, fim="none"))
    end = len(SOURCE.split("\n")[900])
    request = GhostRequest("threading.py", SOURCE, 900, end)
    decoder = model.decoder_for(TASK)  # the decoder ghost text runs on
    decoder.cache.rollback(0)
    # Looks: on entry, before the prefill, before its first piece, before its second: stop.
    with pytest.raises(GhostCancelled):
        ghost.suggest(request, CancelAfter(3))
    prompt = ghost.prompt(request, ghost.healed(request)[1])
    kept = decoder.cache.length
    assert 0 < kept < len(prompt)  # the prefill ended early, its first piece kept
    assert decoder.cache.tokens == prompt[:kept]
    ghost.suggest(request)  # the next request picks up where the cancelled one stopped
    assert decoder.last_prefill.prefix >= kept


@needs_model
def test_a_cancelled_request_raises_and_leaves_no_suggestion(model):
    ghost = GhostText(model, GhostSettings(max_tokens=8, fim="none"))
    flag = threading.Event()
    flag.set()
    request = GhostRequest("threading.py", SOURCE, 500, len(SOURCE.split("\n")[500]))
    with pytest.raises(GhostCancelled):
        ghost.suggest(request, flag)
    assert ghost.cached(request) is None


def test_an_opened_file_brings_its_imports_into_the_ring():
    from lsp_helpers import EXAMPLE

    from cromwell_lsp.context import SourceFile, Target
    from cromwell_lsp.ghost_session import GhostSession
    from cromwell_lsp.model_service import ModelService

    session = GhostSession(ModelService())
    files = [SourceFile(p.relative_to(EXAMPLE).as_posix(), p.read_text())
             for p in sorted(EXAMPLE.rglob("*.py"))]
    app = next(f for f in files if f.path == "app.py")
    chunks = session.related(Target("app.py", app.text, 0, 10), files, {})
    assert chunks and chunks[0].path == "geometry/shapes.py"  # app.py imports it
    assert "class Rectangle" in chunks[0].text or "def total_area" in chunks[0].text
    session.offer(chunks)
    assert session.ring.queue == chunks  # taken in when the user pauses


@needs_model
def test_offered_context_enters_the_ring_in_the_background_with_its_prompt_computed(
    model, monkeypatch
):
    # The ring takes an offered chunk only after an answer and a pause, in the background,
    # and only once the prompt it makes is in the KV cache: the next request then finds its
    # new head computed, and a user who keeps typing never has the head change under them.
    import asyncio

    from cromwell_lsp import ghost_session
    from cromwell_lsp.ghost_session import GhostSession
    from cromwell_lsp.model_service import ModelService

    monkeypatch.setattr(ghost_session, "SETTLE_S", 0.2)
    service = ModelService()
    session = GhostSession(service)
    settings = GhostSettings(max_tokens=4, fim="none")
    lines = SOURCE.split("\n")
    line = 500
    chunk = chunk_around("other.py", [f"value_{i} = {i}\n" for i in range(40)], 10, 32)
    session.offer([chunk])

    async def scenario() -> tuple[int, int, list[Chunk]]:
        await session.suggest(model, settings, "threading.py", SOURCE, line, len(lines[line]))
        assert session.ring.ring == []  # an answer alone does not change the head
        await asyncio.sleep(1.5)  # the user reads: the background job settles and computes
        text = type_at(SOURCE, line, len(lines[line]), " ")
        before = session.stats.from_model
        answer = await session.suggest(model, settings, "threading.py", text, line,
                                       len(lines[line]) + 1)
        assert answer is not None and session.stats.from_model == before + 1
        return answer.prompt_tokens, answer.computed_tokens, list(session.ring.ring)

    try:
        prompt, computed, ring = asyncio.run(scenario())
    finally:
        service.shutdown()
    assert ring == [chunk] and session.ring.queue == []
    assert computed <= 8 < prompt  # the chunk's tokens were computed before it was adopted
