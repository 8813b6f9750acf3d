"""The model service: the one owner of the loaded model for every door.

The language server, the HTTP server, the command line and the Python API all reach the model
through a `ModelService`. It loads the model (once per file and thread count, off the caller's
event loop), runs every job on its one worker thread (the model is not re-entrant, and a second
generation would only slow the first on cores the kernels already use), keeps a bounded queue
for doors that must refuse work rather than let it wait (HTTP's 429), runs low-priority
background jobs (ghost-text prefetch) that any other job stops, and lets a caller cancel a job
between two tokens through a `threading.Event`.

The model object it holds keeps its KV cache between jobs, so a request that shares a prefix
with the previous one (the next keystroke's ghost text, a second edit of the same file)
reuses it, whichever door the two requests came through.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
ModelKey = tuple[str | None, int | None]  # (model file or None for the default, threads)


class QueueFull(RuntimeError):
    """Every place in the service's queue is taken: the caller answers "busy"."""


class ModelService:
    """Owns the loaded model (at most one: loading another file or thread count frees the
    previous one) and the worker thread that uses it.

    `path` and `threads` are the model a door serves when it does not name one (the HTTP
    server's); `queue_size` bounds `admit()` (None: unbounded)."""

    def __init__(self, path: str | None = None, threads: int | None = None,
                 queue_size: int | None = None) -> None:
        self.path, self.threads = path, threads
        self.capacity = None if queue_size is None else queue_size + 1  # waiting + running
        self.pending = 0
        self.served = 0
        self.cancelled = 0  # jobs stopped early because their caller went away
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cromwell-model")
        self._load_lock = threading.Lock()
        self._model: Any = None
        self._key: ModelKey | None = None
        # The stop flag of the background job (a prefetch) queued or running, if any: every
        # job a caller waits for sets it first, so the worker is theirs within a token.
        self._background: threading.Event | None = None

    # --- the model -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model_id(self) -> str:
        """The name the served model goes by: its file's stem, or cromwell-default."""
        return Path(self.path).stem if self.path else "cromwell-default"

    def load(self, path: str | None, threads: int | None) -> Any:
        """The model for (path, threads), loading it in the calling thread when it is not the
        one held. Thread-safe; doors call it through `model()`/`call()`, on the worker."""
        with self._load_lock:
            if self._model is None or self._key != (path, threads):
                self._model = None  # free the previous model before the next one is read
                self._model, self._key = _load(path, threads), (path, threads)
            return self._model

    async def model(self, path: str | None = None, threads: int | None = None, *,
                    default: bool = False) -> Any:
        """The model, loaded on the worker (the event loop keeps answering meanwhile).
        `default`: the service's own (path, threads)."""
        if default:
            path, threads = self.path, self.threads
        if self._model is not None and self._key == (path, threads):
            return self._model
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.load, path, threads)

    # --- the queue -------------------------------------------------------------------------
    def admit(self) -> None:
        """Take a place in the queue, or raise QueueFull. The job that follows releases it
        (`submit`)."""
        if self.capacity is not None and self.pending >= self.capacity:
            raise QueueFull(f"the model is busy ({self.pending} requests queued)")
        self.pending += 1

    async def submit(self, job: Callable[[Any], T]) -> T:
        """`job(model)` on the worker with the service's own model, after `admit()`; the place
        is released when the job ends, however it ends."""
        self._stop_background()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, lambda: job(self.load(self.path, self.threads)))
        finally:
            self.pending -= 1
            self.served += 1

    # --- jobs ------------------------------------------------------------------------------
    async def run(
        self, job: Callable[[threading.Event], T], cancel: threading.Event | None = None
    ) -> T:
        """`job(stop_flag)` on the worker, ahead of any background job (stopped first).
        Cancelling the awaiting task sets the flag; the job checks it between steps."""
        self._stop_background()
        flag = cancel or threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self._executor, job, flag)
        try:
            return await future
        except asyncio.CancelledError:
            flag.set()
            raise

    def call(self, path: str | None, threads: int | None,
             job: Callable[[Any, threading.Event], T]) -> T:
        """`job(model, stop_flag)` on the worker, waiting for it: the synchronous doors (the
        Python API and the command line) share the worker, so two threads of one program
        never run the model at once. An interrupt while waiting (Ctrl-C) sets the flag, so
        the worker stops at its next token instead of holding the program's exit."""
        self._stop_background()
        flag = threading.Event()
        future = self._executor.submit(lambda: job(self.load(path, threads), flag))
        try:
            return future.result()
        except BaseException:
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


def stream_to_end(
    model: Any,
    prompt: str,
    *,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int | None = None,
    stop: list[str] | None = None,
    image: str | None = None,
    cancel: threading.Event | None = None,
    on_piece: Callable[[str], None] | None = None,
    stop_when: Callable[[str], bool] | None = None,
    task: str | None = None,
) -> tuple[str, bool]:
    """Stream a generation in the calling thread: (text, whether `cancel` cut it short).
    `stop_when(text so far)` ends it early as complete (the prompt's own end condition: a
    dedent after a body, a closed fence). `task` picks the model's weights (Model.stream)."""
    text = ""
    stream = model.stream(prompt, max_tokens=max_tokens, temperature=temperature, seed=seed,
                          stop=stop, image=image, cancel=cancel, task=task)
    for piece in stream:
        text += piece
        if on_piece is not None:
            on_piece(piece)
        if cancel is not None and cancel.is_set():
            break
        if stop_when is not None and stop_when(text):
            getattr(stream, "close", lambda: None)()  # frees the model at once
            break
    return text, cancel is not None and cancel.is_set()


def _load(path: str | None, threads: int | None) -> Any:
    # The engine's own errors (a missing file, a GGUF it cannot read) go to the door as they
    # are: each door says them in its own terms (`load_failure` words them for people).
    import engine.runtime as rt

    return rt.load(path, threads=threads)


def load_failure(path: str | None, exc: BaseException) -> str:
    """A sentence saying why the model at `path` did not load."""
    name = path or "(embedded default)"
    if isinstance(exc, ImportError):
        return ("the Cromwell model runtime (engine.runtime) is not installed in this Python: "
                "reinstall cromwell (`make setup`)")
    if isinstance(exc, FileNotFoundError):
        return f"model file not found: {name} ({exc})"
    return f"could not load the model {name}: {type(exc).__name__}: {exc}"
