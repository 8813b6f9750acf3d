"""Hypothesis strategies for malformed LSP frames, shared by the frame parser's tests and
the fuzzer that throws them at a real server."""

from __future__ import annotations

import json

from hypothesis import strategies as st

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
