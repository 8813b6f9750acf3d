"""Hostile input at the HTTP door: paths the file system cannot take, writes outside the root,
oversized prompts, and the bearer token's edge cases. Each is a 4xx with a sentence, the
server stays up, and nothing on disk changes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import httpx
import pytest
from doors_helpers import CROMWELL, SAMPLE, Server, cromwell_env, free_port, make_root
from PIL import Image

from cromwell_lsp import api, domain

BAD_PATHS = [
    ("m.py\u0000.txt", "NUL byte"),
    ("a" * 5000, "longer than"),
    ("d/" * 2100 + "m.py", "longer than 4096 bytes"),
]
DOORS = [
    ("/v1/complete", {"line": 0, "column": 0, "max_tokens": 1}),
    ("/v1/context", {"instruction": "x"}),
    ("/v1/edit", {"instruction": "x", "max_tokens": 1}),
]


@pytest.mark.parametrize(("door", "extra"), DOORS)
@pytest.mark.parametrize(("path", "needle"), BAD_PATHS)
def test_a_path_the_file_system_cannot_take_is_a_400(
    server: Server, door: str, extra: dict[str, object], path: str, needle: str
) -> None:
    with server.client() as http:
        response = http.post(door, json={"path": path, **extra})
        assert http.get("/health").status_code == 200
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]
    assert len(response.json()["detail"]) < 200  # the path is quoted short, not echoed whole


def test_the_python_api_makes_the_same_checks(tmp_path: Path) -> None:
    # Refused before any model is loaded: the path is checked first.
    for path, needle in BAD_PATHS:
        with pytest.raises(domain.RequestError, match=needle):
            api.complete(tmp_path / path, 0, 0, model=str(tmp_path / "no-model.gguf"))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), "navy").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("target", "needle"),
    [
        ("../../../tmp/x.py", "only relative paths"),
        ("/tmp/cromwell-screenshot-target.py", "only relative paths"),
        ("out/x.py", "resolves outside"),  # out is a symbolic link leaving the root
    ],
)
def test_screenshot_target_outside_the_root_is_refused(server: Server, tmp_path: Path,
                                                        target: str, needle: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = server.root / "out"
    if not link.is_symlink():
        link.symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in server.root.iterdir())
    with server.client() as http:
        response = http.post("/v1/screenshot", files={"image": ("s.png", _png())},
                             data={"target": target, "max_tokens": "1"})
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]
    assert sorted(p.name for p in server.root.iterdir()) == before
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/cromwell-screenshot-target.py").exists()


def test_an_oversized_prompt_is_refused_by_its_bytes(tmp_path: Path) -> None:
    """An 8 MB instruction (under the 10 MB body limit) and 8 MB of file text are refused
    with the limit in the message; the file on disk is untouched."""
    root = make_root(tmp_path / "root")
    srv = Server(root)  # the default body limit, 10 MB
    huge = "x" * 8_000_000
    try:
        with srv.client() as http:
            instruction = http.post("/v1/edit", json={"path": "m.py", "instruction": huge})
            context = http.post("/v1/context", json={"path": "m.py", "instruction": huge})
            text = http.post("/v1/complete", json={"path": "m.py", "text": huge, "line": 0,
                                                   "column": 0})
            assert http.get("/health").status_code == 200
    finally:
        srv.stop()
    for response in (instruction, context):
        assert response.status_code == 400, response.text
        assert "the instruction is over the limit of" in response.json()["detail"]
    assert text.status_code == 400, text.text
    assert "over the limit of 1000000 bytes" in text.json()["detail"]
    assert (root / "m.py").read_text() == SAMPLE


def test_the_bearer_scheme_is_case_insensitive(tmp_path: Path) -> None:
    srv = Server(make_root(tmp_path / "root"), token="s3cret")
    try:
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = httpx.get(srv.url + "/health", headers={"Authorization": f"{scheme} s3cret"})
            assert r.status_code == 200, scheme
        for header in ("bearer", "bearer wrong", "Basic s3cret", "bearers3cret"):
            r = httpx.get(srv.url + "/health", headers={"Authorization": header})
            assert r.status_code == 401, header
    finally:
        srv.stop()


@pytest.mark.parametrize("token", [" ", "\t  "])
def test_a_blank_token_is_refused_at_start(tmp_path: Path, token: str) -> None:
    env = {**cromwell_env(), "CROMWELL_TOKEN": token}
    done = subprocess.run(
        [CROMWELL, "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--root",
         str(make_root(tmp_path / "root"))],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "empty or only whitespace" in done.stderr
    assert "Traceback" not in done.stderr

