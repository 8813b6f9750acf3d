"""The engine client on the real default model: lazy load off the event loop, streaming,
and a stop flag that ends generation between two tokens. Skipped until the runtime exists."""

from __future__ import annotations

import asyncio
import threading

import pytest
from lsp_helpers import needs_model

from cromwell_lsp.engine_client import EngineClient, ModelUnavailable

pytestmark = needs_model


def test_loads_once_streams_and_stops_on_the_flag():
    async def scenario() -> None:
        client = EngineClient()
        model = await client.model(None, None)
        assert await client.model(None, None) is model  # loaded once
        prompt = model.apply_chat_template([{"role": "user", "content": "Count to fifty."}])
        pieces: list[str] = []
        full = await client.generate(
            model, prompt, max_tokens=8, temperature=0.0, on_piece=lambda p, n: pieces.append(p)
        )
        assert full.tokens == len(pieces) <= 8 and full.text == "".join(pieces)
        assert not full.cancelled
        stop = threading.Event()

        def stop_after_two(piece: str, n: int) -> None:
            if n == 2:
                stop.set()

        cut = await client.generate(
            model, prompt, max_tokens=200, temperature=0.0, on_piece=stop_after_two, cancel=stop
        )
        assert cut.cancelled and cut.tokens < 20  # of 200: stopped within a few tokens
        # A stop condition on the text so far ends the generation as complete, at once.
        seen: list[str] = []
        done = await client.generate(
            model,
            prompt,
            max_tokens=200,
            temperature=0.0,
            on_piece=lambda p, n: seen.append(p),
            stop_when=lambda text: len(text) >= 5,
        )
        assert not done.cancelled and len(done.text) >= 5 > len("".join(seen[:-1]))
        client.shutdown()

    asyncio.run(scenario())


def test_a_missing_model_file_says_what_to_do(tmp_path):
    async def scenario() -> None:
        client = EngineClient()
        with pytest.raises(ModelUnavailable, match="modelPath"):
            await client.model(str(tmp_path / "missing.gguf"), None)
        client.shutdown()

    asyncio.run(scenario())
