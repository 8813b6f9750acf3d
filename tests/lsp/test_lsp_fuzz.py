"""Fuzz: malformed frames, broken JSON and random params for every method the server has,
thrown at one real `cromwell lsp` process over raw stdio. After each example the server must
still answer a valid request correctly."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lsp_helpers import EXAMPLE

METHODS = [
    "textDocument/codeAction",
    "codeAction/resolve",
    "workspace/executeCommand",
    "textDocument/inlineCompletion",
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "workspace/didChangeConfiguration",
    "workspace/didChangeWatchedFiles",
    "workspace/didChangeWorkspaceFolders",
    "$/cancelRequest",
    "$/setTrace",
    "no/suchMethod",
]
COMMANDS = ["cromwell.runAction", "cromwell.editSelection", "cromwell.explainContext"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
positions = st.fixed_dictionaries(
    {"line": st.integers(-3, 10**6), "character": st.integers(-3, 10**6)}
)
plausible_params = st.fixed_dictionaries(
    {
        "textDocument": st.fixed_dictionaries(
            {"uri": st.sampled_from(["file:///nope.py", "", "x"])}
        ),
        "range": st.fixed_dictionaries({"start": positions, "end": positions}),
        "context": st.fixed_dictionaries({"diagnostics": st.just([])}),
        "command": st.sampled_from(COMMANDS),
        "arguments": st.lists(json_values, max_size=2),
        "data": json_values,
        "title": st.text(max_size=5),
    }
)


class RawServer:
    """`cromwell lsp` over pipes, with our own framing so that we can break it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cromwell_cli", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 1000

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            headers = {}
            while (line := out.readline()) not in (b"\r\n", b""):
                key, _, value = line.decode().partition(":")
                headers[key.strip().lower()] = value.strip()
            if line == b"":
                return
            body = out.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        body = json.dumps(message).encode()
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params: Any, timeout: float = 10) -> dict[str, Any]:
        self.next_id += 1
        msg_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        while True:
            msg = self.messages.get(timeout=timeout)
            if msg.get("id") == msg_id and "method" not in msg:
                return msg
            if "method" in msg and "id" in msg:  # a server request (configuration...): answer
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    import shutil

    root = tmp_path_factory.mktemp("fuzz") / "workspace"
    shutil.copytree(EXAMPLE, root)
    raw = RawServer()
    caps = {"workspace": {"configuration": True}, "window": {"workDoneProgress": True}}
    init = raw.request(
        "initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": caps}
    )
    assert "result" in init
    raw.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    shapes = root / "geometry" / "shapes.py"
    raw.send(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {
                    "uri": shapes.as_uri(),
                    "languageId": "python",
                    "version": 1,
                    "text": shapes.read_text(),
                }
            },
        }
    )
    raw.shapes_uri = shapes.as_uri()  # type: ignore[attr-defined]
    yield raw
    raw.close()


def still_answers(server: RawServer) -> None:
    reply = server.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": server.shapes_uri},  # type: ignore[attr-defined]
            "range": {"start": {"line": 26, "character": 8}, "end": {"line": 26, "character": 8}},
            "context": {"diagnostics": []},
        },
    )
    assert server.proc.poll() is None, "the server died"
    titles = [a["title"] for a in reply["result"]]
    assert "Cromwell: Complete function body" in titles


garbage_frames = st.one_of(
    st.binary(max_size=40).map(lambda b: b"Content-Length: %d\r\n\r\n" % len(b) + b),
    st.text(max_size=40).map(
        lambda t: b"Content-Length: %d\r\n\r\n" % len(t.encode()) + t.encode()
    ),
    st.just(b"Content-Length: 2\r\n\r\n{}"),
    st.just(b"Content-Length: 4\r\n\r\nnull"),
)


# No shrinking phase: each example costs a server round trip, and the failing example as
# found is readable enough.
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    method=st.sampled_from(METHODS),
    params=st.one_of(json_values, plausible_params),
    as_request=st.booleans(),
    frame=st.one_of(st.none(), garbage_frames),
)
def test_server_survives_random_input(server: RawServer, method, params, as_request, frame):
    if frame is not None:
        server.send_bytes(frame)
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if as_request:
        reply = server.request(method, params)
        assert ("result" in reply) != ("error" in reply)
        if "error" in reply:
            assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]
    else:
        server.send(message)
    still_answers(server)


def test_fuzz_server_is_the_example(server: RawServer):
    assert Path(EXAMPLE / "geometry" / "shapes.py").is_file()
    still_answers(server)
