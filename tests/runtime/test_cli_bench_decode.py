"""`cromwell bench decode` on a model whose context is too short: one line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gguf import GGUFWriter
from tiny_gguf import write_tiny_gguf

from engine.runtime.bench import PREFILL_TOKENS
from engine.tokenizers.hf_backend import bytes_to_unicode


def _byte_vocab(writer: GGUFWriter) -> None:
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list([*bytes_to_unicode().values(), "ab"])
    writer.add_token_merges(["a b"])


def test_a_short_context_is_one_clear_line(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "short.gguf", extra=_byte_vocab, sizes={"vocab": 257})
    out = subprocess.run(
        [sys.executable, "-m", "cromwell_cli", "bench", "decode", "--model", str(model),
         "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "its context holds 256 tokens" in lines[0] and str(PREFILL_TOKENS) in lines[0]
