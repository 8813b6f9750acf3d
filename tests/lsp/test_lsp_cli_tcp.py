"""`cromwell lsp --tcp`: the same server over a socket, configured by initializationOptions."""

from __future__ import annotations

from pathlib import Path

from lsp_helpers import EXAMPLE
from raw_lsp import frame, read_message, tcp_server


def test_tcp_session_with_initialization_options(tmp_path: Path):
    with tcp_server() as stream:

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
