"""Screenshot to code through the CLI and HTTP doors reads the picture with the shipped code
reader: a screenshot of held-out code (a held-out file, font and style) comes back as that code,
as a transcript alone (--raw / raw) and as the new file's code."""

from __future__ import annotations

import io
import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from doors_helpers import CROMWELL, Server, cromwell_env
from PIL import Image

from engine.eval.screenshot import char_error_rate, heldout_tasks

# The shipped reader reads held-out pictures at about 0.8% CER (these two snippets: 0), far
# under this (docs/BENCHMARKS.md has the measured figures); a reader that does not read
# scores ~1.
MAX_CER = 0.05


@pytest.fixture(scope="module")
def snippet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    task = heldout_tasks(1, seed=5, max_side=512)[0]
    path = tmp_path_factory.mktemp("shot") / "snippet.png"
    Image.fromarray(task.shot.image).save(path)
    return path, task.shot.text


def cer(text: str, target: str) -> float:
    return char_error_rate(textwrap.dedent(text), textwrap.dedent(target))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CROMWELL, *args], capture_output=True, text=True,
                          env=cromwell_env(), timeout=300)


def test_cli_raw_prints_the_transcript(snippet: tuple[Path, str]) -> None:
    picture, target = snippet
    out = run("screenshot", str(picture), "--raw", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["source"] == "transcript" and report["code"] == report["transcript"]
    assert cer(report["transcript"], target) <= MAX_CER


def test_cli_writes_the_checked_code(snippet: tuple[Path, str], tmp_path: Path) -> None:
    picture, target = snippet
    written = tmp_path / "snippet.py"
    out = run("screenshot", str(picture), "-o", str(written), "--json", "--max-tokens", "384")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["written"] and report["source"] in ("model", "transcript")
    assert written.read_text() == report["code"]
    assert cer(report["code"], target) <= MAX_CER
    assert cer(report["transcript"], target) <= MAX_CER


def test_raw_on_a_picture_without_text_is_a_clear_error(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 48), "white").save(blank)
    out = run("screenshot", str(blank), "--raw")
    assert out.returncode == 2 and "nothing to transcribe" in out.stderr
    assert "Traceback" not in out.stderr


def test_http_raw_returns_the_transcript(server: Server, snippet: tuple[Path, str]) -> None:
    picture, target = snippet
    with server.client() as http:
        answer = http.post("/v1/screenshot", data={"raw": "true"},
                           files={"image": ("snippet.png", picture.read_bytes())})
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), "black").save(buffer, format="PNG")
        empty = http.post("/v1/screenshot", data={"raw": "true"},
                          files={"image": ("b.png", buffer.getvalue())})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "transcript" and body["path"] == "screenshot.py"
    assert cer(body["transcript"], target) <= MAX_CER
    assert body["diff"].startswith("--- /dev/null")
    assert empty.status_code == 400 and "nothing to transcribe" in empty.json()["detail"]
