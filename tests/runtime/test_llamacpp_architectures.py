"""Agreement with llama.cpp on each architecture's tiny F16 file (architecture_cases.py): its
greedy tokens and top logits, recorded in tests/data/llamacpp_architectures.json by
tests/make_llamacpp_architectures_reference.py, and checked live as well where llama_cpp is
installed (in a child process: llama.cpp beside our native kernels has been seen to fault).

Both engines run the same F16 weights and a float32 KV cache; our F16 products keep
activations in float32 where llama.cpp rounds them to F16, which moves these tiny models'
logits by about a thousandth, far less than the smallest recorded top-1/top-2 margin, so the
greedy tokens must be equal.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from architecture_cases import (
    LLAMACPP_CASES,
    LLAMACPP_DECODE_TOKENS,
    LLAMACPP_PROMPT,
    case_name,
    write_case,
)

from engine.runtime.decoder import Decoder
from engine.runtime.gguf_file import GGUFFile

TESTS = Path(__file__).resolve().parents[1]
RECORD = json.loads((TESTS / "data" / "llamacpp_architectures.json").read_text())
LOGIT_TOLERANCE = 0.02  # absolute, at llama.cpp's top 8 ids of each step


def _case_file(tmp_path: Path, arch: str, variant: str) -> GGUFFile:
    path = tmp_path / f"{arch}-{variant}.gguf"
    return GGUFFile(write_case(path, arch, variant, "F16", vocabulary=True))


def _greedy(decoder: Decoder) -> tuple[list[int], np.ndarray]:
    logits = decoder.forward(LLAMACPP_PROMPT)
    tokens, rows = [], []
    for _ in range(LLAMACPP_DECODE_TOKENS):
        rows.append(logits.copy())
        tokens.append(int(logits.argmax()))
        logits = decoder.forward([tokens[-1]])
    return tokens, np.stack(rows)


def test_the_record_is_of_these_cases() -> None:
    assert RECORD["prompt"] == LLAMACPP_PROMPT
    assert RECORD["decode_tokens"] == LLAMACPP_DECODE_TOKENS
    assert set(RECORD["cases"]) == {case_name(*c) for c in LLAMACPP_CASES}


@pytest.mark.parametrize(("arch", "variant"), LLAMACPP_CASES)
@pytest.mark.parametrize("fused", [True, False])
def test_greedy_tokens_and_logits_equal_llamacpp(
    tmp_path: Path, arch: str, variant: str, fused: bool
) -> None:
    ref = RECORD["cases"][case_name(arch, variant)]
    decoder = Decoder(_case_file(tmp_path, arch, variant), fused=fused, kv_cache="f32")
    tokens, rows = _greedy(decoder)
    assert tokens == ref["tokens"]
    gaps = [
        np.abs(row[top_ids] - np.asarray(top)).max()
        for row, top_ids, top in zip(rows, ref["top_ids"], ref["top_logits"], strict=True)
    ]
    assert max(gaps) < LOGIT_TOLERANCE, max(gaps)


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama_cpp not installed")
@pytest.mark.parametrize(("arch", "variant"), LLAMACPP_CASES)
def test_live_llamacpp_agrees_with_the_record(tmp_path: Path, arch: str, variant: str) -> None:
    path = write_case(tmp_path / "case.gguf", arch, variant, "F16", vocabulary=True)
    script = TESTS / "make_llamacpp_architectures_reference.py"
    child = subprocess.run(
        [sys.executable, str(script), "--child", str(path), json.dumps(LLAMACPP_PROMPT),
         str(LLAMACPP_DECODE_TOKENS)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    live = json.loads(child.stdout.strip().splitlines()[-1])
    ref = RECORD["cases"][case_name(arch, variant)]
    assert live["tokens"] == ref["tokens"]
    np.testing.assert_allclose(live["top_logits"], ref["top_logits"], atol=1e-3)
