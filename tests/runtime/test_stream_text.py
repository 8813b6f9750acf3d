"""Text streaming: stop strings (also split across tokens), held-back prefixes, UTF-8."""

from __future__ import annotations

import random
from collections.abc import Iterator

from engine.runtime.generate import stream_text
from engine.runtime.speculative import MAX_DRAFT, DraftLength, draft_tokens

# A byte-level vocabulary, as GPT-2-style tokenizers have: token i is PIECES[i].
PIECES = [b"Hello", b" wor", b"ld", b"\n", b"EN", b"D", b"\xc3", b"\xa9", b"E", b"!"]


def decode(ids: list[int]) -> str:
    return b"".join(PIECES[i] for i in ids).decode("utf-8", errors="replace")


def run(ids: list[int], stop: list[str]) -> list[str]:
    return list(stream_text(decode, iter(ids), stop))


def test_without_stop_strings_every_token_streams_as_it_comes() -> None:
    assert run([0, 1, 2, 9], []) == ["Hello", " wor", "ld", "!"]


def test_a_stop_string_split_across_tokens_ends_the_stream_before_it() -> None:
    assert "".join(run([0, 3, 4, 5, 9], ["END"])) == "Hello\n"


def test_a_possible_stop_prefix_is_held_back_then_released() -> None:
    pieces = run([0, 8, 9], ["END"])  # "E" might start "END"; "E!" cannot
    assert pieces == ["Hello", "E!"]


def test_the_stream_ends_at_the_first_of_several_stop_strings() -> None:
    assert "".join(run([0, 1, 2, 3, 4, 5], ["\n", "world"])) == "Hello "


def test_a_character_split_across_tokens_is_never_emitted_in_halves() -> None:
    pieces = run([0, 6, 7, 9], [])
    assert pieces == ["Hello", "é", "!"]
    assert all("\ufffd" not in p for p in pieces)


def test_stopping_closes_the_token_stream() -> None:
    closed = []

    def tokens() -> Iterator[int]:
        try:
            yield from [0, 4, 5, 9, 9, 9]
        finally:
            closed.append(True)

    assert "".join(stream_text(decode, tokens(), ["END"])) == "Hello"
    assert closed == [True]


def test_prompt_lookup_drafts_what_followed_the_latest_match() -> None:
    assert draft_tokens([1, 2, 3, 4, 5, 9, 1, 2, 3]) == [4, 5, 9, 1, 2, 3]
    assert draft_tokens([1, 2, 3, 4, 1, 2, 3, 7, 1, 2, 3], max_draft=2) == [7, 1]
    assert draft_tokens([5, 6, 7, 8]) == []  # no repeated n-gram: nothing to draft
    assert draft_tokens([1, 2, 3, 4, 5, 9, 2, 3]) == []  # a 2-gram is too weak by default
    assert draft_tokens([1, 2, 3, 4, 5, 9, 2, 3], min_ngram=2) == [4, 5, 9, 2, 3]
    # The longest matching suffix wins over a more recent shorter one.
    assert draft_tokens([7, 1, 2, 3, 8, 0, 2, 3, 9, 7, 1, 2, 3]) == [8, 0, 2, 3, 9, 7, 1, 2, 3]


def test_the_draft_length_grows_on_full_acceptance_and_shrinks_on_a_miss() -> None:
    length = DraftLength()
    start = length.n
    length.update(drafted=start, accepted=start)
    assert length.n == 2 * start
    for _ in range(10):
        length.update(drafted=length.n, accepted=length.n)
    assert length.n == MAX_DRAFT
    length.update(drafted=MAX_DRAFT, accepted=3)
    assert length.n == 3
    length.update(drafted=3, accepted=0)
    assert length.n == 1
    length.update(drafted=1, accepted=1)
    length.restart()  # drafting resumes after plain steps
    assert length.n == start


def test_a_tokenizer_that_drops_the_leading_space_still_joins_words() -> None:
    words = [" Hello", " wor", "ld", " again"]

    def decode_dropping_space(ids: list[int]) -> str:
        text = "".join(words[i] for i in ids)
        return text[1:] if text.startswith(" ") else text  # as SentencePiece decoders do

    assert "".join(stream_text(decode_dropping_space, iter([0, 1, 2, 3]))) == "Hello world again"


def test_streamed_text_is_the_whole_decode_cut_at_the_first_stop() -> None:
    rng = random.Random(5)
    for _ in range(200):
        ids = [rng.randrange(len(PIECES)) for _ in range(rng.randrange(1, 25))]
        stop = rng.sample(["END", "\n", "ld!", "o w", "é"], k=rng.randrange(0, 3))
        whole = decode(ids)
        cuts = [whole.find(s) for s in stop if s in whole]
        expected = whole[: min(cuts)] if cuts else whole
        assert "".join(run(ids, stop)) == expected, (ids, stop)
