"""`cromwell serve` answering real HTTP requests: every endpoint, streaming, bad input."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from doors_helpers import SAMPLE, Server, make_root
from PIL import Image

from cromwell_lsp.patches import apply_diff

MAX = 4  # generated tokens per request: CPU time in tests is shared and scarce


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


def test_health_models_and_docs(server: Server) -> None:
    with server.client() as http:
        health = http.get("/health").json()
        assert health["status"] == "ok" and health["model_loaded"] is True
        models = http.get("/v1/models").json()
        assert models["object"] == "list" and models["data"][0]["id"] == "cromwell-default"
        assert http.get("/docs").status_code == 200
        paths = http.get("/openapi.json").json()["paths"]
        for path in ("/v1/edit", "/v1/complete", "/v1/screenshot", "/v1/context",
                     "/v1/completions", "/v1/chat/completions", "/v1/models", "/health"):
            assert path in paths


def test_completions_stream_matches_the_plain_answer(server: Server) -> None:
    body = {"prompt": "def fibonacci(n):", "max_tokens": MAX}
    with server.client() as http:
        plain = http.post("/v1/completions", json=body).json()
        assert plain["object"] == "text_completion"
        assert plain["usage"]["completion_tokens"] <= MAX
        text = plain["choices"][0]["text"]
        assert text
        with http.stream("POST", "/v1/completions", json={**body, "stream": True}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == text  # greedy: same tokens
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")


def test_chat_completions_plain_and_streamed(server: Server) -> None:
    body = {"model": "cromwell-default", "max_tokens": MAX, "stop": ["\n\n"],
            "messages": [{"role": "system", "content": "Answer briefly."},
                         {"role": "user", "content": "Name a prime number."}]}
    with server.client() as http:
        plain = http.post("/v1/chat/completions", json=body).json()
        message = plain["choices"][0]["message"]
        assert plain["object"] == "chat.completion" and message["role"] == "assistant"
        with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == message["content"]


def test_edit_returns_a_diff_that_applies(server: Server) -> None:
    body = {"path": "m.py", "instruction": "fix add: it must return a + b", "lines": [1, 2],
            "max_tokens": 24}
    with server.client() as http:
        response = http.post("/v1/edit", json=body)
    # Greedy decoding: the default model makes this fix the same way every time.
    assert response.status_code == 200, response.text
    out = response.json()
    assert "return a + b" in out["new_text"]
    assert apply_diff(SAMPLE, out["diff"]) == out["new_text"]
    assert out["applied"] is False and (server.root / "m.py").read_text() == SAMPLE


def test_edit_apply_needs_the_file_on_disk(server: Server) -> None:
    body = {"path": "m.py", "text": SAMPLE, "instruction": "fix add", "lines": [1, 2],
            "apply": True}
    with server.client() as http:
        response = http.post("/v1/edit", json=body)
    assert response.status_code == 400 and "leave out text" in response.json()["detail"]


def test_edit_apply_writes_the_file(server: Server) -> None:
    target = server.root / "applied.py"
    target.write_text(SAMPLE)
    body = {"path": "applied.py", "instruction": "fix add: it must return a + b",
            "lines": [1, 2], "max_tokens": 24, "apply": True}
    with server.client() as http:
        response = http.post("/v1/edit", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] is True
    assert target.read_text() == response.json()["new_text"] != SAMPLE


def test_complete_and_context(server: Server) -> None:
    with server.client() as http:
        done = http.post("/v1/complete", json={"path": "m.py", "line": 5, "column": 4,
                                                "max_tokens": MAX})
        assert done.status_code == 200, done.text
        assert isinstance(done.json()["text"], str)
        ctx = http.post("/v1/context", json={"path": "m.py", "lines": [1, 2],
                                              "instruction": "fix add"})
    assert ctx.status_code == 200, ctx.text
    plan = ctx.json()
    assert plan["target"] == "m.py" and plan["promptTokens"] > 0
    assert "util.py" in [f["path"] for f in plan["files"]]
    assert "return a - b" in plan["prompt"]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), "navy").save(buffer, format="PNG")
    return buffer.getvalue()


def test_screenshot_endpoint(server: Server) -> None:
    with server.client() as http:
        not_image = http.post("/v1/screenshot", files={"image": ("x.png", b"not a png")})
        picture = http.post("/v1/screenshot", files={"image": ("s.png", _png())},
                            data={"max_tokens": str(MAX)})
    assert not_image.status_code == 400 and "not an image" in not_image.json()["detail"]
    # The embedded default model is text-only: it says so rather than inventing code.
    assert picture.status_code in (200, 400), picture.text
    if picture.status_code == 400:
        assert "image" in picture.json()["detail"]
    else:
        assert picture.json()["path"] == "screenshot.py"


@pytest.mark.parametrize(
    ("path", "content", "status", "needle"),
    [
        ("/v1/completions", b'{"prompt": ', 422, "JSON decode error"),
        ("/v1/completions", b'{"prompt": 3}', 422, "valid string"),
        ("/v1/completions", b'{"prompt": "x", "max_tokens": 0}', 422, "greater than"),
        ("/v1/chat/completions", b'{"messages": []}', 422, "at least 1"),
        ("/v1/chat/completions", b'{"messages": [{"role": "robot", "content": "x"}]}', 422,
         "literal_error"),
        ("/v1/edit", b'{"path": "../etc/passwd", "instruction": "x"}', 400, "inside"),
        ("/v1/edit", b'{"path": "nope.py", "instruction": "x"}', 400, "no such file"),
        ("/v1/edit", b'{"path": "m.py", "instruction": "x", "lines": [5, 90]}', 400,
         "outside"),
        ("/v1/complete", b'{"path": "m.py", "line": 1, "column": 99}', 400, "column"),
        ("/v1/context", b'{"lines": "all"}', 422, "missing"),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(server: Server, path: str, content: bytes,
                                             status: int, needle: str) -> None:
    with server.client() as http:
        response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert needle in response.text


def test_huge_bodies_are_refused(server: Server) -> None:
    huge = json.dumps({"prompt": "x" * 200_000}).encode()
    with server.client() as http:
        declared = http.post("/v1/completions", content=huge,
                             headers={"content-type": "application/json"})

        def chunks():  # no Content-Length: the limit is counted as the body arrives
            for i in range(0, len(huge), 10_000):
                yield huge[i:i + 10_000]

        streamed = http.post("/v1/completions", content=chunks(),
                             headers={"content-type": "application/json"})
        assert http.get("/health").status_code == 200
    assert declared.status_code == 413 and "over 100000 bytes" in declared.text
    assert streamed.status_code == 413


def test_disconnect_cancels_generation(server: Server) -> None:
    """A streaming client that leaves stops its generation: the next request is served long
    before 2000 tokens could have been generated."""
    body = {"prompt": "Count: 1, 2, 3,", "max_tokens": 2000, "stream": True}
    with server.client() as http:
        before = http.get("/health").json()["cancelled"]
        with http.stream("POST", "/v1/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # one token arrived: now go away
    started = time.monotonic()
    with server.client() as http:
        quick = http.post("/v1/completions", json={"prompt": "hi", "max_tokens": 1})
        assert quick.status_code == 200
        assert time.monotonic() - started < 15
        assert http.get("/health").json()["cancelled"] == before + 1


def test_auth_on(tmp_path: Path) -> None:
    srv = Server(make_root(tmp_path / "root"), token="s3cret-token")
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            for method, path in (("GET", "/health"), ("GET", "/docs"), ("POST", "/v1/completions")):
                r = httpx.request(method, srv.url + path, headers=headers,
                                  json={"prompt": "x", "max_tokens": 1})
                assert r.status_code == 401, (headers, path)
                assert r.headers["www-authenticate"] == "Bearer"
        with srv.client() as http:
            assert http.get("/health").status_code == 200
            r = http.post("/v1/completions", json={"prompt": "x", "max_tokens": 1})
            assert r.status_code == 200
    finally:
        srv.stop()


def test_auth_off_on_loopback(server: Server) -> None:
    assert httpx.get(server.url + "/health").status_code == 200


def test_queue_full_answers_429_with_retry_after(tmp_path: Path) -> None:
    srv = Server(make_root(tmp_path / "root"), "--queue", "1")
    statuses: list[httpx.Response] = []
    lock = threading.Lock()

    def ask() -> None:
        with srv.client() as http:
            r = http.post("/v1/completions", json={"prompt": "Count: 1, 2,", "max_tokens": 24})
        with lock:
            statuses.append(r)

    try:
        threads = [threading.Thread(target=ask) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in statuses)
        assert set(codes) <= {200, 429} and 200 in codes and 429 in codes, codes
        busy = next(r for r in statuses if r.status_code == 429)
        assert busy.headers["retry-after"] == "1"
        assert "busy" in busy.json()["error"]["message"]  # the OpenAI path answers in its shape
    finally:
        srv.stop()
