"""Fuzz the stdio reader: malformed frames (bad or missing headers, lengths too short and too
long, bodies that are not UTF-8 or not JSON, bare junk, frames torn across writes and
pauses) thrown at one real `cromwell lsp` process, each followed by a valid request that
must get its answer. A request left unanswered is a wedge; the goal is none.

The normal suite runs a fast slice of 100 frames from a fixed seed; `make soak-lsp` runs
CROMWELL_LSP_FUZZ_FRAMES (1,000 or more) from a random one and prints the tally.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lsp_frame_strategies import bad_frames
from lsp_helpers import EXAMPLE
from raw_lsp import RawServer, frame

FRAMES = int(os.environ.get("CROMWELL_LSP_FUZZ_FRAMES", "100"))
ANSWER_WAIT_S = 30.0  # generous: the machine running the suite may be busy
SHAPES = EXAMPLE / "geometry" / "shapes.py"


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
