"""The lifecycle as the LSP spec has it, over raw stdio: ServerNotInitialized (-32002)
before `initialize`, InvalidRequest (-32600) after `shutdown`, and the exit code that
`exit` asks for: 0 after `shutdown`, 1 without."""

from __future__ import annotations

from lsp_helpers import EXAMPLE
from raw_lsp import RawServer

SHAPES = EXAMPLE / "geometry" / "shapes.py"
CODE_ACTION = {
    "textDocument": {"uri": SHAPES.as_uri()},
    "range": {"start": {"line": 26, "character": 8}, "end": {"line": 26, "character": 8}},
    "context": {"diagnostics": []},
}


def test_requests_before_initialize_get_server_not_initialized():
    server = RawServer()
    try:
        reply = server.request("textDocument/codeAction", CODE_ACTION)
        assert reply["error"]["code"] == -32002
        assert "initialize" in reply["error"]["message"]
        assert server.request("shutdown")["error"]["code"] == -32002
        # A notification before initialize is dropped; initialize then works.
        server.open(SHAPES)
        assert "capabilities" in server.initialize(EXAMPLE)["result"]
        assert (
            server.request("initialize", {"processId": None, "capabilities": {}})["error"]["code"]
            == -32600
        )
    finally:
        server.close()


def test_requests_after_shutdown_get_invalid_request_and_exit_gives_0():
    server = RawServer()
    try:
        server.initialize(EXAMPLE)
        assert "result" in server.request("textDocument/codeAction", CODE_ACTION)
        reply = server.request("shutdown")
        assert "result" in reply and reply["result"] is None
        for method, params in [("textDocument/codeAction", CODE_ACTION), ("shutdown", None)]:
            reply = server.request(method, params)
            assert reply["error"]["code"] == -32600
            assert "after 'shutdown'" in reply["error"]["message"]
        server.send({"jsonrpc": "2.0", "method": "exit"})
        assert server.exit_code() == 0
    finally:
        server.close()


def test_exit_without_shutdown_gives_1():
    server = RawServer()
    try:
        server.initialize(EXAMPLE)
        server.send({"jsonrpc": "2.0", "method": "exit"})
        assert server.exit_code() == 1
    finally:
        server.close()


def test_exit_before_initialize_gives_1():
    server = RawServer()
    try:
        server.send({"jsonrpc": "2.0", "method": "exit"})
        assert server.exit_code() == 1
    finally:
        server.close()
