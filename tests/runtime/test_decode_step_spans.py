"""`DecodeStep.run_span`: a decode step cut at any layer gives the logits of the whole step bit
for bit, and a span that is not one is refused with its bounds named."""

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
    x = np.empty(TINY["dim"], np.float32)
    logits = np.empty(TINY["vocab"], np.float32)
    step.run_span(7, 3, 0, cut, x)
    step.run_span(7, 3, cut, n, x, logits)
    np.testing.assert_array_equal(logits, whole)


def test_bad_spans_and_buffers_are_refused(decoder: Decoder) -> None:
    step, n = decoder.fused_step, TINY["n_layers"]
    assert step is not None
    x = np.zeros(TINY["dim"], np.float32)
    with pytest.raises(ValueError, match=r"layers \[1, 1\) are not a span of 0..2"):
        step.run_span(0, 0, 1, 1, x)
    with pytest.raises(ValueError, match=rf"layers \[0, {n + 1}\)"):
        step.run_span(0, 0, 0, n + 1, x)
    with pytest.raises(ValueError, match="the last layer needs out"):
        step.run_span(0, 0, 0, n, x)
    with pytest.raises(ValueError, match="x must be a writable array of 64"):
        step.run_span(0, 0, 0, 1, np.zeros(63, np.float32))
