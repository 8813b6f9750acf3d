"""The stdio reader recovers from a bad frame: each kind of broken frame gets a ParseError
(-32700, id null) or is read as far as it goes, and the next request is answered. The parser
alone first (bytes in, events out, fed whole and byte by byte), then a real `cromwell lsp`
process over raw stdio and over TCP."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsp_frame_strategies import bad_frames
from lsp_helpers import EXAMPLE
from raw_lsp import RawServer, frame, read_message, tcp_server

from cromwell_lsp.lsp_frames import Body, FrameParser, Malformed

NEXT = {"jsonrpc": "2.0", "id": 7, "method": "shutdown"}
BAD_FRAMES = {
    "length not a number": b"Content-Length: abc\r\n\r\n{}",
    "length shorter than the body": frame({"jsonrpc": "2.0", "id": 1, "method": "x"}, 10),
    "length longer than the body": frame({"jsonrpc": "2.0", "id": 1, "method": "x"}, 400),
    "length far past the input": frame({"jsonrpc": "2.0", "id": 1, "method": "x"}, 10**8),
    "body not UTF-8": b"Content-Length: 4\r\n\r\n\xff\xfe{}",
    "body not JSON": b"Content-Length: 5\r\n\r\nhello",
    "NaN is not JSON": b"Content-Length: 3\r\n\r\nNaN",
    "no Content-Length": b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}",
    "charset not UTF-8": b"Content-Length: 2\r\nContent-Type: text/x; charset=latin-1\r\n\r\n{}",
    "junk without a header": b'{"jsonrpc": "2.0"} and more',
    "header without its blank line": b"Content-Length: 2\r\n{}",
    "empty body": b"Content-Length: 0\r\n\r\n",
    "length over the limit": b"Content-Length: 999999999999\r\n\r\n{}",
}


def parse(data: bytes, byte_by_byte: bool) -> list[Body | Malformed]:
    parser = FrameParser()
    events: list[Body | Malformed] = []
    for piece in [data[i : i + 1] for i in range(len(data))] if byte_by_byte else [data]:
        parser.feed(piece)
        events += parser.events()
    return events + parser.events(idle=True) + parser.finish()


@pytest.mark.parametrize("byte_by_byte", [False, True])
@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_parser_reads_the_frame_after_a_bad_one(name: str, byte_by_byte: bool):
    events = parse(BAD_FRAMES[name] + frame(NEXT), byte_by_byte)
    assert events[-1] == Body(NEXT), events
    assert all(e != Body(NEXT) for e in events[:-1])


def test_parser_reads_good_frames_with_content_type_and_blank_lines():
    content_type = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
    data = frame({"a": 1}) + b"\r\n" + frame({"b": "\u00e9\u4e2d"}, headers=content_type)
    assert parse(data, False) == [Body({"a": 1}), Body({"b": "\u00e9\u4e2d"})]
    assert parse(data, True) == [Body({"a": 1}), Body({"b": "\u00e9\u4e2d"})]


def test_parser_reports_each_bad_frame_once():
    for name in ("length not a number", "body not UTF-8", "body not JSON", "no Content-Length"):
        events = parse(BAD_FRAMES[name] + frame(NEXT), False)
        assert [type(e) for e in events] == [Malformed, Body], (name, events)


def test_parser_reads_a_body_whose_length_was_too_long_once_input_pauses():
    parser = FrameParser()
    parser.feed(frame(NEXT, 500))
    assert parser.events() == []  # more bytes may come
    assert parser.events(idle=True) == [Body(NEXT)]  # a whole object: nothing valid can follow


def test_parser_waits_for_a_body_still_arriving():
    data = frame({"text": "x" * 1000})
    parser = FrameParser()
    parser.feed(data[:300])
    assert parser.events(idle=True) == []  # half an object is not a frame yet
    parser.feed(data[300:])
    assert parser.events() == [Body({"text": "x" * 1000})]


@pytest.fixture(scope="module")
def server():
    raw = RawServer()
    assert "result" in raw.initialize(EXAMPLE)
    yield raw
    raw.close()


def probe(server: RawServer) -> None:
    """A valid request after the bad frame gets its own answer."""
    shapes = EXAMPLE / "geometry" / "shapes.py"
    reply = server.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": shapes.as_uri()},
            "range": {"start": {"line": 26, "character": 8}, "end": {"line": 26, "character": 8}},
            "context": {"diagnostics": []},
        },
        timeout=30,
    )
    assert "Cromwell: Complete function body" in [a["title"] for a in reply["result"]]


@pytest.mark.parametrize(
    "name",
    [n for n in sorted(BAD_FRAMES) if n not in ("length longer than the body",)],
)
def test_server_answers_a_parse_error_and_the_next_request(server: RawServer, name: str):
    server.send_bytes(BAD_FRAMES[name])
    probe(server)
    if name not in ("length far past the input",):
        errors = server.errors_without_id(wait=0.3)
        assert errors and all(e["error"]["code"] in (-32700, -32600) for e in errors), errors
        assert all(e["error"]["message"] for e in errors)
    assert server.proc.poll() is None


def test_server_reads_a_request_whose_length_was_too_long(server: RawServer):
    """The request is answered: the next frame's header marks where its body ended."""
    msg_id = server.new_id()
    request = {"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand"}
    request["params"] = {"command": "cromwell.explainContext", "arguments": []}
    server.send_bytes(frame(request, 400))
    probe(server)
    assert "takes one argument" in server.reply(msg_id)["error"]["message"]


def test_server_answers_json_that_is_not_a_message(server: RawServer):
    for body in (b"[]", b"null", b"{}", b'{"jsonrpc": "1.0", "id": 3, "method": "x"}'):
        server.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        probe(server)
    replies = server.errors_without_id(wait=0.3)
    assert [r["error"]["code"] for r in replies] == [-32600, -32600, -32600]


def test_a_configuration_change_takes_effect_before_the_request_written_with_it():
    """Frames that arrive in one read are handled in order, each notification's handler
    starting before the next request (the configuration handler is a coroutine)."""
    server = RawServer()
    try:
        server.initialize(EXAMPLE)
        settings = {"settings": {"cromwell": {"actions": ["addDocstring"]}}}
        change = {"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration"}
        msg_id = server.new_id()
        shapes = EXAMPLE / "geometry" / "shapes.py"
        request = {
            "jsonrpc": "2.0",
            "id": msg_id,
            "method": "textDocument/codeAction",
            "params": {
                "textDocument": {"uri": shapes.as_uri()},
                "range": {
                    "start": {"line": 26, "character": 8},
                    "end": {"line": 26, "character": 8},
                },
                "context": {"diagnostics": []},
            },
        }
        server.send_bytes(frame({**change, "params": settings}) + frame(request))
        titles = [a["title"] for a in server.reply(msg_id)["result"]]
        assert titles == ["Cromwell: Add docstring"]
    finally:
        server.close()


def test_tcp_reader_recovers_from_a_bad_frame():
    with tcp_server() as stream:
        stream.write(BAD_FRAMES["length not a number"])
        init = {"processId": None, "rootUri": Path(EXAMPLE).as_uri(), "capabilities": {}}
        stream.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}))
        stream.flush()
        seen = []
        while not any(m.get("id") == 1 for m in seen):
            seen.append(read_message(stream))
        assert seen[0]["error"]["code"] == -32700 and seen[0]["id"] is None
        assert "capabilities" in seen[-1]["result"]


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(bad_frames, st.lists(st.integers(0, 10**6), max_size=3), st.booleans()),
        min_size=1,
        max_size=6,
    )
)
def test_parser_finds_every_good_frame_after_fuzzed_bad_ones(script):
    """Runs of bad frames, each followed by a good one, torn into pieces with pauses (an
    idle look) between them: every good frame is read, whatever came before it."""
    parser = FrameParser()
    for n, (bad, cuts, pause) in enumerate(script):
        good = {"jsonrpc": "2.0", "id": n, "method": "x", "params": {"text": "y" * 50}}
        data = bad + frame(good)
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        events = []
        for start, end in zip(points, points[1:], strict=False):
            parser.feed(data[start:end])
            events += parser.events(idle=False) + (parser.events(idle=True) if pause else [])
        events += parser.events(idle=True)
        assert Body(good) in events, (bad, events)
