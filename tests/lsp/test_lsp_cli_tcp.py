"""`cromwell lsp --tcp`: the same server over a socket, configured by initializationOptions."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from lsp_helpers import EXAMPLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(stream) -> dict:
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stream.read(length))


def test_tcp_session_with_initialization_options(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cromwell_lsp.cli", "lsp", "--tcp", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=20)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server never listened")
        stream = sock.makefile("rwb")

        def request(msg_id: int, method: str, params: dict) -> dict:
            stream.write(
                frame({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
            )
            stream.flush()
            while "id" not in (msg := read_message(stream)) or msg["id"] != msg_id:
                pass
            return msg

        init = request(
            1,
            "initialize",
            {
                "processId": None,
                "rootUri": EXAMPLE.as_uri(),
                "capabilities": {},
                "initializationOptions": {"actions": ["addDocstring"]},
            },
        )
        caps = init["result"]["capabilities"]
        assert caps["codeActionProvider"]["resolveProvider"] is True
        assert set(caps["executeCommandProvider"]["commands"]) == {
            "cromwell.runAction",
            "cromwell.editSelection",
            "cromwell.explainContext",
            "cromwell.ghostStats",
        }
        assert caps["textDocumentSync"]["change"] == 2  # incremental
        assert "inlineCompletionProvider" in caps and "completionProvider" in caps
        shapes = EXAMPLE / "geometry" / "shapes.py"
        reply = request(
            2,
            "textDocument/codeAction",
            {
                "textDocument": {"uri": shapes.as_uri()},  # not opened: read from disk
                "range": {
                    "start": {"line": 26, "character": 8},
                    "end": {"line": 26, "character": 8},
                },
                "context": {"diagnostics": []},
            },
        )
        (action,) = reply["result"]
        assert action["title"] == "Cromwell: Add docstring"
        # Without resolve support the action carries its command instead of data.
        assert action["command"]["command"] == "cromwell.runAction"
        # A document read from disk has no version: the edit is checked against its text.
        assert "version" not in action["command"]["arguments"][0]
        sock.close()
    finally:
        proc.kill()
        proc.wait()
