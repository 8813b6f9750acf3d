"""`DecodeStep.run_span`: a decode step cut at any layer gives the logits of the whole step bit
for bit, a speculative draft run in one call gives each token's own step, and a span, token
list or buffer that does not fit is refused, saying what was expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_gguf import TINY, write_tiny_gguf

from engine.runtime.decoder import Decoder
from engine.runtime.gguf_file import GGUFFile


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Decoder:
    path = write_tiny_gguf(tmp_path_factory.mktemp("spans") / "tiny.gguf", fmt="Q8_0")
    return Decoder(GGUFFile(Path(path)), n_ctx=64)


@pytest.mark.parametrize("cut", range(1, TINY["n_layers"]))
def test_two_spans_give_the_whole_step(decoder: Decoder, cut: int) -> None:
    step, n = decoder.fused_step, TINY["n_layers"]
    assert step is not None
    whole = np.empty(TINY["vocab"], np.float32)
    step.run(7, 3, whole)
    x = np.empty((1, TINY["dim"]), np.float32)
    logits = np.empty((1, TINY["vocab"]), np.float32)
    token = np.array([7], np.int32)
    step.run_span(token, 3, 0, cut, x)
    step.run_span(token, 3, cut, n, x, logits)
    np.testing.assert_array_equal(logits[0], whole)


def test_bad_spans_and_buffers_are_refused(decoder: Decoder) -> None:
    step, n = decoder.fused_step, TINY["n_layers"]
    assert step is not None
    x = np.zeros((1, TINY["dim"]), np.float32)
    token = np.zeros(1, np.int32)
    with pytest.raises(ValueError, match=r"layers \[1, 1\) are not a span of 0..2"):
        step.run_span(token, 0, 1, 1, x)
    with pytest.raises(ValueError, match=rf"layers \[0, {n + 1}\)"):
        step.run_span(token, 0, 0, n + 1, x)
    with pytest.raises(ValueError, match="the last layer needs out"):
        step.run_span(token, 0, 0, n, x)
    with pytest.raises(ValueError, match="x must be a writable array of 1 x 64"):
        step.run_span(token, 0, 0, 1, np.zeros(63, np.float32))
    read_only = np.zeros(TINY["vocab"], np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="run: out must be a writable array of 1 x 128"):
        step.run(0, 0, read_only)


@pytest.mark.parametrize("cut", range(1, TINY["n_layers"]))
def test_a_draft_in_one_call_gives_each_tokens_decode_step(decoder: Decoder, cut: int) -> None:
    # A speculative draft run in one native call (whole, or in two spans around a seam)
    # computes every token bit for bit as its own decode step, K/V rows included.
    step, n_layers = decoder.fused_step, TINY["n_layers"]
    assert step is not None
    tokens = np.array([7, 3, 99, 3, 12], np.int32)
    pos, n = 4, len(tokens)
    steps = np.empty((n, TINY["vocab"]), np.float32)
    for i, t in enumerate(tokens):
        step.run(int(t), pos + i, steps[i])
    k_rows = decoder.cache.k[:, pos : pos + n].copy()
    decoder.cache.k[:, pos : pos + n] = 0
    whole = np.empty((n, TINY["vocab"]), np.float32)
    x = np.empty((n, TINY["dim"]), np.float32)
    step.run_span(tokens, pos, 0, n_layers, x, whole)
    np.testing.assert_array_equal(whole, steps)
    np.testing.assert_array_equal(decoder.cache.k[:, pos : pos + n], k_rows)
    spans = np.empty((n, TINY["vocab"]), np.float32)
    step.run_span(tokens, pos, 0, cut, x)
    step.run_span(tokens, pos, cut, n_layers, x, spans)
    np.testing.assert_array_equal(spans, steps)


def test_bad_drafts_are_refused(decoder: Decoder) -> None:
    step, n_layers = decoder.fused_step, TINY["n_layers"]
    assert step is not None
    dim, vocab = TINY["dim"], TINY["vocab"]
    x = np.zeros((17, dim), np.float32)
    out = np.zeros((17, vocab), np.float32)
    many = np.zeros(18, np.int32)
    with pytest.raises(ValueError, match="expected 1 to 17 tokens in a 1-D int32 array, got 18"):
        step.run_span(many, 0, 0, n_layers, np.zeros((18, dim), np.float32), out)
    with pytest.raises(ValueError, match="expected 1 to 17 tokens .* got 0"):
        step.run_span(np.zeros(0, np.int32), 0, 0, n_layers, x, out)
    with pytest.raises(ValueError, match=r"positions 60..64 run past the context of 64"):
        step.run_span(np.zeros(5, np.int32), 60, 0, n_layers, x[:5], out[:5])
    with pytest.raises(ValueError, match="token 10000 is outside the vocabulary"):
        step.run_span(np.array([1, 10_000], np.int32), 0, 0, n_layers, x[:2], out[:2])
    with pytest.raises(ValueError, match="x must be a writable array of 2 x 64"):
        step.run_span(np.array([1, 2], np.int32), 0, 0, n_layers, x[:1], out[:2])
    with pytest.raises(ValueError, match="out must be a writable array of 2 x"):
        step.run_span(np.array([1, 2], np.int32), 0, 0, n_layers, x[:2], out[:1])
    with pytest.raises(ValueError, match="the last layer needs out"):
        step.run_span(np.array([1, 2], np.int32), 0, 0, n_layers, x[:2])
    with pytest.raises(ValueError, match=r"layers \[2, 1\) are not a span"):
        step.run_span(np.array([1, 2], np.int32), 0, 2, 1, x[:2], out[:2])


@pytest.mark.parametrize("kv_cache", ["f16", "f32"])
def test_tokens_at_rows_apart_give_each_tokens_decode_step(tmp_path: Path, kv_cache: str) -> None:
    # run_rows: tokens at rows 5, 6 and 11 of a cache whose other rows are final, in one call,
    # each computed as its decode step at that position computes it (same logits bit for
    # bit, same K/V rows), the rows between them untouched.
    path = write_tiny_gguf(tmp_path / "tiny.gguf", fmt="Q8_0")
    ids = [3, 9, 14, 2, 7, 11, 5, 8, 1, 6, 12, 4]
    stepwise = Decoder(GGUFFile(Path(path)), n_ctx=64, kv_cache=kv_cache)
    step = stepwise.fused_step
    assert step is not None
    want = np.empty(TINY["vocab"], np.float32)
    for pos, token in enumerate(ids):
        step.run(token, pos, want)
    rows = [5, 6, 11]
    at_rows = Decoder(GGUFFile(Path(path)), n_ctx=64, kv_cache=kv_cache)
    assert at_rows.fused_step is not None
    at_rows.cache.k[:] = stepwise.cache.k
    at_rows.cache.v[:] = stepwise.cache.v
    at_rows.cache.k[:, rows] = at_rows.cache.v[:, rows] = 0
    kept = [r for r in range(len(ids)) if r not in rows]
    before = at_rows.cache.k[:, kept].copy()
    got = np.empty(TINY["vocab"], np.float32)
    tokens = np.array([ids[r] for r in rows], np.int32)
    at_rows.fused_step.run_rows(tokens, np.array(rows, np.int32), got)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(at_rows.cache.k[:, rows], stepwise.cache.k[:, rows])
    np.testing.assert_array_equal(at_rows.cache.v[:, rows], stepwise.cache.v[:, rows])
    np.testing.assert_array_equal(at_rows.cache.k[:, kept], before)


def test_bad_rows_are_refused(decoder: Decoder) -> None:
    step = decoder.fused_step
    assert step is not None
    out = np.zeros(TINY["vocab"], np.float32)
    two = np.array([1, 2], np.int32)
    with pytest.raises(ValueError, match="expected 1 to 17 tokens in a 1-D int32 array, got 18"):
        step.run_rows(np.zeros(18, np.int32), np.arange(18, dtype=np.int32), out)
    with pytest.raises(ValueError, match="one row per token, got 1 rows for 2 tokens"):
        step.run_rows(two, np.array([3], np.int32), out)
    with pytest.raises(ValueError, match="rows must increase, got 4 then 4"):
        step.run_rows(two, np.array([4, 4], np.int32), out)
    with pytest.raises(ValueError, match="position 64 is outside the context of 64"):
        step.run_rows(two, np.array([3, 64], np.int32), out)
    with pytest.raises(ValueError, match="token 10000 is outside the vocabulary"):
        step.run_rows(np.array([1, 10_000], np.int32), np.array([1, 2], np.int32), out)
    with pytest.raises(ValueError, match="out must be a writable array of 1 x"):
        step.run_rows(two, np.array([1, 2], np.int32), out[:5])
