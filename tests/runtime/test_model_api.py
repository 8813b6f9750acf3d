"""The public API the language server and the CLI use: load, chat template, stream/generate
with stop strings and a cancel flag, and no torch anywhere on the way."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import engine.runtime
from engine.runtime.model import Model

CHAT = [{"role": "user", "content": "Name the capital city of France."}]


@pytest.fixture(scope="module")
def model(smollm2_path: Path) -> Model:
    return engine.runtime.load(str(smollm2_path), n_ctx=512)


def test_load_reads_the_model_and_its_tokenizer(model: Model) -> None:
    assert model.n_ctx == 512 and model.architecture == "llama"
    ids = model.tokenizer.encode("def add(a, b):\n    return a + b\n")
    assert model.tokenizer.decode(ids) == "def add(a, b):\n    return a + b\n"
    prompt = model.apply_chat_template(CHAT)
    assert prompt.endswith("<|im_start|>assistant\n") and "capital city of France" in prompt
    assert model.tokenizer.encode("<|im_end|>")[0] in model.stop_ids


def test_stream_pieces_add_up_to_generate(model: Model) -> None:
    prompt = model.apply_chat_template(CHAT)
    pieces = list(model.stream(prompt, max_tokens=12))
    assert len(pieces) > 1
    assert "".join(pieces) == model.generate(prompt, max_tokens=12)
    assert "Paris" in "".join(pieces)


def test_a_stop_string_ends_the_text_before_it(model: Model) -> None:
    prompt = model.apply_chat_template(CHAT)
    full = model.generate(prompt, max_tokens=12)
    word = full.split()[2]  # a word in the middle of the answer
    cut = model.generate(prompt, max_tokens=12, stop=[word])
    assert cut == full[: full.index(word)]


def test_cancel_stops_the_stream_between_tokens(model: Model) -> None:
    prompt = model.apply_chat_template(CHAT)
    cancel = threading.Event()
    pieces = []
    for piece in model.stream(prompt, max_tokens=40, cancel=cancel):
        pieces.append(piece)
        cancel.set()
    assert len(pieces) == 1


def test_an_image_on_a_text_model_is_a_clear_error(model: Model) -> None:
    with pytest.raises(ValueError, match="cannot take an image"):
        model.generate("hi", max_tokens=2, image="shot.png")


def test_the_runtime_never_imports_torch(smollm2_path: Path) -> None:
    script = (
        "import sys, json, engine.runtime\n"
        f"m = engine.runtime.load({str(smollm2_path)!r}, threads=1, n_ctx=128)\n"
        "text = m.generate('def add(a, b):', max_tokens=3)\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'text': text}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] is False and result["text"]


def test_a_new_request_ends_a_stream_still_open(model: Model) -> None:
    prompt = model.apply_chat_template(CHAT)
    expected = model.generate(prompt, max_tokens=8)
    old = model.stream(prompt, max_tokens=8)
    first = next(old)
    # The old stream is left suspended (a caller that never closed it): no deadlock, the new
    # request runs and is right, and the old stream ends at its next token.
    assert model.generate(prompt, max_tokens=8) == expected
    assert first and list(old) == []
