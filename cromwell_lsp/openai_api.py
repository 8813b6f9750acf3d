"""The OpenAI-compatible door of the HTTP server: `/v1/models`, `/v1/completions` and
`/v1/chat/completions`, run on the server's model worker like every other endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from .rest import DISCONNECT_POLL_S, MAX_TOKENS_LIMIT, RETRY_AFTER_S, ModelWorker, QueueFull

# --- request bodies ------------------------------------------------------------------------


class CompletionBody(BaseModel):
    model: str | None = None
    prompt: str
    max_tokens: int = Field(16, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    stop: str | list[str] | None = None
    stream: bool = False


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatBody(BaseModel):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    stop: str | list[str] | None = None
    stream: bool = False


# --- the endpoints -------------------------------------------------------------------------


def register(app: FastAPI, worker: ModelWorker) -> None:
    """Add the OpenAI-compatible endpoints to `app`, generating on `worker`."""

    def _busy() -> JSONResponse:
        return JSONResponse({"detail": f"the model is busy ({worker.pending} requests queued):"
                             " retry later"}, status_code=429,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    def _check_model(name: str | None) -> None:
        if name not in (None, "", worker.model_id(), "default"):
            raise HTTPException(404, f"unknown model {name!r}: GET /v1/models lists "
                                f"{worker.model_id()!r}")

    @app.get("/v1/models", summary="The model this server runs (OpenAI format)")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": worker.model_id(), "object": "model",
                                            "created": 0, "owned_by": "cromwell"}]}

    def _stops(stop: str | list[str] | None) -> list[str] | None:
        return [stop] if isinstance(stop, str) else stop

    async def _openai(request: Request, prompt_of: Callable[[Any], str], max_tokens: int,
                      temperature: float, stop: list[str] | None, stream: bool,
                      chat: bool) -> Any:
        try:
            worker.admit()
        except QueueFull:
            return _busy()
        ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        counts = {"prompt": 0, "completion": 0}

        def job(model: Any) -> str:
            prompt = prompt_of(model)
            counts["prompt"] = len(model.tokenizer.encode(prompt))
            pieces = []
            try:
                for piece in model.stream(prompt, max_tokens=max_tokens,
                                          temperature=temperature, stop=stop, cancel=cancel):
                    pieces.append(piece)
                    if stream:
                        loop.call_soon_threadsafe(queue.put_nowait, piece)
            finally:
                counts["completion"] = len(pieces)
                if cancel.is_set():
                    worker.cancelled += 1
                if stream:
                    loop.call_soon_threadsafe(queue.put_nowait, None)
            return "".join(pieces)

        def finish() -> str:
            return "length" if counts["completion"] >= max_tokens else "stop"

        def usage() -> dict[str, int]:
            return {"prompt_tokens": counts["prompt"], "completion_tokens": counts["completion"],
                    "total_tokens": counts["prompt"] + counts["completion"]}

        def choice(text: str, done: bool) -> dict[str, Any]:
            reason = finish() if done else None
            if chat:
                key = "delta" if stream else "message"
                content = {"role": "assistant", "content": text} if not stream or text else {}
                return {"index": 0, key: content, "finish_reason": reason}
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": reason}

        task = asyncio.ensure_future(worker.run(job))
        if not stream:
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
                if not done and await request.is_disconnected():
                    cancel.set()
            text = _result(task)
            return {"id": ident, "object": obj, "created": created, "model": worker.model_id(),
                    "choices": [choice(text, True)], "usage": usage()}

        chunk_obj = "chat.completion.chunk" if chat else "text_completion"

        async def events() -> AsyncIterator[str]:
            try:
                while (piece := await queue.get()) is not None:
                    chunk = {"id": ident, "object": chunk_obj, "created": created,
                             "model": worker.model_id(), "choices": [choice(piece, False)]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                try:
                    await task
                except Exception as exc:  # the stream has begun: the error goes in it
                    yield f"data: {json.dumps({'error': {'message': str(exc)}})}\n\n"
                    return
                last = {"id": ident, "object": chunk_obj, "created": created,
                        "model": worker.model_id(), "choices": [choice("", True)],
                        "usage": usage()}
                yield f"data: {json.dumps(last)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                cancel.set()  # the client went away (or we are done): stop generating

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    def _result(task: asyncio.Future[Any]) -> Any:
        try:
            return task.result()
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.post("/v1/completions", summary="OpenAI-compatible text completion (SSE with stream)")
    async def completions(body: CompletionBody, request: Request) -> Any:
        _check_model(body.model)
        return await _openai(request, lambda model: body.prompt, body.max_tokens,
                             body.temperature, _stops(body.stop), body.stream, chat=False)

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat (SSE with stream)")
    async def chat_completions(body: ChatBody, request: Request) -> Any:
        _check_model(body.model)
        messages = [m.model_dump() for m in body.messages]
        return await _openai(
            request,
            lambda model: model.apply_chat_template(messages, add_generation_prompt=True),
            body.max_tokens, body.temperature, _stops(body.stop), body.stream, chat=True)
