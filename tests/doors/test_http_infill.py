"""`POST /infill` in llama.cpp's request shape (what llama.vim, Tabby and Continue send),
through real HTTP requests to `cromwell serve`."""

from __future__ import annotations

from doors_helpers import Server

PREFIX = "def area(width, height):\n    "
SUFFIX = "\n\n\nprint(area(2, 3))\n"


def infill(server: Server, **body: object) -> dict:
    with server.client() as http:
        done = http.post("/infill", json=body)
    assert done.status_code == 200, done.text
    return done.json()


def test_infill_answers_in_llama_cpps_shape(server: Server) -> None:
    out = infill(server, input_prefix=PREFIX, input_suffix=SUFFIX, n_predict=8,
                 input_extra=[{"filename": "util.py", "text": "def twice(x):\n    return 2 * x\n"}],
                 cache_prompt=True, samplers=["top_k"], n_indent=4)
    assert isinstance(out["content"], str)
    assert "<fim" not in out["content"]
    assert out["tokens_evaluated"] > 0 and out["tokens_predicted"] <= 8
    assert set(out["timings"]) >= {"prompt_n", "prompt_ms", "predicted_n", "predicted_ms"}


def test_the_same_infill_again_comes_from_the_cache(server: Server) -> None:
    first = infill(server, input_prefix="x = [1, 2, 3]\ny = ", input_suffix="\n", n_predict=6)
    again = infill(server, input_prefix="x = [1, 2, 3]\ny = ", input_suffix="\n", n_predict=6)
    assert again["content"] == first["content"]
    assert again["source"] == "cache" and again["tokens_predicted"] == 0


def test_nothing_around_the_cursor_is_an_empty_answer(server: Server) -> None:
    out = infill(server)
    assert out["content"] == "" and out["tokens_predicted"] == 0


def test_infill_prompt_joins_the_prefix(server: Server) -> None:
    out = infill(server, input_prefix="import os\n", prompt="os.pa", input_suffix="", n_predict=4)
    assert out["tokens_evaluated"] > 0


def test_bad_infill_bodies_are_4xx(server: Server) -> None:
    with server.client() as http:
        assert http.post("/infill", json={"n_predict": 0}).status_code == 422
        assert http.post("/infill", json={"input_extra": "nope"}).status_code == 422
        streamed = http.post("/infill", json={"input_prefix": "x", "stream": True})
        assert streamed.status_code == 400 and "stream" in streamed.text
        over = http.post("/infill", json={"input_prefix": "x" * 200_000})
        assert over.status_code == 413  # over the server's body limit


def test_a_huge_line_is_cut_to_the_prefix_window(server: Server) -> None:
    out = infill(server, input_prefix="x" * 90_000, n_predict=2)
    assert 0 < out["tokens_evaluated"] <= 2048 + 16
