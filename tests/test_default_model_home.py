"""One default model however `cromwell` is started: with CROMWELL_HOME unset, the command run
from a checkout's virtual environment finds the checkout's cache (where `make setup` built
cromwell-smol), not the user's ~/.cache/cromwell, whatever the working folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runtime import model_store

REPO = Path(__file__).resolve().parents[1]
CROMWELL = str(Path(sys.executable).with_name("cromwell"))
CHECKOUT_MODELS = REPO / ".cache" / "cromwell" / "models"


def _run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CROMWELL_HOME",
                                                             "CROMWELL_LOAD_CACHE")}
    env["HOME"] = str(home)
    return subprocess.run([CROMWELL, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(not (CHECKOUT_MODELS / "cromwell-smol.gguf").is_file(),
                    reason="needs `make setup` (the checkout's cromwell-smol)")
def test_without_cromwell_home_the_checkout_cache_is_used(tmp_path: Path) -> None:
    # A user cache holding only text-only SmolLM2, as one fetched outside the checkout would.
    home = tmp_path / "home"
    user_models = home / ".cache" / "cromwell" / "models"
    user_models.mkdir(parents=True)
    (user_models / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(
        CHECKOUT_MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    listed = _run(["models", "list", "--json"], elsewhere, home)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    defaults = [row["path"] for row in rows if row["default"]]
    assert defaults == [str(CHECKOUT_MODELS / "cromwell-smol.gguf")]

    generated = _run(["generate", "--prompt", "hi", "--max-tokens", "1", "--json"], elsewhere, home)
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["model"] == str(CHECKOUT_MODELS / "cromwell-smol.gguf")
    assert not (home / ".cache" / "cromwell" / "load-cache").exists()  # nothing written there


def test_models_list_marks_the_default_and_says_when_it_is_missing(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "other.gguf").write_bytes(b"GGUF")
    env = {**os.environ, "CROMWELL_HOME": str(tmp_path)}
    missing = subprocess.run([CROMWELL, "models", "list"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 0
    assert "(default)" not in missing.stdout and "other.gguf" in missing.stdout
    assert "run `cromwell models fetch`" in missing.stderr
    (models / model_store.CROMWELL_SMOL_FILENAME).write_bytes(b"GGUF")
    present = subprocess.run([CROMWELL, "models", "list"], env=env, capture_output=True,
                             text=True, timeout=120)
    marked = [line for line in present.stdout.splitlines() if "(default)" in line]
    assert len(marked) == 1 and marked[0].split()[-2].endswith("cromwell-smol.gguf")
    assert present.stderr == ""
