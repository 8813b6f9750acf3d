"""The OpenAI-compatible endpoints driven by the official `openai` client against a started
`cromwell serve`: what the client and the tools built on it send is answered in OpenAI's
shapes, or refused with a 4xx in OpenAI's error shape that names the parameter."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from doors_helpers import Server, make_root
from PIL import Image

MAX = 6  # generated tokens per request: CPU time in tests is shared and scarce
SERVED = "cromwell-default"
ASK = [{"role": "system", "content": "Answer briefly."},
       {"role": "user", "content": "Name three prime numbers."}]


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(make_root(tmp_path_factory.mktemp("strict")), "--strict-model")
    yield srv
    srv.stop()


def chat(client: openai.OpenAI, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
    kwargs.setdefault("max_tokens", MAX)
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kwargs)


def answer(client: openai.OpenAI, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    """The greedy answer. Asked with n=2: the server runs each of several choices from a fresh
    cache, so the answer cannot depend on the prompt prefix an earlier request left there."""
    choices = chat(client, messages, n=2, **kwargs).choices
    assert choices[0].message.content == choices[1].message.content
    return choices[0].message.content


# --- models and aliases --------------------------------------------------------------------


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    listed = client.models.list()
    assert [m.id for m in listed.data] == [SERVED]
    assert client.models.retrieve(SERVED).id == SERVED
    # Any name is an alias of the served model: tools that ask for theirs get it.
    assert client.models.retrieve("gpt-4o-mini").id == SERVED
    assert client.models.retrieve("org/some-model:latest").id == SERVED


def test_any_model_name_runs_the_served_model(client: openai.OpenAI) -> None:
    response = chat(client, ASK, max_tokens=2)
    assert response.model == SERVED and response.object == "chat.completion"
    assert client.completions.create(model="davinci-002", prompt="def f(", max_tokens=1).model \
        == SERVED


def test_strict_server_refuses_other_model_names(strict_server: Server) -> None:
    with openai.OpenAI(base_url=strict_server.url + "/v1", api_key="x", max_retries=0) as c:
        assert c.models.retrieve(SERVED).id == SERVED
        with pytest.raises(openai.NotFoundError) as missing:
            c.models.retrieve("gpt-4o")
        assert missing.value.code == "model_not_found" and "gpt-4o" in missing.value.message
        with pytest.raises(openai.NotFoundError) as refused:
            c.chat.completions.create(model="gpt-4o", messages=ASK, max_tokens=1)
        assert refused.value.param == "model"
        with pytest.raises(openai.NotFoundError):
            c.embeddings.create(model="text-embedding-3-small", input="x")
        ok = c.chat.completions.create(model=SERVED, messages=ASK, max_tokens=1)
        assert ok.choices[0].message.role == "assistant"


# --- messages ------------------------------------------------------------------------------


def test_content_parts_are_read_as_the_plain_text(client: openai.OpenAI) -> None:
    parts = [{"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
             {"role": "user", "content": [{"type": "text", "text": "Name three prime"},
                                          {"type": "text", "text": "numbers."}]}]
    joined = [ASK[0], {"role": "user", "content": "Name three prime\nnumbers."}]
    assert answer(client, parts) == answer(client, joined)  # greedy: the same prompt


def test_developer_role_is_the_system_role(client: openai.OpenAI) -> None:
    as_developer = [{"role": "developer", "content": "Answer briefly."}, ASK[1]]
    assert answer(client, as_developer) == answer(client, ASK)


def test_tool_results_are_rendered_as_a_user_turn(client: openai.OpenAI) -> None:
    history = [ASK[0], {"role": "user", "content": "What is 6 times 7? Use the calculator."},
               {"role": "assistant", "content": "Calling the calculator."}]
    with_tool = [*history, {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    spelled = [*history, {"role": "user", "content": "Tool result (call call_1):\n42"}]
    assert answer(client, with_tool) == answer(client, spelled)


def test_an_image_part_goes_to_a_model_that_takes_images(client: openai.OpenAI) -> None:
    picture = Image.new("RGB", (64, 32), "white")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    content = [{"type": "text", "text": "Write the code in this screenshot."},
               {"type": "image_url", "image_url": {"url": url}}]
    response = chat(client, [{"role": "user", "content": content}], max_tokens=2)
    assert response.choices[0].message.role == "assistant"
    remote = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    with pytest.raises(openai.BadRequestError, match="fetches nothing"):
        chat(client, [{"role": "user", "content": remote}])
    with pytest.raises(openai.BadRequestError, match="at most one image"):
        chat(client, [{"role": "user", "content": [content[1], content[1]]}])
    broken = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    with pytest.raises(openai.BadRequestError, match="not an image"):
        chat(client, [{"role": "user", "content": broken}])


# --- generation parameters -----------------------------------------------------------------


def test_max_completion_tokens_wins_over_max_tokens(client: openai.OpenAI) -> None:
    response = chat(client, ASK, max_tokens=50, max_completion_tokens=2)
    assert response.usage.completion_tokens == 2
    assert response.choices[0].finish_reason == "length"
    assert chat(client, ASK, max_tokens=3).usage.completion_tokens == 3


def test_n_choices_greedy_are_equal(client: openai.OpenAI) -> None:
    response = chat(client, ASK, n=3, temperature=0)
    assert [c.index for c in response.choices] == [0, 1, 2]
    texts = {c.message.content for c in response.choices}
    assert len(texts) == 1 and texts.pop()
    assert response.usage.completion_tokens == 3 * MAX


def test_seed_repeats_a_sampled_text(client: openai.OpenAI) -> None:
    def sample(seed: int) -> list[str]:
        out = client.completions.create(model="x", prompt="Once upon a time", max_tokens=12,
                                        temperature=1.2, seed=seed, n=2)
        return [c.text for c in out.choices]

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first
    assert first[0] != first[1]  # the n samples of one request differ


def test_stop_as_a_string_and_as_a_list(client: openai.OpenAI) -> None:
    full = answer(client, ASK, max_tokens=12)
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = full[: full.find(stop)]
    for given in (stop, [stop, "never-appears"]):
        response = chat(client, ASK, max_tokens=12, stop=given, n=2)
        assert response.choices[0].message.content == expected
        assert response.choices[0].finish_reason == "stop"


def test_completions_take_a_list_of_prompts(client: openai.OpenAI) -> None:
    response = client.completions.create(model="x", prompt=["def add(a, b):", "import"],
                                         max_tokens=3, n=2)
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    assert response.choices[0].text == response.choices[1].text
    alone = client.completions.create(model="x", prompt="import", max_tokens=3, n=2)
    assert response.choices[2].text == alone.choices[0].text


def test_chat_logprobs(client: openai.OpenAI) -> None:
    response = chat(client, ASK, logprobs=True, top_logprobs=3)
    message, logprobs = response.choices[0].message, response.choices[0].logprobs.content
    assert "".join(t.token for t in logprobs) == message.content
    for token in logprobs:
        assert token.logprob <= 0 and bytes(token.bytes).decode() == token.token
        assert len(token.top_logprobs) == 3
        # Greedy: the chosen token is the likeliest, with the same log probability.
        assert token.top_logprobs[0].token == token.token
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob)
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob
    plain = chat(client, ASK, logprobs=True).choices[0].logprobs.content
    assert [t.token for t in plain] == [t.token for t in logprobs]
    assert all(t.top_logprobs == [] for t in plain)
    assert chat(client, ASK).choices[0].logprobs is None
    with pytest.raises(openai.BadRequestError, match="needs logprobs"):
        chat(client, ASK, top_logprobs=2)


def test_completion_logprobs_cover_the_text_before_a_stop(client: openai.OpenAI) -> None:
    prompt = "def add(a, b):"  # n=2: each choice from a fresh cache (see answer())
    full = client.completions.create(model="x", prompt=prompt, max_tokens=8, n=2).choices[0].text
    stop = full.strip()[-2:]
    choice = client.completions.create(model="x", prompt=prompt, max_tokens=8, logprobs=2,
                                       stop=[stop], n=2).choices[0]
    logprobs = choice.logprobs
    assert choice.text == full[: full.find(stop)]
    # The tokens wholly inside the text: a stop string may end inside the last one.
    covered = "".join(logprobs.tokens)
    assert covered and choice.text.startswith(covered) and len(logprobs.tokens) < 8
    assert logprobs.text_offset[0] == len(prompt)
    assert all(b - a == len(t) for a, b, t in zip(logprobs.text_offset,
                                                   logprobs.text_offset[1:], logprobs.tokens,
                                                   strict=False))
    for token, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs,
                                   logprobs.top_logprobs, strict=True):
        assert len(top) == 2 and top[token] == pytest.approx(logprob) == max(top.values())


# --- streaming -----------------------------------------------------------------------------


def test_chat_stream_with_usage_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = chat(client, ASK, n=2)
    chunks = list(chat(client, ASK, n=2, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    *body, last = chunks
    assert last.choices == [] and last.usage is not None
    assert last.usage.model_dump() == plain.usage.model_dump()
    assert all(c.usage is None for c in body)
    for index in (0, 1):
        mine = [c.choices[0] for c in body if c.choices[0].index == index]
        assert mine[0].delta.role == "assistant"
        assert "".join(c.delta.content or "" for c in mine) == plain.choices[index].message.content
        assert mine[-1].finish_reason == plain.choices[index].finish_reason


def test_completion_stream_without_usage(client: openai.OpenAI) -> None:
    ask = {"model": "x", "prompt": "def fibonacci(n):", "max_tokens": MAX, "n": 2}
    plain = client.completions.create(**ask)
    chunks = list(client.completions.create(**ask, stream=True))
    assert all(c.usage is None for c in chunks)
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices[0].index == index]
        assert "".join(c.text for c in mine) == plain.choices[index].text
        assert mine[-1].finish_reason == "length"


# --- refused, by name ----------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "param"), [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
     "response_format"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"logprobs": True, "stream": True}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"logit_bias": {"42": 5}}, "logit_bias"),
])
def test_unsupported_parameters_are_refused_not_ignored(client: openai.OpenAI,
                                                        extra: dict[str, Any],
                                                        param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        chat(client, ASK, **extra)
    error = refused.value
    assert error.status_code == 400 and error.param == param
    assert error.code == "unsupported_parameter" and "not supported" in error.message


def test_text_response_format_and_no_tools_are_accepted(client: openai.OpenAI) -> None:
    response = chat(client, ASK, max_tokens=1, response_format={"type": "text"},
                    tool_choice="none")
    assert response.choices[0].message.role == "assistant"


def test_completions_refuse_what_they_cannot_do(client: openai.OpenAI) -> None:
    for extra in ({"logprobs": 2, "stream": True}, {"echo": True}, {"best_of": 3},
                  {"prompt": [1, 2, 3]}, {"suffix": "x", "n": 2},
                  {"suffix": "x", "prompt": ["a", "b"]}, {"suffix": "x", "logprobs": 1}):
        kwargs = {"model": "x", "prompt": "def", "max_tokens": 1, **extra}
        with pytest.raises(openai.BadRequestError):
            client.completions.create(**kwargs)


def test_a_suffix_fills_in_the_middle(client: openai.OpenAI) -> None:
    kwargs = {"model": "x", "prompt": "def area(w, h):\n    return ", "max_tokens": 6,
              "suffix": "\n\nprint(area(2, 3))\n"}
    done = client.completions.create(**kwargs)
    (choice,) = done.choices
    assert isinstance(choice.text, str) and "<fim" not in choice.text
    assert choice.finish_reason in ("stop", "length")
    assert 0 < done.usage.completion_tokens <= 6 or choice.text == ""
    streamed = client.completions.create(**kwargs, stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == choice.text
    assert chunks[-1].usage is not None


# --- embeddings ----------------------------------------------------------------------------


def test_embeddings_float_and_base64(client: openai.OpenAI, server: Server) -> None:
    texts = ["def add(a, b): return a + b", "The weather in Paris is mild in spring."]
    # The official client asks for base64 and decodes it; ask for floats over raw HTTP.
    decoded = client.embeddings.create(model="text-embedding-3-small", input=texts)
    with server.client() as http:
        floats = http.post("/v1/embeddings", json={"input": texts,
                                                   "encoding_format": "float"}).json()
    assert decoded.model == SERVED and [d.index for d in decoded.data] == [0, 1]
    for mine, theirs in zip(decoded.data, floats["data"], strict=True):
        assert isinstance(theirs["embedding"], list)
        np.testing.assert_array_equal(np.asarray(mine.embedding, np.float32),
                                      np.asarray(theirs["embedding"], np.float32))
    a, b = (np.asarray(d.embedding) for d in decoded.data)
    assert a.shape == b.shape and a.size > 100
    assert abs(np.linalg.norm(a) - 1) < 1e-5  # L2-normalised
    assert float(a @ b) < 0.999  # different texts, different vectors
    single = client.embeddings.create(model="x", input=texts[0])
    np.testing.assert_allclose(single.data[0].embedding, decoded.data[0].embedding, atol=1e-6)
    assert decoded.usage.prompt_tokens == decoded.usage.total_tokens > 0


def test_embeddings_refuse_token_ids_empty_text_and_other_sizes(client: openai.OpenAI) -> None:
    for kwargs in ({"input": [101, 102]}, {"input": [[101, 102]]}, {"input": ""},
                   {"input": "x", "dimensions": 3}):
        with pytest.raises(openai.BadRequestError) as refused:
            client.embeddings.create(model="x", **kwargs)
        assert refused.value.param in ("input", "dimensions")


def test_oversized_prompts_are_refused_by_their_bytes(strict_server: Server) -> None:
    huge = "x" * 300_000  # over the bytes bound of the default model's 8,192-token context
    with openai.OpenAI(base_url=strict_server.url + "/v1", api_key="x", max_retries=0) as c:
        with pytest.raises(openai.BadRequestError, match="over the limit of"):
            c.embeddings.create(model=SERVED, input=huge)
        with pytest.raises(openai.BadRequestError, match="over the limit of"):
            c.completions.create(model=SERVED, prompt=huge, max_tokens=1)
        with pytest.raises(openai.BadRequestError, match="over the limit of"):
            c.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": huge}])


# --- errors in OpenAI's shape, CORS ----------------------------------------------------------


@pytest.mark.parametrize(("path", "content", "status", "param"), [
    ("/v1/chat/completions", b'{"messages": []}', 422, "messages"),
    ("/v1/chat/completions", b'{"messages": [{"role": "robot", "content": "x"}]}', 422,
     "messages.0.role"),
    ("/v1/completions", b'{"prompt": "x", "max_tokens": 0}', 422, "max_tokens"),
    ("/v1/completions", b'{"prompt": ', 422, None),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}], "n": 99}', 422,
     "n"),
    ("/v1/embeddings", b'{"input": "x", "encoding_format": "int8"}', 422, "encoding_format"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": [{"type": "audio"}]}]}',
     422, "messages.0.content.0"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "x"}], "seed": -1e99}',
     422, "seed"),
    ("/v1/completions", b'{"prompt": "x", "max_tokens": 1, "stream_options": '
     b'{"include_usage": true}}', 400, "stream_options"),
    ("/v1/completions", b'{"prompt": "x", "stop": ["' + b"s" * 257 + b'"]}', 400, "stop"),
])
def test_errors_come_in_openai_shape(server: Server, path: str, content: bytes, status: int,
                                     param: str | None) -> None:
    with server.client() as http:
        response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_refusals_before_the_routes_come_in_openai_shape_too(server: Server,
                                                             tmp_path: Path) -> None:
    with server.client() as http:
        too_big = http.post("/v1/embeddings", json={"input": "x" * 200_000})
        wrong_method = http.get("/v1/chat/completions")
        own_path = http.post("/v1/edit", content=b"x" * 200_000)
    assert too_big.status_code == 413 and "over 100000 bytes" in too_big.json()["error"]["message"]
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["message"]
    assert "error" not in own_path.json()  # Cromwell's own paths keep their shape
    srv = Server(make_root(tmp_path / "root"), token="s3cret-token")
    try:
        with (openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0) as c,
              pytest.raises(openai.AuthenticationError, match="bearer token")):
            c.models.list()
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="s3cret-token", max_retries=0) as c:
            assert c.models.list().data[0].id == SERVED
        # A browser's preflight carries no token: it is answered, the request itself is not.
        preflight = httpx.options(srv.url + "/v1/models", headers={
            "Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200
        refused = httpx.get(srv.url + "/v1/models", headers={"Origin": "http://localhost:3000"})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert httpx.get(srv.url + "/health").status_code == 401
    finally:
        srv.stop()


def test_cors_for_localhost_origins_on_the_openai_paths_only(server: Server) -> None:
    def preflight(origin: str, path: str = "/v1/chat/completions") -> httpx.Response:
        return httpx.options(server.url + path, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})

    for origin in ("http://localhost:3000", "http://127.0.0.1:8080", "http://localhost"):
        allowed = preflight(origin)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] \
            == origin
    for origin in ("http://example.com", "https://localhost.example.com:3000",
                   "http://localhost.evil:80"):
        assert "access-control-allow-origin" not in preflight(origin).headers
    assert "access-control-allow-origin" not in preflight("http://localhost:3000",
                                                          "/v1/edit").headers
    models = httpx.get(server.url + "/v1/models", headers={"Origin": "http://localhost:5173"})
    assert models.headers["access-control-allow-origin"] == "http://localhost:5173"


# --- NaN and Infinity in any body (RFC 8259 has neither), lone surrogates -----------------


@pytest.mark.parametrize(("path", "content"), [
    ("/v1/chat/completions",
     b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}'),
    ("/v1/completions", b'{"prompt": "x", "temperature": Infinity}'),
    ("/v1/completions", b'{"prompt": "x", "top_p": -Infinity}'),
    ("/v1/completions", b'{"prompt": "x", "stop": ["a", NaN]}'),
    ("/v1/embeddings", b'{"input": "x", "dimensions": NaN}'),
])
def test_nan_and_infinity_on_the_openai_paths(server: Server, path: str, content: bytes) -> None:
    with server.client() as http:
        response = http.post(path, content=content, headers={"content-type": "application/json"})
        assert http.get("/health").status_code == 200
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "not valid JSON" in message and "NaN or Infinity" in message


@pytest.mark.parametrize(("path", "content"), [
    ("/v1/edit", b'{"path": "m.py", "instruction": "x", "max_tokens": NaN}'),
    ("/v1/complete", b'{"path": "m.py", "line": Infinity, "column": 0}'),
    ("/v1/context", b'{"path": "m.py", "lines": [1, -Infinity]}'),
])
def test_nan_and_infinity_on_cromwells_own_paths(server: Server, path: str,
                                                 content: bytes) -> None:
    with server.client() as http:
        response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "NaN or Infinity" in response.json()["detail"]


@pytest.mark.parametrize(("path", "content"), [
    ("/v1/embeddings", b'{"input": "x\\ud800"}'),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\\udc00"}]}'),
    ("/v1/complete", b'{"path": "m.py", "line": 0, "column": 0, "text": "\\ud800"}'),
])
def test_lone_surrogates_are_refused(server: Server, path: str, content: bytes) -> None:
    with server.client() as http:
        response = http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "lone surrogate" in response.text


def test_the_schema_lists_the_openai_paths(server: Server) -> None:
    with server.client() as http:
        paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/models", "/v1/models/{model}", "/v1/completions", "/v1/chat/completions",
                 "/v1/embeddings"):
        assert path in paths

