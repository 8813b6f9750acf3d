"""Request bodies of the OpenAI-compatible endpoints, the fields they refuse, and OpenAI's error
shape.

The bodies accept what the official `openai` client and the common tools send. A field whose
meaning this server cannot honour (tools, JSON output, penalties) is refused with a
400 that names it, never ignored: a client that asked for JSON must not get prose back as if
it were JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .rest import MAX_TOKENS_LIMIT

MAX_CHOICES = 8  # `n`: each choice is a whole generation on one CPU model
MAX_STOPS = 16
MAX_STOP_CHARS = 256  # the stream holds back and rescans up to this much text per token
MAX_EMBEDDING_INPUTS = 256
DEFAULT_CHAT_MAX_TOKENS = 256
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions

ERROR_TYPES = {401: "authentication_error", 404: "invalid_request_error",
               429: "rate_limit_error", 499: "cancelled"}


class OpenAIError(Exception):
    """An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.param, self.code, self.headers)


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(BaseModel):
    """OpenAI's error shape, as every error on the OpenAI paths comes."""

    error: OpenAIErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody, "description": what}
    for status, what in ((400, "A parameter this server refuses, or a bad value"),
                         (401, "Missing or wrong bearer token"),
                         (404, "A model other than the served one (--strict-model)"),
                         (413, "The body is over --max-body"),
                         (422, "The body does not match the schema"),
                         (429, "The model's queue is full (Retry-After)"))
}


def unsupported(param: str, what: str, hint: str = "") -> OpenAIError:
    return OpenAIError(400, f"{param}: {what} is not supported by this server{hint}", param,
                       "unsupported_parameter")


# --- pieces of bodies ----------------------------------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    url: str = Field(description="A data: URL (base64); the server fetches nothing.")
    detail: str | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(
        description="`developer` is rendered as `system`; `tool` as a user turn that "
                    "quotes the tool's result.")
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    def images(self) -> list[str]:
        if not isinstance(self.content, list):
            return []
        return [p.image_url.url for p in self.content if isinstance(p, ImagePart)]

    def for_template(self) -> dict[str, str]:
        """The message as the chat template takes it: the roles every template knows."""
        if self.role == "developer":
            return {"role": "system", "content": self.text()}
        if self.role == "tool":
            call = f" (call {self.tool_call_id})" if self.tool_call_id else ""
            return {"role": "user", "content": f"Tool result{call}:\n{self.text()}"}
        return {"role": self.role, "content": self.text()}


class StreamOptions(BaseModel):
    include_usage: bool = False


class ResponseFormat(BaseModel, extra="allow"):
    type: str


# --- bodies --------------------------------------------------------------------------------


class SamplingFields(BaseModel):
    """What both completion endpoints take."""

    model: str | None = Field(None, description="Any name runs the served model, unless the "
                              "server was started with --strict-model.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 (the default) is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=MAX_CHOICES, description="How many choices to generate.")
    stop: str | list[str] | None = Field(None, description="Up to 16 stop strings.")
    seed: int | None = Field(None, ge=-(2**63), lt=2**64,
                             description="The same seed gives the same sampled text.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = None

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOPS:
            raise OpenAIError(400, f"stop: at most {MAX_STOPS} stop strings, got {len(stops)}",
                              "stop")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise OpenAIError(400, f"stop: a stop string has at most {MAX_STOP_CHARS} "
                              "characters", "stop")
        return stops

    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def refuse_unsupported(self) -> None:
        for param in ("presence_penalty", "frequency_penalty"):
            if getattr(self, param):
                raise unsupported(param, "a non-zero penalty")
        if self.logit_bias:
            raise unsupported("logit_bias", "a logit bias")
        if self.stream_options is not None and not self.stream:
            raise OpenAIError(400, "stream_options: only allowed with stream: true",
                              "stream_options")


class CompletionBody(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token ids are not taken).")
    max_tokens: int = Field(DEFAULT_COMPLETION_MAX_TOKENS, ge=1, le=MAX_TOKENS_LIMIT)
    logprobs: int | None = Field(None, ge=0, le=5, description="Log probabilities of the "
                                 "tokens and of this many likeliest alternatives (no stream).")
    echo: bool = False
    suffix: str | None = Field(None, description="Text after the insertion point: the "
                               "completion fills in between prompt and suffix (ghost text's "
                               "pipeline, in the model's own FIM format; one prompt, n=1).")
    best_of: int | None = None

    def prompts(self) -> list[str]:
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise OpenAIError(400, "prompt: give a text or a non-empty list of texts; token "
                              "ids are not taken", "prompt")
        return [p for p in prompts if isinstance(p, str)]

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.logprobs is not None and self.stream:
            raise unsupported("logprobs", "logprobs in a stream")
        if self.echo:
            raise unsupported("echo", "echoing the prompt")
        if self.suffix:
            if len(self.prompts()) != 1 or self.n != 1:
                raise OpenAIError(400, "suffix: fill-in-the-middle takes one prompt and n=1",
                                  "suffix")
            if self.logprobs is not None:
                raise unsupported("logprobs", "logprobs with a suffix")
        if self.best_of not in (None, 1):
            raise unsupported("best_of", "best_of above 1")


class ChatBody(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT,
                                   description="Superseded by max_completion_tokens.")
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT,
                                              description="Wins over max_tokens; default 256.")
    logprobs: bool | None = Field(None, description="Log probabilities of the answer's "
                                  "tokens (no stream).")
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    def logprobs_count(self) -> int | None:
        """None: no logprobs; else how many alternatives to give per token."""
        return (self.top_logprobs or 0) if self.logprobs else None

    def token_budget(self) -> int:
        for budget in (self.max_completion_tokens, self.max_tokens):
            if budget is not None:
                return budget
        return DEFAULT_CHAT_MAX_TOKENS

    def refuse_unsupported(self) -> None:
        super().refuse_unsupported()
        if self.top_logprobs is not None and not self.logprobs:
            raise OpenAIError(400, "top_logprobs: needs logprobs: true", "top_logprobs")
        if self.logprobs and self.stream:
            raise unsupported("logprobs", "logprobs in a stream")
        if self.logprobs and any(m.images() for m in self.messages):
            raise unsupported("logprobs", "logprobs with an image")
        if self.response_format is not None and self.response_format.type != "text":
            raise unsupported("response_format", f"the type {self.response_format.type!r}",
                              " (only 'text')")
        if self.tools or self.functions:
            raise unsupported("tools" if self.tools else "functions", "tool calling")
        for param in ("tool_choice", "function_call"):
            if getattr(self, param) not in (None, "none"):
                raise unsupported(param, "tool calling")


class EmbeddingBody(BaseModel):
    model: str | None = None
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A text or a list of texts (token ids are not taken).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    def texts(self) -> list[str]:
        texts = [self.input] if isinstance(self.input, str) else self.input
        if not texts or not all(isinstance(t, str) for t in texts):
            raise OpenAIError(400, "input: give a text or a non-empty list of texts; token "
                              "ids are not taken", "input")
        if len(texts) > MAX_EMBEDDING_INPUTS:
            raise OpenAIError(400, f"input: at most {MAX_EMBEDDING_INPUTS} texts per request, "
                              f"got {len(texts)}", "input")
        if any(not t for t in texts if isinstance(t, str)):
            raise OpenAIError(400, "input: an empty text has no embedding", "input")
        return [t for t in texts if isinstance(t, str)]
