"""The language server's stdio and TCP transports, reading with `lsp_frames` in place of
pygls's reader, so that a bad frame gets an answer and the session goes on.

Every message that cannot be handled is answered, never dropped in silence: a frame that is
not UTF-8 JSON gets a ParseError (-32700, id null), JSON that is not a JSON-RPC message gets
InvalidRequest (-32600). pygls's protocol handles the rest. The process's exit code is the
one `exit` asks for (0 after `shutdown`, 1 without), which pygls's own `start_io` drops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from typing import Any, BinaryIO, Protocol

from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError
from pygls.io_ import StdoutWriter
from pygls.server import JsonRPCServer

from .lsp_frames import Body, FrameParser, Malformed

log = logging.getLogger(__name__)
IDLE_S = 0.05  # a pause in the input this long lets the parser settle a frame early
CHUNK = 65536


class ChunkSource(Protocol):
    async def read(self) -> bytes:
        """The next bytes of input; b"" at its end."""
        ...


class PipeChunks:
    """A blocking binary stream read on a daemon thread (a thread blocked in a read must not
    keep the process from exiting), its chunks handed to the event loop."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, args=(loop,), name="lsp-stdin", daemon=True).start()

    def _read_once(self) -> bytes:
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, AttributeError):
            read1 = getattr(self.stream, "read1", None)
            return read1(CHUNK) if read1 is not None else self.stream.read(CHUNK)
        return os.read(fd, CHUNK)  # the raw descriptor: no buffer lock held at exit

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = self._read_once()
            except OSError:
                data = b""
            try:
                loop.call_soon_threadsafe(self.queue.put_nowait, data)
            except RuntimeError:  # the loop has closed
                return
            if not data:
                return

    async def read(self) -> bytes:
        return await self.queue.get()


class StreamChunks:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def read(self) -> bytes:
        return await self.reader.read(CHUNK)


def _request_id(value: dict[str, Any]) -> int | str | None:
    msg_id = value.get("id")
    return msg_id if isinstance(msg_id, int | str) and not isinstance(msg_id, bool) else None


def message_problem(value: Any) -> str | None:
    """Why a JSON value is not a JSON-RPC 2.0 message, or None when it is one."""
    if isinstance(value, list):
        return "batches are not part of LSP: send one message per frame"
    if not isinstance(value, dict):
        return f"a message is a JSON object, not {type(value).__name__}"
    if value.get("jsonrpc") != "2.0":
        return 'a message needs "jsonrpc": "2.0"'
    if "method" in value:
        if not isinstance(value["method"], str):
            return '"method" must be a string'
        if "id" in value and _request_id(value) is None:
            return '"id" must be an integer or a string'
        return None
    if "id" in value and ("result" in value or "error" in value):
        return None
    return 'a message needs a "method", or an "id" with a "result" or an "error"'


def send_error(protocol: Any, msg_id: int | str | None, error: JsonRpcException) -> None:
    """An error response. Written as a plain object so that an unknown id goes out as
    `"id": null`, as JSON-RPC asks (pygls's typed response leaves a None id out)."""
    answer = {
        "jsonrpc": "2.0",
        "id": msg_id,
        "error": {"code": error.code, "message": error.message},
    }
    protocol._send_data(answer)


def dispatch(protocol: Any, event: Body | Malformed) -> None:
    """Hand one event to pygls's protocol, or answer it ourselves."""
    if isinstance(event, Malformed):
        log.warning("bad frame: %s", event.reason)
        send_error(protocol, None, JsonRpcParseError(f"unreadable frame: {event.reason}"))
        return
    value = event.value
    problem = message_problem(value)
    if problem is not None:
        msg_id = _request_id(value) if isinstance(value, dict) else None
        send_error(protocol, msg_id, JsonRpcInvalidRequest(problem))
        return
    try:
        protocol.handle_message(protocol.structure_message(value))
    except JsonRpcException as exc:
        if "method" in value and "id" in value:
            send_error(protocol, _request_id(value), exc)
    except Exception:
        log.exception("could not handle a message")
        if "method" in value and "id" in value:
            error = JsonRpcException(message="internal error handling this message", code=-32603)
            send_error(protocol, _request_id(value), error)


async def dispatch_all(protocol: Any, events: list[Body | Malformed]) -> None:
    """Dispatch in order, letting the event loop turn after each message: a notification's
    handler task (a configuration change) takes its first step before the next request is
    handled, as it did when pygls read one line per turn of the loop."""
    for event in events:
        dispatch(protocol, event)
        await asyncio.sleep(0)


async def pump(source: ChunkSource, protocol: Any, stop: threading.Event | None = None) -> None:
    """Read frames until the input ends (or `stop` is set) and dispatch each. Unfinished
    bytes get one look when the input pauses; after that only new bytes can change them."""
    parser = FrameParser()
    looked = False
    while stop is None or not stop.is_set():
        wait = IDLE_S if parser.pending and not looked else None
        try:
            chunk = await asyncio.wait_for(source.read(), wait)
        except TimeoutError:
            looked = True
            await dispatch_all(protocol, parser.events(idle=True))
            continue
        if not chunk:
            await dispatch_all(protocol, parser.finish())
            return
        looked = False
        parser.feed(chunk)
        await dispatch_all(protocol, parser.events())


def serve_io(
    server: JsonRPCServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> None:
    """Serve over stdio until the input ends; `exit` raises SystemExit with its code."""
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

    async def main() -> None:
        await pump(PipeChunks(stdin or sys.stdin.buffer), server.protocol, stop)

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("the client has gone (broken pipe)")
        raise SystemExit(1) from None
    finally:
        server.shutdown()


def serve_tcp(server: JsonRPCServer, host: str, port: int) -> None:
    """Serve one client at a time over TCP, as pygls's `start_tcp` does, with our reader."""
    server._stop_event = stop = threading.Event()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.protocol.set_writer(writer)  # type: ignore[arg-type]
        await pump(StreamChunks(reader), server.protocol, stop)
        server.shutdown()

    async def listen() -> None:
        server._server = await asyncio.start_server(connection, host, port)
        async with server._server:
            await server._server.serve_forever()

    try:
        asyncio.run(listen())
    except asyncio.CancelledError:
        log.debug("the TCP server was closed")


def run_server(tcp: bool = False, host: str = "127.0.0.1", port: int = 2087,
               log_file: str | None = None, verbose: bool = False) -> None:
    """Start the language server on stdio (or TCP) until its client is done."""
    from .server import create_server  # the server itself imports this module

    # stdout carries the protocol: logs go to stderr or the log file, never to stdout.
    logging.basicConfig(
        filename=log_file,
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server = create_server()
    if tcp:
        server.start_tcp(host, port)
    else:
        server.start_io()
