"""The one place the language server talks to the model engine.

The model loads lazily, once, in a worker thread (the event loop keeps answering while it
loads). Generation runs in a worker thread too and checks a `threading.Event` between two
tokens: `$/cancelRequest` can only cancel the awaiting coroutine, so the coroutine sets the
event on its way out and the worker stops at the next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class ModelUnavailable(RuntimeError):
    """The model could not be loaded; the message says what to do."""


class GenerationFailed(RuntimeError):
    """The engine raised during generation; the message carries its error."""


@dataclass(frozen=True)
class Generated:
    text: str
    tokens: int  # text pieces streamed (one per generated token)
    cancelled: bool


class EngineClient:
    """Owns the loaded model (at most one) and the worker threads that use it."""

    def __init__(self) -> None:
        # One worker: the model is not re-entrant, and a second generation would only slow
        # the first on a CPU whose cores the kernels already use.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cromwell-gen")
        self._load_lock = asyncio.Lock()
        self._model: Any = None
        self._key: tuple[str | None, int | None] | None = None
        # The stop flag of the background job (a prefetch) queued or running, if any: every
        # request the user waits for sets it first, so the worker is theirs within a token.
        self._background: threading.Event | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def model(self, path: str | None, threads: int | None) -> Any:
        """The model for these settings, loading it (off the event loop) when first needed
        or when the settings name another file or thread count."""
        async with self._load_lock:
            if self._model is not None and self._key == (path, threads):
                return self._model
            loop = asyncio.get_running_loop()
            self._model = await loop.run_in_executor(self._executor, _load, path, threads)
            self._key = (path, threads)
            return self._model

    async def generate(
        self,
        model: Any,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str] | None = None,
        stop_when: Callable[[str], bool] | None = None,
        image: str | None = None,
        on_piece: Callable[[str, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Generated:
        """Stream a generation in the worker; `on_piece(piece, n)` runs on the event loop.

        Cancelling the awaiting task sets the stop flag; the worker then stops between two
        tokens and the task re-raises CancelledError. `stop_when(text so far)` ends the
        generation early, as complete (for stop conditions that fixed strings cannot say).
        """
        self._stop_background()
        loop = asyncio.get_running_loop()
        stop_flag = cancel or threading.Event()
        pieces: list[str] = []

        def deliver(piece: str) -> None:
            pieces.append(piece)
            if on_piece is not None:
                on_piece(piece, len(pieces))

        def work() -> bool:
            try:
                stream = model.stream(
                    prompt,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stop=stop,
                    image=image,
                    cancel=stop_flag,
                )
                text = ""
                for piece in stream:
                    loop.call_soon_threadsafe(deliver, piece)
                    if stop_flag.is_set():
                        return True
                    text += piece
                    if stop_when is not None and stop_when(text):
                        getattr(stream, "close", lambda: None)()  # frees the model at once
                        return False
            except Exception as exc:  # the engine's error goes to the client, not the log only
                raise GenerationFailed(f"generation failed: {type(exc).__name__}: {exc}") from exc
            return stop_flag.is_set()

        future = loop.run_in_executor(self._executor, work)
        try:
            cancelled = await future
        except asyncio.CancelledError:
            stop_flag.set()
            raise
        # Let the pieces already queued with call_soon_threadsafe arrive first.
        await asyncio.sleep(0)
        return Generated("".join(pieces), len(pieces), cancelled)

    async def run(
        self, job: Callable[[threading.Event], T], cancel: threading.Event | None = None
    ) -> T:
        """`job(stop_flag)` on the model's worker, ahead of any background job (stopped
        first). Cancelling the awaiting task sets the flag; the job checks it between steps."""
        self._stop_background()
        flag = cancel or threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._executor, job, flag)
        try:
            return await future
        except asyncio.CancelledError:
            flag.set()
            raise

    def background(self, job: Callable[[threading.Event], Any]) -> None:
        """Queue `job(stop_flag)` at low priority: it runs when the worker is free, and any
        later job (background or not) stops it. Its errors are dropped: nobody waits for it."""
        self._stop_background()
        flag = self._background = threading.Event()

        def run() -> None:
            if flag.is_set():
                return
            try:
                job(flag)
            except Exception:  # a failed prefetch costs nothing but the prefetch
                return

        self._executor.submit(run)

    def _stop_background(self) -> None:
        if self._background is not None:
            self._background.set()
            self._background = None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _load(path: str | None, threads: int | None) -> Any:
    try:
        import engine.runtime as rt
    except ImportError as exc:
        raise ModelUnavailable(
            "the Cromwell model runtime (engine.runtime) is not installed in this Python: "
            "reinstall cromwell (`make setup`)"
        ) from exc
    try:
        return rt.load(path, threads=threads)
    except FileNotFoundError as exc:
        raise ModelUnavailable(
            f"model file not found: {path or 'embedded default'} ({exc}); set cromwell.modelPath"
            " to a GGUF file, or null for the embedded model"
        ) from exc
    except Exception as exc:
        raise ModelUnavailable(
            f"could not load the model {path or '(embedded default)'}: {type(exc).__name__}:"
            f" {exc}; set cromwell.modelPath to a Cromwell or llama GGUF file"
        ) from exc
