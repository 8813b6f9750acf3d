"""Fuzz the stdio reader: malformed frames (bad or missing headers, lengths too short and too
long, bodies that are not UTF-8 or not JSON, bare junk, frames torn across writes and
pauses) thrown at one real `cromwell lsp` process, each followed by a valid request that
must get its answer. A request left unanswered is a wedge; the goal is none.

The normal suite runs a fast slice of 100 frames from a fixed seed; `make soak-lsp` runs
CROMWELL_LSP_FUZZ_FRAMES (1,000 or more) from a random one and prints the tally.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lsp_helpers import EXAMPLE
from raw_lsp import RawServer, frame

FRAMES = int(os.environ.get("CROMWELL_LSP_FUZZ_FRAMES", "100"))
ANSWER_WAIT_S = 30.0  # generous: the machine running the suite may be busy
SHAPES = EXAMPLE / "geometry" / "shapes.py"

# Methods a fuzzed body may name: cheap ones, never `shutdown` or `exit`, which would end
# the session the fuzzer is testing.
METHODS = ["no/such", "textDocument/codeAction", "$/cancelRequest", "textDocument/didChange"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Ids of fuzzed requests are strings, so that none is taken for an answer to the probe.
messages = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0", "1.0"]),
        "id": st.text(min_size=1, max_size=6).map(lambda s: "f" + s),
        "method": st.sampled_from(METHODS),
        "params": json_values,
    }
).map(lambda m: json.dumps(m).encode())
header_values = st.one_of(
    st.text(max_size=8).map(lambda s: s.encode("utf-8", "replace")),
    st.sampled_from([b"abc", b"-5", b"1e3", b"0x10", b" ", b"99999999999999", b"5 5"]),
)
header_pieces = st.sampled_from(
    [
        b"Content-Length: ",
        b"Content-Length: 12\r\n",
        b"Content-Length: 0\r\n\r\n",
        b"\r\n\r\n",
        b"\r\n",
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n",
        b"Content-Type: text/plain; charset=latin-1\r\n",
        b"X-Other: 1\r\n",
        b"content-length:7\r\n\r\n",
    ]
)
bad_frames = st.one_of(
    # A header whose value is not a length.
    st.tuples(header_values, messages).map(
        lambda t: b"Content-Length: " + t[0] + b"\r\n\r\n" + t[1]
    ),
    # A length shorter or longer than the body (a longer one swallows the probe's bytes).
    st.tuples(messages, st.integers(-80, 600).filter(lambda d: d != 0)).map(
        lambda t: b"Content-Length: %d\r\n\r\n" % max(0, len(t[0]) + t[1]) + t[0]
    ),
    # The right length, a body that is not UTF-8 or not JSON.
    st.binary(max_size=60).map(lambda b: b"Content-Length: %d\r\n\r\n" % len(b) + b),
    st.binary(max_size=30).map(
        lambda b: b"Content-Length: %d\r\n\r\n" % (len(b) + 1) + b + b"\xff"
    ),
    st.text(max_size=40)
    .map(lambda t: t.encode())
    .map(lambda b: b"Content-Length: %d\r\n\r\n" % len(b) + b),
    # Bare junk, header fragments, and both run together.
    st.binary(min_size=1, max_size=80),
    st.lists(
        st.one_of(header_pieces, st.binary(max_size=10), messages), min_size=1, max_size=5
    ).map(b"".join),
)


def probe_frame(server: RawServer) -> tuple[int, bytes]:
    msg_id = server.new_id()
    request = {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": "textDocument/codeAction",
        "params": {
            "textDocument": {"uri": SHAPES.as_uri()},
            "range": {"start": {"line": 26, "character": 8}, "end": {"line": 26, "character": 8}},
            "context": {"diagnostics": []},
        },
    }
    return msg_id, frame(request)


def send_torn(server: RawServer, data: bytes, cuts: list[int], pause: bool) -> None:
    """Write `data` in pieces cut at `cuts`, pausing between them when asked: the reader
    must not mistake a pause for the end of a frame."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:], strict=False):
        server.send_bytes(data[start:end])
        if pause:
            time.sleep(0.08)


@pytest.fixture(scope="module")
def tally():
    counts = {"frames": 0, "wedges": 0, "parse_errors": 0, "invalid_requests": 0}
    yield counts
    print(
        f"\nLSP frame fuzz: {counts['frames']} bad frames, {counts['wedges']} wedges, "
        f"{counts['parse_errors']} parse errors and {counts['invalid_requests']} invalid "
        "requests answered"
    )


@pytest.fixture(scope="module")
def server():
    raw = RawServer()
    assert "result" in raw.initialize(EXAMPLE)
    raw.open(SHAPES)
    yield raw
    raw.close()


def count_errors(server: RawServer, tally: dict[str, int]) -> None:
    for message in server.unclaimed:
        code = message.get("error", {}).get("code")
        tally["parse_errors"] += code == -32700
        tally["invalid_requests"] += code == -32600
    server.unclaimed.clear()


@settings(
    max_examples=FRAMES,
    deadline=None,
    derandomize=FRAMES <= 100,  # the suite's slice is the same every run
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # a wedge found is shown as found: no shrinking
)
@given(
    bad=bad_frames,
    cuts=st.lists(st.integers(0, 10**6), max_size=3),
    pause=st.booleans(),
)
def test_every_bad_frame_is_followed_by_an_answered_request(
    server: RawServer, tally: dict[str, int], bad: bytes, cuts: list[int], pause: bool
):
    msg_id, probe = probe_frame(server)
    tally["frames"] += 1
    send_torn(server, bad + probe, cuts, pause)
    try:
        reply: dict[str, Any] = server.reply(msg_id, timeout=ANSWER_WAIT_S)
    except TimeoutError:
        tally["wedges"] += 1
        raise AssertionError(f"wedged: no answer after the bad frame {bad!r}") from None
    count_errors(server, tally)
    assert server.proc.poll() is None, f"the server died after {bad!r}"
    titles = [action["title"] for action in reply["result"]]
    assert "Cromwell: Complete function body" in titles


def test_the_fuzzer_ran_its_frames(tally: dict[str, int]):
    assert tally["frames"] >= FRAMES and tally["wedges"] == 0
