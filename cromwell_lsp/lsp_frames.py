"""The LSP base protocol's framing (`Content-Length: N\\r\\n\\r\\n` + N bytes of UTF-8 JSON),
read so that one bad frame costs one error and never the session.

pygls's reader takes header lines with `readline` and trusts the declared length: after a
bad header or a wrong length it reads the next frame's bytes as part of the current one and
never finds a header again. This parser works on a byte buffer and resynchronises instead:

- a header block that does not parse (`Content-Length: abc`, no length, a charset other
  than UTF-8, junk where a header should be) is reported, and reading resumes at the next
  `Content-Length:` line;
- a body that is not UTF-8 or not JSON is reported and skipped;
- a body cut short by the next frame (the declared length was too long) is found by that
  frame's header inside it: what came before is read as the body, the header starts anew;
- the rest of a body whose declared length was too short is skipped up to the next header.

The resynchronisation is sound for well-formed input: a header line ends in a raw CR LF,
which valid JSON never contains (a string holds `\\r\\n` escaped), so a `Content-Length`
line is never found inside a good body. Bodies whose declared length has not arrived yet are
looked at only when the input has paused (`idle`): a body that is already a whole JSON object
can only be followed by whitespace in a valid frame, so it is read without waiting for bytes
that may never come.

Pure bytes in, events out: no I/O here (the transport is `lsp_transport`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_HEADER_BYTES = 4096  # a header block longer than this is junk
MAX_BODY_BYTES = 256 * 1024 * 1024  # a declared length over this is refused, not awaited
WHITESPACE = b" \t\r\n"
HEADER_LINE_BYTES = 64  # room for one Content-Length line still arriving

# A Content-Length header line, wherever it starts: the place to resynchronise at.
HEADER_LINE = re.compile(rb"content-length[ \t]*:[ \t]*\d{1,12}[ \t]*\r\n", re.IGNORECASE)
HEADER_FIELD = re.compile(rb"([A-Za-z0-9-]+)[ \t]*:[ \t]*(.*?)[ \t]*")
# What an unfinished header block may look like while its bytes are still arriving.
PARTIAL_HEADERS = re.compile(
    rb"(?:[A-Za-z0-9-]+[ \t]*:[^\r\n]*\r\n)*(?:[A-Za-z0-9-]+(?:[ \t]*:[^\r\n]*)?)?\r?"
)
UTF8_CHARSETS = {"utf-8", "utf8"}


@dataclass(frozen=True)
class Body:
    """A frame body that is a JSON value (`value`, as `json.loads` gives it)."""

    value: Any


@dataclass(frozen=True)
class Malformed:
    """Bytes that are not a readable frame; `reason` is one sentence for the client."""

    reason: str


Event = Body | Malformed


class BadFrame(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_body(raw: bytes) -> Any:
    """The JSON value of a body; BadFrame when it is not UTF-8 or not strict JSON (NaN and
    Infinity, which Python's json accepts, are refused)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadFrame(f"the body is not UTF-8 (byte {exc.start} of {len(raw)})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadFrame("the body's JSON is nested too deeply") from None
    except ValueError as exc:
        raise BadFrame(f"the body is not JSON ({exc})") from None


def parse_header_block(block: bytes) -> int:
    """The declared body length of a header block (without its closing blank line)."""
    length: int | None = None
    for line in block.split(b"\r\n"):
        match = HEADER_FIELD.fullmatch(line)
        if match is None:
            raise BadFrame(f"not a header line: {_show(line)}")
        name, value = match.group(1).lower(), match.group(2)
        if name == b"content-length":
            if not value.isdigit() or len(value) > 12:
                raise BadFrame(f"Content-Length is not a number: {_show(value)}")
            if length is not None and int(value) != length:
                raise BadFrame("two different Content-Length headers")
            length = int(value)
        elif name == b"content-type":
            charset = re.search(rb"charset[ \t]*=[ \t]*\"?([^;\" \t]+)", value, re.IGNORECASE)
            if charset and charset.group(1).decode("ascii", "replace").lower() not in UTF8_CHARSETS:
                raise BadFrame(f"unsupported charset {_show(charset.group(1))}: only UTF-8")
    if length is None:
        raise BadFrame("a header block without Content-Length")
    if length > MAX_BODY_BYTES:
        raise BadFrame(f"Content-Length {length} is over the limit of {MAX_BODY_BYTES} bytes")
    return length


def _show(raw: bytes, limit: int = 40) -> str:
    text = raw[:limit].decode("utf-8", "replace")
    return repr(text) + ("..." if len(raw) > limit else "")


def _next_header(buf: bytes | bytearray, start: int = 0, end: int | None = None) -> int | None:
    match = HEADER_LINE.search(buf, start, len(buf) if end is None else end)
    return match.start() if match else None


def _whole_json(raw: bytes) -> Any | None:
    """The value of `raw` when it is already one whole JSON object or array, else None."""
    stripped = raw.rstrip(WHITESPACE)
    if not stripped.endswith((b"}", b"]")):
        return None
    try:
        return decode_body(stripped)
    except BadFrame:
        return None


@dataclass
class FrameParser:
    """Feed it bytes as they come; `events` gives what they make so far."""

    buffer: bytearray = field(default_factory=bytearray)
    body_length: int | None = None  # set while a body is being read
    resyncing: bool = False  # skipping to the next header after a reported error

    def feed(self, data: bytes) -> None:
        self.buffer += data

    @property
    def pending(self) -> bool:
        """Some bytes wait for more: only then is a pause in the input worth a look."""
        return bool(self.buffer.strip(WHITESPACE)) or self.body_length is not None

    def events(self, idle: bool = False) -> list[Event]:
        out: list[Event] = []
        while (event := self._step(idle)) is not None:
            out.append(event)
        return out

    def finish(self) -> list[Event]:
        """At end of input: what is left is reported, once."""
        out = self.events(idle=True)
        unfinished = self.buffer.strip(WHITESPACE) or self.body_length is not None
        if unfinished and not self.resyncing:
            out.append(Malformed("the input ended inside a frame"))
        self.buffer.clear()
        self.body_length = None
        return out

    def _step(self, idle: bool) -> Event | None:
        """One event, or None when more bytes are needed. Every path that returns an event
        consumes bytes or changes state, so the loop in `events` ends."""
        while True:
            if self.resyncing and not self._resync():
                return None
            if self.body_length is not None:
                return self._body(idle)
            event = self._headers(idle)
            if event is not None or self.body_length is None:
                return event

    def _resync(self) -> bool:
        at = _next_header(self.buffer)
        if at is None:
            # Keep a tail that may be the start of a header line still arriving.
            del self.buffer[: max(0, len(self.buffer) - HEADER_LINE_BYTES)]
            return False
        del self.buffer[:at]
        self.resyncing = False
        return True

    def _fail(self, reason: str) -> Malformed:
        self.resyncing = True
        return Malformed(reason)

    def _headers(self, idle: bool) -> Event | None:
        buf = self.buffer
        skip = len(buf) - len(buf.lstrip(WHITESPACE))  # blank lines between frames are harmless
        del buf[:skip]
        if not buf:
            return None
        end = buf.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                del buf[:1]
                return self._fail(f"no header block in {MAX_HEADER_BYTES} bytes")
            if idle and not PARTIAL_HEADERS.fullmatch(buf):
                reason = f"expected a Content-Length header, got {_show(bytes(buf))}"
                later = _next_header(buf, 1)
                del buf[: later if later is not None else 1]
                return self._fail(reason)
            return None
        try:
            self.body_length = parse_header_block(bytes(buf[:end]))
        except BadFrame as exc:
            del buf[:1]  # resynchronise past this block's start
            return self._fail(str(exc))
        del buf[: end + 4]
        return None

    def _body(self, idle: bool) -> Event | None:
        assert self.body_length is not None
        n, buf = self.body_length, self.buffer
        complete = len(buf) >= n
        if not (complete or idle):
            return None  # a body still arriving is looked into only when the input pauses
        raw = bytes(buf[:n])
        error = None
        if complete:
            try:
                return self._read(n, Body(decode_body(raw)))
            except BadFrame as exc:
                error = str(exc)
        # The next frame's header starting inside this body: the declared length was too
        # long. The header line may run past the body's end, so it is looked for in all the
        # buffer, and waited for while it may still be arriving.
        cut = _next_header(buf, 0, n + HEADER_LINE_BYTES)
        if cut is not None and cut < n:
            try:
                return self._read(cut, Body(decode_body(raw[:cut].strip(WHITESPACE))))
            except BadFrame as exc:
                return self._read(cut, Malformed(f"a frame cut short by the next header: {exc}"))
        if error is not None:
            # The body's bytes stay: the next header may begin inside them, its line still
            # arriving (a body of "C" then "ontent-Length: ..."), and resynchronising finds it.
            self.body_length = None
            return self._fail(error)
        if idle and (value := _whole_json(raw)) is not None:
            # A whole object, and the declared length not reached: only whitespace could
            # follow in a valid frame, so the object is read now.
            return self._read(len(raw), Body(value))
        return None

    def _read(self, n: int, event: Event | None) -> Event | None:
        """Consume the n bytes that made `event`; the next bytes are a header."""
        del self.buffer[:n]
        self.body_length = None
        return event
