"""`cromwell generate`: text to stdout, or one JSON object; bad input is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cromwell_cli.main import main


def test_generate_prints_the_answer(smollm2_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--model",
            str(smollm2_path),
            "--prompt",
            "Name the capital city of France.",
            "--max-tokens",
            "12",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Paris" in result.output


def test_generate_raw_json(smollm2_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--model",
            str(smollm2_path),
            "--raw",
            "--prompt",
            "def add(a, b):",
            "--max-tokens",
            "5",
            "--json",
            "--threads",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["text"] and 0 < row["tokens"] <= 6 and row["load_ms"] > 0


def test_a_bad_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all, just some bytes")
    result = CliRunner().invoke(main, ["generate", "--model", str(bad), "--prompt", "x"])
    assert result.exit_code != 0 and "not a GGUF file" in result.output
