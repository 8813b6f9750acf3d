"""A real `cromwell lsp` process driven over raw stdio bytes, for tests that must send what
no client library would: broken frames, requests out of the lifecycle's order."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

SERVER = [sys.executable, "-m", "cromwell_cli", "lsp"]


def frame(message: Any, length: int | None = None, headers: bytes = b"") -> bytes:
    """One frame; `length` overrides the true Content-Length."""
    body = json.dumps(message).encode()
    n = len(body) if length is None else length
    return b"Content-Length: %d\r\n%s\r\n" % (n, headers) + body


def read_message(stream: BinaryIO) -> dict[str, Any]:
    """The next message on a stream of frames; AssertionError when the stream has ended."""
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert length, "the server closed the connection"
    return json.loads(stream.read(length))


@contextlib.contextmanager
def tcp_server() -> Iterator[BinaryIO]:
    """A `cromwell lsp --tcp` process on a free loopback port, and a stream connected to it;
    the process is killed on the way out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*SERVER, "--tcp", "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server never listened")
        with sock, sock.makefile("rwb") as stream:
            yield stream
    finally:
        proc.kill()
        proc.wait()


class RawServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0
        self.unclaimed: list[dict[str, Any]] = []  # messages read while waiting for another

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while (line := out.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if line == b"" or length is None:
                self.messages.put(None)
                return
            self.messages.put(json.loads(out.read(length)))

    def send_bytes(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_bytes(frame(message))

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def reply(self, msg_id: Any, timeout: float = 30) -> dict[str, Any]:
        """The answer to request `msg_id`, answering the server's own requests meanwhile;
        TimeoutError when none comes."""
        for msg in self.unclaimed:
            if "method" not in msg and msg.get("id") == msg_id:
                self.unclaimed.remove(msg)
                return msg
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no answer to request {msg_id} in {timeout} s") from None
            if msg is None:
                raise EOFError("the server closed its output")
            if "method" in msg and "id" in msg:  # a server request (configuration...)
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "method" not in msg and msg.get("id") == msg_id:
                return msg
            else:
                self.unclaimed.append(msg)

    def errors_without_id(self, wait: float = 0.5) -> list[dict[str, Any]]:
        """The error answers with id null read so far or arriving within `wait` seconds."""
        out = [m for m in self.unclaimed if "error" in m and m.get("id") is None]
        self.unclaimed = [m for m in self.unclaimed if m not in out]
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if msg is not None and "error" in msg and msg.get("id") is None:
                out.append(msg)
        return out

    def request(self, method: str, params: Any = None, timeout: float = 30) -> dict[str, Any]:
        msg_id = self.new_id()
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.reply(msg_id, timeout)

    def initialize(self, root: Path | None = None) -> dict[str, Any]:
        params = {
            "processId": None,
            "rootUri": root.as_uri() if root else None,
            "capabilities": {},
        }
        result = self.request("initialize", params)
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return result

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        document = {
            "uri": uri,
            "languageId": "python",
            "version": 1,
            "text": path.read_text() if text is None else text,
        }
        self.send(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didOpen",
                "params": {"textDocument": document},
            }
        )
        return uri

    def exit_code(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
