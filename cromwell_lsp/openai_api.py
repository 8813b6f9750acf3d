"""The OpenAI-compatible door of the HTTP server: `/v1/models`, `/v1/models/{id}`,
`/v1/completions`, `/v1/chat/completions` and `/v1/embeddings`, as the official `openai`
client and the tools built on it (Continue, Open WebUI, aider) call them.

Every generation runs on the server's model worker like the other endpoints. Errors on these
paths come in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, validation
errors included. Browsers may call these paths from pages served on localhost (CORS).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import StreamingResponse

from engine.runtime.generate import stream_text
from engine.runtime.scoring import continuation_logprobs

from . import domain
from .json_bodies import StrictJSONRoute
from .model_service import ModelService, QueueFull
from .openai_schema import (
    ERROR_RESPONSES,
    ChatBody,
    CompletionBody,
    EmbeddingBody,
    OpenAIError,
    SamplingFields,
    error_response,
)
from .rest import RETRY_AFTER_S, until_done

OPENAI_PATHS = ("/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings")
# Pages served from this machine (a local Open WebUI, a notebook) may call the OpenAI paths.
LOCAL_ORIGINS = r"http://(localhost|127\.0\.0\.1)(:\d+)?"


def is_openai_path(path: str) -> bool:
    return path in OPENAI_PATHS or path.startswith("/v1/models/")


# --- errors in OpenAI's shape and CORS -----------------------------------------------------


# Steps of a pydantic location that name a branch of a union, not a field: `str`,
# `list[str]`, `function-after[...]`.
UNION_BRANCHES = frozenset({"str", "int", "float", "bool", "dict"})


def _most_specific(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Of a union's errors (one per branch), the one that got deepest into the value: for a
    list of parts with an unknown part type, the unknown tag rather than "not a string"."""
    return max(errors, key=lambda e: len(e.get("loc", ())), default={})


def _validation_message(error: dict[str, Any]) -> tuple[str, str | None]:
    """A pydantic error as (message, param): `messages.0.role: Input should be ...`."""
    where = [str(part) for part in error.get("loc", ())
             if part != "body" and str(part) not in UNION_BRANCHES and "[" not in str(part)]
    param = ".".join(where) or None
    message = error.get("msg", "invalid value")
    if error.get("type") == "json_invalid":
        message = f"{message}: {error.get('ctx', {}).get('error', 'not JSON')}"
        param = None
    return (f"{param}: {message}" if param else message), param


class OpenAIRoute(StrictJSONRoute):
    """A route whose every error, a body that fails validation included, is answered in
    OpenAI's error shape (the official client reads `error.message` from it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except OpenAIError as exc:
                return exc.response()
            except RequestValidationError as exc:
                error = _most_specific(list(exc.errors()))
                message, param = _validation_message(error)
                return error_response(422, message, param, error.get("type"))
            except HTTPException as exc:
                return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

        return openai_handler


class OpenAIErrorShape:
    """ASGI middleware for what answers before the routes do (the bearer token, the body
    limit, an unknown method): on the OpenAI paths, a JSON error body without an `error`
    object gets one, `{"detail": ...}` kept beside it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_openai_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        parts: list[bytes] = []

        async def reshape(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held until the body is known
                return
            if start is None:
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _with_error_object(start["status"], b"".join(parts))
            headers = [(k, v) for k, v in start.get("headers", [])
                       if k.lower() != b"content-length"]
            length = (b"content-length", str(len(body)).encode())
            await send({**start, "headers": [*headers, length]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, reshape)


def _with_error_object(status: int, body: bytes) -> bytes:
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        value = {"detail": body.decode("utf-8", "replace")}
    if not isinstance(value, dict) or isinstance(value.get("error"), dict):
        return body
    message = value.get("detail") or f"HTTP {status}"
    error = json.loads(error_response(status, str(message)).body)
    return json.dumps({**error, **value}).encode()


class LocalhostCORS:
    """CORS for pages on localhost origins, on the OpenAI paths only: Cromwell's own
    endpoints (which can write files) stay closed to browsers. It sits outside the bearer
    token check: a browser's preflight never carries the token, and a refusal must still
    carry the CORS headers for the page to read it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origin_regex=LOCAL_ORIGINS,
                                   allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["*"])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_openai_path(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def outer(app: Any) -> Any:
    """The layers the OpenAI door puts around the whole guarded app (see rest.serve)."""
    return LocalhostCORS(OpenAIErrorShape(app))


# --- generation ----------------------------------------------------------------------------


@dataclass
class Choice:
    index: int
    text: str = ""
    tokens: int = 0
    finish_reason: str = "stop"
    logprobs: dict[str, Any] | None = None  # in the endpoint's own format


@dataclass
class Plan:
    """What one request generates: the prompts (each run `n` times; `render` makes them
    with the model, whose chat template a chat needs) and how."""

    render: Callable[[Any], list[str]]
    n: int
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stops: list[str]
    image: Any = None  # a PIL image from a data: URL, for a model that takes images
    logprobs: int | None = None  # None: none; else alternatives per token (0 to 20)
    chat: bool = False  # the format logprobs come in
    prompt_tokens: int = 0
    choices: list[Choice] = field(default_factory=list)

    def usage(self) -> dict[str, int]:
        completion = sum(c.tokens for c in self.choices)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}


class CountedTokens:
    """Token ids passed through, counted; `exhausted` tells a stream that ran to its end
    (a stop token or the token budget) from one a stop string closed early."""

    def __init__(self, tokens: Iterator[int]) -> None:
        self.tokens, self.exhausted = tokens, False
        self.ids: list[int] = []

    @property
    def count(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[int]:
        try:
            for token in self.tokens:
                self.ids.append(token)
                yield token
            self.exhausted = True
        finally:
            close = getattr(self.tokens, "close", None)
            if close is not None:
                close()


def generate_choices(model: Any, plan: Plan, cancel: threading.Event,
                     on_event: Callable[[str, Choice, str], None]) -> None:
    """Run every choice of `plan` in turn on `model`, reporting ("start" | "piece" | "end",
    choice, text) as they go. Choice `p * n + i` is prompt p's i-th sample; with a seed,
    sample i uses seed + i, so the n choices differ and each repeats with the seed."""
    if plan.image is not None and not model.takes_images:
        raise OpenAIError(400, f"messages: an image_url part needs a model that takes images; "
                          f"{model.path.name} is text-only", "messages")
    def decode(ids: list[int]) -> str:
        return str(model.tokenizer.decode(ids, skip_special=True))

    texts = plan.render(model)
    for text in texts:  # by bytes first: tokenizing megabytes takes seconds
        domain.check_prompt_size(model, text)
    prompts = [model.tokenizer.encode(p, add_special=True) for p in texts]
    for ids in prompts:  # refused before the first choice starts, so before a stream does
        if len(ids) >= model.n_ctx:
            raise OpenAIError(400, f"the prompt has {len(ids)} tokens; the context holds "
                              f"{model.n_ctx}", "messages" if len(prompts) == 1 else "prompt")
        plan.prompt_tokens += len(ids)
    for p, ids in enumerate(prompts):
        for i in range(plan.n):
            if cancel.is_set():
                return
            choice = Choice(index=p * plan.n + i)
            plan.choices.append(choice)
            if plan.n > 1 or (plan.seed is not None and plan.temperature > 0):
                # A prompt's last token rerun after a reused prefix takes the decode path, a
                # fresh prompt the prefill path; their logits differ in the last bits, enough
                # to change a sampled token or a near tie of a greedy one. The n choices of a
                # prompt, and a seed's sample, must not depend on what ran before: start afresh.
                model.decoder.cache.rollback(0)
            on_event("start", choice, "")
            counted = CountedTokens(model.stream_tokens(
                ids, max_tokens=plan.max_tokens, temperature=plan.temperature,
                top_p=plan.top_p, seed=None if plan.seed is None else (plan.seed + i) % 2**64,
                cancel=cancel, image=plan.image))
            for piece in stream_text(decode, counted, plan.stops):
                choice.text += piece
                on_event("piece", choice, piece)
            choice.tokens = counted.count
            ran_out = counted.exhausted and counted.count >= plan.max_tokens
            choice.finish_reason = "length" if ran_out else "stop"
            if plan.logprobs is not None:
                choice.logprobs = choice_logprobs(model, ids, counted.ids, choice.text, plan,
                                                  len(texts[p]))
            on_event("end", choice, "")


def choice_logprobs(model: Any, prompt: list[int], generated: list[int], text: str,
                    plan: Plan, prompt_chars: int) -> dict[str, Any]:
    """The logprobs of the tokens that make `text` (a stop string may have cut the last
    ones off), in the chat format or the completions one (whose text offsets count from the
    prompt's start, as OpenAI's do)."""
    def spelled(token: int) -> str:
        return str(model.tokenizer.decode([token], skip_special=False))

    kept = len(generated)
    while kept and len(model.tokenizer.decode(generated[:kept], skip_special=True)) > len(text):
        kept -= 1
    scores = continuation_logprobs(model.decoder, prompt, generated[:kept], plan.logprobs or 0)
    if plan.chat:
        def entry(token: int, logprob: float) -> dict[str, Any]:
            piece = spelled(token)
            return {"token": piece, "logprob": logprob, "bytes": list(piece.encode("utf-8"))}

        return {"content": [{**entry(s.token, s.logprob),
                             "top_logprobs": [entry(t, lp) for t, lp in s.top]}
                            for s in scores], "refusal": None}
    pieces = [spelled(s.token) for s in scores]
    offsets = np.cumsum([prompt_chars, *(len(p) for p in pieces[:-1])]) if pieces else []
    return {"tokens": pieces, "token_logprobs": [s.logprob for s in scores],
            "top_logprobs": [{spelled(t): lp for t, lp in s.top} for s in scores],
            "text_offset": [int(o) for o in offsets]}


def image_from_data_url(url: str) -> Any:
    """A PIL image from a `data:image/...;base64,` URL; the server fetches nothing."""
    from PIL import Image, UnidentifiedImageError

    head, _, data = url.partition(",")
    if not (head.startswith("data:image/") and head.endswith(";base64")):
        raise OpenAIError(400, "image_url: only data:image/...;base64 URLs are read (this "
                          "server fetches nothing)", "messages")
    try:
        picture = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        picture.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
        raise OpenAIError(400, f"image_url: not an image Cromwell can read ({exc})",
                          "messages") from exc
    return picture.convert("RGB")


def chat_image(body: ChatBody) -> Any:
    urls = [url for m in body.messages for url in m.images()]
    if len(urls) > 1:
        raise OpenAIError(400, f"messages: at most one image per request, got {len(urls)}",
                          "messages")
    return image_from_data_url(urls[0]) if urls else None


def embedding_payload(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # little-endian float32, as the official client decodes it
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(v) for v in vector]


# --- the endpoints -------------------------------------------------------------------------


def register(app: FastAPI, service: ModelService, strict_model: bool = False) -> None:
    """Add the OpenAI-compatible endpoints to `app`, generating on `service`. With
    `strict_model`, a request naming any model but the served one is a 404; without it every
    name is an alias of the served model."""
    router = APIRouter(route_class=OpenAIRoute, responses=ERROR_RESPONSES)

    def model_card() -> dict[str, Any]:
        return {"id": service.model_id(), "object": "model", "created": 0,
                "owned_by": "cromwell"}

    def check_model(name: str | None) -> None:
        if strict_model and name not in (None, "", service.model_id()):
            raise OpenAIError(404, f"the model {name!r} does not exist: this server runs "
                              f"{service.model_id()!r} (GET /v1/models)", "model",
                              "model_not_found")

    async def run(job: Callable[[Any, threading.Event], Any], cancel: threading.Event,
                  then: Callable[[], None] | None = None) -> asyncio.Future[Any]:
        """Start `job(model, cancel)` on the worker, or answer 429 when its queue is full.
        A job its client cancelled is counted; `then` runs after it, in the worker."""

        def counted(model: Any) -> Any:
            try:
                return job(model, cancel)
            finally:
                if cancel.is_set():
                    service.cancelled += 1
                if then is not None:
                    then()

        try:
            service.admit()
        except QueueFull as exc:
            raise OpenAIError(429, f"{exc}: retry later", code="rate_limit_exceeded",
                              headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        return asyncio.ensure_future(service.submit(counted))

    async def finished(request: Request, task: asyncio.Future[Any],
                       cancel: threading.Event) -> Any:
        """The job's result; a client that goes away meanwhile cancels it."""
        try:
            return await until_done(request, task, cancel)
        except ValueError as exc:  # a prompt over the context, a template that refuses
            raise OpenAIError(400, str(exc)) from exc

    async def complete(request: Request, body: SamplingFields, plan: Plan, chat: bool) -> Any:
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        head = {"id": ident, "object": "chat.completion" if chat else "text_completion",
                "created": created, "model": service.model_id()}
        cancel = threading.Event()

        if not body.stream:
            task = await run(lambda model, c: generate_choices(
                model, plan, c, lambda *_: None), cancel)
            await finished(request, task, cancel)
            choices = [_choice_json(c, chat) for c in plan.choices]
            return {**head, "choices": choices, "usage": plan.usage()}

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def on_event(kind: str, choice: Choice, text: str) -> None:
            chunk = _chunk(kind, choice, text, chat)
            if chunk is not None:
                loop.call_soon_threadsafe(queue.put_nowait, chunk)

        def job(model: Any, c: threading.Event) -> None:
            generate_choices(model, plan, c, on_event)

        task = await run(job, cancel,
                         then=lambda: loop.call_soon_threadsafe(queue.put_nowait, None))
        # Until the first event the answer can still be an error status (a prompt over the
        # context, an image for a text-only model) rather than an error inside a stream.
        first = await queue.get()
        if first is None:
            await finished(request, task, cancel)
        chunk_head = {**head, "object": "chat.completion.chunk" if chat else "text_completion"}

        async def events() -> AsyncIterator[str]:
            try:
                chunk = first
                while chunk is not None:
                    yield f"data: {json.dumps({**chunk_head, 'choices': [chunk]})}\n\n"
                    chunk = await queue.get()
                try:
                    if first is not None:  # else it was awaited before the stream began
                        await finished(request, task, cancel)
                except OpenAIError as exc:  # the stream has begun: the error goes in it
                    error = {"message": exc.message, "type": "invalid_request_error",
                             "param": exc.param, "code": exc.code}
                    yield f"data: {json.dumps({'error': error})}\n\n"
                    return
                if body.include_usage():
                    last = {**chunk_head, "choices": [], "usage": plan.usage()}
                    yield f"data: {json.dumps(last)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                cancel.set()  # the client went away (or we are done): stop generating

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def fill_in(request: Request, body: CompletionBody, prefix: str, suffix: str) -> Any:
        """A completion with a suffix: the ghost-text pipeline fills in between (the same as
        /infill and the editors' ghost text), greedy; one choice, streamed as one chunk."""
        cancel = threading.Event()
        task = await run(lambda model, c: domain.infill(
            model, prefix, suffix, max_tokens=body.max_tokens, cancel=c), cancel)
        try:
            s = await finished(request, task, cancel)
        except domain.Cancelled as exc:
            raise OpenAIError(499, "cancelled: the client went away") from exc
        reason = "length" if s.generated_tokens >= body.max_tokens else "stop"
        choice = {"index": 0, "text": s.text, "logprobs": None, "finish_reason": reason}
        usage = {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.generated_tokens,
                 "total_tokens": s.prompt_tokens + s.generated_tokens}
        head = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion",
                "created": int(time.time()), "model": service.model_id()}
        if not body.stream:
            return {**head, "choices": [choice], "usage": usage}

        async def events() -> AsyncIterator[str]:
            yield f"data: {json.dumps({**head, 'choices': [choice]})}\n\n"
            if body.include_usage():
                yield f"data: {json.dumps({**head, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @router.get("/v1/models", summary="The model this server runs (OpenAI format)")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card()]}

    @router.get("/v1/models/{model:path}", summary="One model (any name is an alias of the "
             "served model unless the server is strict)")
    async def model_info(model: str) -> dict[str, Any]:
        check_model(model)
        return model_card()

    @router.post("/v1/completions", summary="OpenAI-compatible text completion (SSE with stream)")
    async def completions(body: CompletionBody, request: Request) -> Any:
        check_model(body.model)
        body.refuse_unsupported()
        prompts = body.prompts()
        if body.suffix:
            return await fill_in(request, body, prompts[0], body.suffix)
        plan = Plan(lambda model: prompts, body.n, body.max_tokens, body.temperature, body.top_p,
                    body.seed, body.stops(), logprobs=body.logprobs)
        return await complete(request, body, plan, chat=False)

    @router.post("/v1/chat/completions", summary="OpenAI-compatible chat (SSE with stream)")
    async def chat_completions(body: ChatBody, request: Request) -> Any:
        check_model(body.model)
        body.refuse_unsupported()
        messages = [m.for_template() for m in body.messages]
        image = chat_image(body)

        def render(model: Any) -> list[str]:
            return [model.apply_chat_template(messages, add_generation_prompt=True)]

        plan = Plan(render, body.n, body.token_budget(), body.temperature, body.top_p,
                    body.seed, body.stops(), image, logprobs=body.logprobs_count(), chat=True)
        return await complete(request, body, plan, chat=True)

    @router.post("/v1/embeddings", summary="Embeddings: the mean of the model's final hidden "
              "states over the input's tokens, L2-normalised")
    async def embeddings(body: EmbeddingBody, request: Request) -> dict[str, Any]:
        check_model(body.model)
        texts = body.texts()

        def job(model: Any, cancel: threading.Event) -> tuple[list[np.ndarray], int]:
            vectors, tokens = [], 0
            for text in texts:
                if cancel.is_set():
                    break
                domain.check_prompt_size(model, text, "an input text")
                pooled = model.embed(text)
                vectors.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
                tokens += len(model.tokenizer.encode(text, add_special=True))
            return vectors, tokens

        cancel = threading.Event()
        vectors, tokens = await finished(request, await run(job, cancel), cancel)
        if body.dimensions is not None and vectors and body.dimensions != len(vectors[0]):
            raise OpenAIError(400, f"dimensions: this model's embeddings have "
                              f"{len(vectors[0])} dimensions; it cannot give {body.dimensions}",
                              "dimensions")
        data = [{"object": "embedding", "index": i,
                 "embedding": embedding_payload(v, body.encoding_format)}
                for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": service.model_id(),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    app.include_router(router)


def _choice_json(choice: Choice, chat: bool) -> dict[str, Any]:
    if chat:
        return {"index": choice.index, "message": {"role": "assistant", "content": choice.text},
                "logprobs": choice.logprobs, "finish_reason": choice.finish_reason}
    return {"index": choice.index, "text": choice.text, "logprobs": choice.logprobs,
            "finish_reason": choice.finish_reason}


def _chunk(kind: str, choice: Choice, text: str, chat: bool) -> dict[str, Any] | None:
    """The stream chunk's choice for an event: a chat choice opens with its role and closes
    with its finish reason and an empty delta, as OpenAI's stream does."""
    if kind == "start":
        if not chat:
            return None
        return {"index": choice.index, "delta": {"role": "assistant", "content": ""},
                "logprobs": None, "finish_reason": None}
    reason = choice.finish_reason if kind == "end" else None
    if chat:
        delta = {"content": text} if kind == "piece" else {}
        return {"index": choice.index, "delta": delta, "logprobs": None, "finish_reason": reason}
    return {"index": choice.index, "text": text, "logprobs": None, "finish_reason": reason}

