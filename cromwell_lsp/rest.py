"""The HTTP server (`cromwell serve`): Cromwell's own endpoints and OpenAI-compatible
completions, over the same domain functions as the language server and the command line.

The model service's one worker thread (model_service.py) runs every generation, in arrival
order; at most `queue_size`
requests wait behind the running one, and a request beyond that is answered 429 with
Retry-After at once rather than left to time out. A client that disconnects sets its
generation's cancel flag, so the worker moves on within one token.

Binding anything but a loopback address requires a bearer token; with a token, every request
(documentation included) must carry it.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import ipaddress
import json
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field

from . import domain
from .apply import FileChanged, apply_patch
from .json_bodies import StrictJSONRoute
from .model_service import ModelService, QueueFull
from .patches import PatchError

RETRY_AFTER_S = 1
MAX_TOKENS_LIMIT = 4096
DISCONNECT_POLL_S = 0.1


class ConfigError(ValueError):
    """The server cannot start with these settings; the message says why."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    root: Path = Path(".")
    model_path: str | None = None
    threads: int | None = None
    queue_size: int = 8
    max_body: int = 10_000_000
    strict_model: bool = False  # OpenAI requests must name the served model

    def check(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ConfigError("the bearer token (--token or CROMWELL_TOKEN) is empty or only "
                              "whitespace: give a real secret, or none on a loopback address")
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"binding {self.host} exposes the server beyond this machine: give a bearer "
                "token with --token or CROMWELL_TOKEN"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the model's jobs --------------------------------------------------------------------


async def until_done(request: Request, task: asyncio.Future[Any], cancel: threading.Event) -> Any:
    """`task`'s result; a client that goes away meanwhile sets `cancel` (the job stops at its
    next token)."""
    while not task.done():
        done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
        if not done and await request.is_disconnected():
            cancel.set()
    return task.result()


# --- request bodies ------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """What every error answer of Cromwell's own endpoints holds."""

    detail: str | list[dict[str, Any]] = Field(
        description="What was wrong: one sentence, or for a body that does not match the "
        "schema (422) the list of its validation errors.")


# Documented on each endpoint, so that the schema covers every answer it gives (a 422 is
# also "no edit": the model's answer was not an edit).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "The request cannot be served as asked (a bad path, position or size)."),
        (409, "The file changed on disk since it was read: nothing was written."),
        (413, "The request body is over the server's limit."),
        (422, "The body does not match the schema, or the answer is not an edit."),
        (429, "The model is busy: retry after Retry-After seconds."),
    )
}


class EditBody(BaseModel):
    path: str = Field(description="File path relative to the server's root.")
    instruction: str = Field(min_length=1, description="What to change.")
    lines: tuple[int, int] | None = Field(None, description="Region A:B, 1-based inclusive.")
    text: str | None = Field(None, description="The file's text (default: read from disk).")
    max_tokens: int = Field(512, ge=1, le=MAX_TOKENS_LIMIT)
    apply: bool = Field(False, description="Write the edit to the file (hash-checked).")


class CompleteBody(BaseModel):
    path: str
    line: int = Field(ge=0, description="0-based line.")
    column: int = Field(ge=0, description="0-based column, in characters.")
    text: str | None = None
    max_tokens: int = Field(64, ge=1, le=MAX_TOKENS_LIMIT)


class InfillChunk(BaseModel):
    filename: str = Field("", max_length=4096)
    text: str


class InfillBody(BaseModel):
    """llama.cpp's /infill request (what llama.vim, Tabby and Continue send); fields this
    server does not use (samplers, n_indent, cache_prompt...) are accepted and ignored."""

    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[InfillChunk] = Field(default_factory=list, max_length=64)
    prompt: str = Field("", description="Text added after input_prefix (the cursor's word).")
    filename: str = Field("untitled", max_length=4096)
    n_predict: int = Field(64, ge=1, le=MAX_TOKENS_LIMIT)
    t_max_predict_ms: int = Field(1000, ge=1, le=600_000)
    stream: bool = False


class ContextBody(BaseModel):
    path: str
    instruction: str = ""
    lines: tuple[int, int] | None = None
    text: str | None = None
    max_tokens: int = Field(512, ge=1, le=MAX_TOKENS_LIMIT)


# --- middleware: auth and body size --------------------------------------------------------


LARGE_BODY = 1_000_000  # bytes: after a request this large, collect its garbage at once


class Guard:
    """ASGI middleware: bearer token (when set) and request body size on every request."""

    def __init__(self, app: Any, token: str | None, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is not None and not bearer_matches(headers.get("authorization", ""),
                                                         self.token):
            await _send_json(send, 401, {"detail": "missing or wrong bearer token"},
                             [(b"www-authenticate", b"Bearer")])
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _send_json(send, 413, {"detail": f"request body over {self.max_body} bytes"})
            return
        if length is not None:
            await self.app(scope, receive, send)
            if int(length) > LARGE_BODY:
                collect_now()
            return
        # No declared length (chunked upload): read the body here, counting, and refuse it
        # as soon as it passes the limit; the app then gets it as one message.
        parts, received, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            parts.append(message.get("body", b""))
            received += len(parts[-1])
            if received > self.max_body:
                await _send_json(send, 413, {"detail": f"request body over {self.max_body} bytes"})
                return
            more = message.get("more_body", False)
        body = b"".join(parts)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
        if len(body) > LARGE_BODY:
            collect_now()


def collect_now() -> None:
    """Free a large request's copies at once. A request refused in the worker leaves its body
    in a reference cycle (the exception's traceback holds the frames that hold the task that
    holds the exception), which only the cyclic collector frees, and it runs by object counts,
    not bytes: each 8 MB request refused that way held about 15 MB more until it did."""
    gc.collect()


def bearer_matches(header: str, token: str) -> bool:
    """Whether an Authorization header carries `token` by the Bearer scheme, whose name is
    case-insensitive (RFC 7235 section 2.1)."""
    scheme, _, credentials = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode("latin-1", "replace"), token.encode("latin-1", "replace"))


async def _send_json(send: Any, status: int, body: Any,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


# --- the app -------------------------------------------------------------------------------


def create_app(config: ServerConfig) -> FastAPI:
    from . import openai_api  # it imports this module's helpers
    config.check()
    root = config.root.resolve()
    models = ModelService(config.model_path, config.threads, config.queue_size)
    workspace = domain.Workspace(root)

    app = FastAPI(title="Cromwell", summary="Local AI code edits: Cromwell's API and "
                  "OpenAI-compatible completions.", version=_own_version())
    app.router.route_class = StrictJSONRoute  # every JSON body refuses NaN and Infinity
    app.state.models = models

    def _source(path: str, text: str | None) -> domain.Source:
        try:
            return domain.load_source(workspace, path, text, confine=True)
        except domain.RequestError as exc:
            raise HTTPException(400, str(exc)) from exc

    async def _call(request: Request, job: Callable[[Any, threading.Event], Any]) -> Any:
        """Run a domain job in the worker; a client that goes away cancels it."""
        try:
            models.admit()
        except QueueFull as exc:
            raise HTTPException(429, f"{exc}: retry later",
                                headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        cancel = threading.Event()
        task = asyncio.ensure_future(models.submit(lambda model: job(model, cancel)))
        try:
            return await until_done(request, task, cancel)
        except domain.Cancelled as exc:
            models.cancelled += 1
            raise HTTPException(499, "cancelled: the client went away") from exc
        except domain.RequestError as exc:
            raise HTTPException(400, str(exc)) from exc
        except FileChanged as exc:
            raise HTTPException(409, str(exc)) from exc
        except PatchError as exc:
            raise HTTPException(422, f"no edit: {exc}") from exc

    @app.get("/health", summary="Liveness, model state and queue length")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model_loaded": models.loaded, "queued": models.pending,
                "served": models.served, "cancelled": models.cancelled, "root": str(root)}

    @app.post("/v1/edit", summary="Propose (and optionally apply) an edit as a unified diff",
              responses=ERROR_RESPONSES)
    async def edit(body: EditBody, request: Request) -> dict[str, Any]:
        source = _source(body.path, body.text)
        if body.apply and body.text is not None:
            raise HTTPException(400, "apply needs the file on disk: leave out text")

        def job(model: Any, cancel: threading.Event) -> dict[str, Any]:
            proposal = domain.propose_edit(model, workspace, source, body.instruction,
                                           body.lines, max_new_tokens=body.max_tokens,
                                           cancel=cancel)
            if body.apply:
                apply_patch(proposal.diff, root, expected={proposal.path: proposal.old_hash}
                            if proposal.old_hash else None)
            return {**proposal.to_json(), "applied": body.apply}

        return await _call(request, job)

    @app.post("/v1/complete", summary="The code to insert at a cursor",
              responses=ERROR_RESPONSES)
    async def complete(body: CompleteBody, request: Request) -> dict[str, Any]:
        source = _source(body.path, body.text)

        def job(model: Any, cancel: threading.Event) -> dict[str, Any]:
            text = domain.complete(model, workspace, source, body.line, body.column,
                                   max_tokens=body.max_tokens, cancel=cancel)
            return {"path": source.relative, "line": body.line, "column": body.column,
                    "text": text}

        return await _call(request, job)

    @app.post("/infill", summary="Fill in the middle at a cursor (llama.cpp's /infill)")
    async def infill(body: InfillBody, request: Request) -> dict[str, Any]:
        if body.stream:
            raise HTTPException(400, "stream: /infill answers in one response; set stream false")
        prefix = body.input_prefix + body.prompt
        extra = [(c.filename or "snippet", c.text) for c in body.input_extra]

        def job(model: Any, cancel: threading.Event) -> dict[str, Any]:
            s = domain.infill(model, prefix, body.input_suffix, extra, path=body.filename,
                              max_tokens=body.n_predict, max_ms=body.t_max_predict_ms,
                              cancel=cancel)
            cached = s.prompt_tokens - s.computed_tokens
            predicted_ms = s.total_ms - s.prefill_ms
            return {
                "content": s.text, "stop": True, "truncated": False,
                "tokens_predicted": s.generated_tokens, "tokens_evaluated": s.prompt_tokens,
                "tokens_cached": cached, "source": s.source,
                "timings": {
                    "prompt_n": s.computed_tokens, "prompt_ms": s.prefill_ms,
                    "predicted_n": s.generated_tokens, "predicted_ms": predicted_ms,
                },
            }

        return await _call(request, job)

    @app.post("/v1/context", summary="What the context manager would send for an edit",
              responses=ERROR_RESPONSES)
    async def context_(body: ContextBody, request: Request) -> dict[str, Any]:
        source = _source(body.path, body.text)

        def job(model: Any, cancel: threading.Event) -> dict[str, Any]:
            return domain.explain_context(model, workspace, source, body.instruction,
                                          body.lines, body.max_tokens)

        return await _call(request, job)

    @app.post("/v1/screenshot", summary="Code for a new file from a screenshot (multipart)",
              responses=ERROR_RESPONSES)
    async def screenshot(
        request: Request,
        image: Annotated[UploadFile, File(description="The screenshot (PNG, JPEG...).")],
        target: Annotated[str | None, Form()] = None,
        max_tokens: Annotated[int, Form(ge=1, le=MAX_TOKENS_LIMIT)] = 512,
        raw: Annotated[bool, Form(description="The code reader's transcript alone, without "
                                  "the model.")] = False,
    ) -> dict[str, Any]:
        suffix = Path(image.filename or "upload.png").suffix.lower() or ".png"
        if suffix not in domain.IMAGE_SUFFIXES:
            suffix = ".png"
        data = await image.read()
        with tempfile.TemporaryDirectory(prefix="cromwell-upload-") as folder:
            picture = Path(folder) / f"upload{suffix}"
            picture.write_bytes(data)
            try:
                domain.check_image(picture)
            except domain.RequestError as exc:
                raise HTTPException(400, f"the upload is not an image Cromwell can read "
                                    f"({image.filename})") from exc

            def job(model: Any, cancel: threading.Event) -> dict[str, Any]:
                made = domain.screenshot_to_code(model, workspace, picture,
                                                 target or "screenshot.py",
                                                 max_new_tokens=max_tokens, cancel=cancel,
                                                 raw=raw)
                return {"path": made.path, "code": made.code, "diff": made.diff,
                        "transcript": made.transcript, "source": made.source}

            return await _call(request, job)

    openai_api.register(app, models, strict_model=config.strict_model)

    return app


def _own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cromwell")
    except PackageNotFoundError:
        return "0"


def serve(config: ServerConfig) -> None:
    """Run the server until interrupted; the model loads before the first request is taken."""
    import sys

    import uvicorn

    from . import openai_api

    app = create_app(config)
    guarded = openai_api.outer(Guard(app, config.token, config.max_body))
    asyncio.run(app.state.models.model(default=True))
    print(f"cromwell: serving {config.root.resolve()} on http://{config.host}:{config.port}"
          f" (docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(guarded, host=config.host, port=config.port, log_level="warning")
