"""CTC decoding: the best path and the prefix beam, on scores whose answer is known."""

from __future__ import annotations

import numpy as np

from engine.reader import charset, ctc


def scores(path: list[str], sure: float = 0.9) -> np.ndarray:
    """Per-column logits putting `sure` of the probability on each column's class ("" is
    the blank) and the rest spread evenly."""
    n = charset.n_classes()
    out = np.full((len(path), n), np.log((1 - sure) / (n - 1)))
    for t, ch in enumerate(path):
        cls = charset.BLANK if ch == "" else charset.encode(ch)[0]
        out[t, cls] = np.log(sure)
    return out.astype(np.float32)


def test_greedy_merges_repeats_and_keeps_blank_separated_doubles() -> None:
    hyp = ctc.greedy(scores(["", "=", "=", "", "=", " ", " ", "", " ", "x"]))
    assert hyp.text == "==  x"
    assert hyp.columns == (1, 4, 5, 8, 9)


def test_unreadable_class_and_charset_round_trip() -> None:
    text = "def λ(x): return x ≤ 2 ─ é"
    assert charset.decode(charset.encode(text)) == text
    assert charset.encode("\u4e2d") == [charset.UNREADABLE]
    assert charset.decode([charset.UNREADABLE]) == charset.UNREADABLE_CHAR


def test_beam_sums_paths_that_greedy_splits() -> None:
    """Two columns each 45% blank, 30% "a", 25% "b": the best path is two blanks (the empty
    text, p = .2025) but "a" has three paths (aa, a-, -a: p = .36), which the beam adds up."""
    n = charset.n_classes()
    a, b = charset.encode("a")[0], charset.encode("b")[0]
    logits = np.full((2, n), -40.0, np.float32)
    for t in range(2):
        logits[t, charset.BLANK] = np.log(0.45)
        logits[t, a] = np.log(0.3)
        logits[t, b] = np.log(0.25)
    assert ctc.greedy(logits).text == ""
    hyps = ctc.beam(logits, width=8)
    assert hyps[0].text == "a"
    probs = {h.text: float(np.exp(h.log_prob)) for h in hyps}
    assert abs(probs["a"] - 0.36) < 1e-5
    assert abs(probs[""] - 0.2025) < 1e-5
    assert [h.log_prob for h in hyps] == sorted((h.log_prob for h in hyps), reverse=True)


def test_beam_agrees_with_greedy_on_sure_columns() -> None:
    path = ["", "d", "e", "f", "", "", " ", "f", "(", ")", ":"]
    logits = scores(path, sure=0.9995)
    assert ctc.beam(logits)[0].text == ctc.greedy(logits).text == "def f():"
    assert ctc.beam(logits)[0].columns == ctc.greedy(logits).columns


def test_empty_line() -> None:
    assert ctc.greedy(np.zeros((0, charset.n_classes()), np.float32)).text == ""
    assert ctc.beam(scores(["", ""]))[0].text == ""
