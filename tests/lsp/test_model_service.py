"""The model service every door shares, on the real default model: one load off the event
loop, streaming, a stop flag that ends generation between two tokens, the bounded queue, the
synchronous doors on the same worker, and background jobs that any other job stops."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from lsp_helpers import needs_model

from cromwell_lsp.model_service import ModelService, QueueFull, load_failure, stream_to_end


@needs_model
def test_loads_once_streams_and_stops_on_the_flag():
    async def scenario() -> None:
        service = ModelService()
        model = await service.model(None, None)
        assert await service.model(None, None) is model  # loaded once
        prompt = model.apply_chat_template([{"role": "user", "content": "Count to fifty."}])
        pieces: list[str] = []
        text, cancelled = await service.run(lambda flag: stream_to_end(
            model, prompt, max_tokens=8, cancel=flag, on_piece=pieces.append))
        assert 0 < len(pieces) <= 8 and text == "".join(pieces) and not cancelled

        def stop_after_two(flag: threading.Event) -> tuple[str, bool]:
            seen: list[str] = []

            def piece(p: str) -> None:
                seen.append(p)
                if len(seen) == 2:
                    flag.set()

            return stream_to_end(model, prompt, max_tokens=200, cancel=flag, on_piece=piece)

        cut, cancelled = await service.run(stop_after_two)
        assert cancelled and len(cut) < len(text) + 40  # of 200 tokens: stopped at once
        # A stop condition on the text so far ends the generation as complete, at once.
        done, cancelled = await service.run(lambda flag: stream_to_end(
            model, prompt, max_tokens=200, cancel=flag, stop_when=lambda t: len(t) >= 5))
        assert not cancelled and 5 <= len(done) < 40
        service.shutdown()

    asyncio.run(scenario())


@needs_model
def test_the_synchronous_door_shares_the_model_and_its_worker():
    """`call` (the API's and the CLI's way in) gets the model the async doors loaded, and
    runs on the same worker thread, never beside it."""

    async def scenario() -> None:
        service = ModelService()
        model = await service.model(None, None)
        async_thread = await service.run(lambda _: threading.get_ident())
        same, sync_thread = await asyncio.to_thread(
            service.call, None, None, lambda m, _: (m is model, threading.get_ident()))
        assert same and sync_thread == async_thread != threading.get_ident()
        service.shutdown()

    asyncio.run(scenario())


def test_the_queue_is_bounded_and_every_place_is_given_back():
    async def scenario() -> None:
        service = ModelService(queue_size=1)  # one running, one waiting
        service.load = lambda path, threads: "model"  # type: ignore[method-assign]
        release = threading.Event()
        service.admit()
        first = asyncio.ensure_future(service.submit(lambda m: release.wait(5) and m))
        service.admit()
        second = asyncio.ensure_future(service.submit(lambda m: m))
        with pytest.raises(QueueFull, match="busy \\(2 requests queued\\)"):
            service.admit()
        release.set()
        assert await first == "model" and await second == "model"
        assert service.pending == 0 and service.served == 2

        def fails(_: object) -> None:
            raise ValueError("bad request")

        service.admit()
        with pytest.raises(ValueError, match="bad request"):
            await service.submit(fails)
        assert service.pending == 0  # a failed job gives its place back too
        service.shutdown()

    asyncio.run(scenario())


def test_a_job_stops_the_background_job_before_it_runs():
    async def scenario() -> None:
        service = ModelService()
        started, stopped = threading.Event(), threading.Event()

        def prefetch(flag: threading.Event) -> None:
            started.set()
            while not flag.is_set():
                time.sleep(0.001)
            stopped.set()

        service.background(prefetch)
        await asyncio.to_thread(started.wait, 5)
        assert await service.run(lambda _: stopped.is_set())  # the prefetch yielded first
        service.shutdown()

    asyncio.run(scenario())


def test_a_missing_model_file_is_named(tmp_path):
    async def scenario() -> None:
        service = ModelService()
        missing = str(tmp_path / "missing.gguf")
        with pytest.raises(FileNotFoundError) as raised:
            await service.model(missing, None)
        assert "model file not found" in load_failure(missing, raised.value)
        assert missing in load_failure(missing, raised.value)
        assert not service.loaded
        service.shutdown()

    asyncio.run(scenario())
