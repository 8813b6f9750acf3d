"""A multi-process data loader: worker processes make the examples (parsing, verifying,
rendering, tokenizing: the CPU-heavy part), the training process receives them in exactly the
order one process would have made them.

Worker k of n runs the stream's shard for worker k (the rank-local positions k, k+n, ...) and
sends one message per position. The main process takes position 0 from worker 0, 1 from
worker 1, ... so the output is the single-process stream, in its order, whatever n is; a
worker that runs out of positions in an epoch says so by sending the next epoch's first chunk.
The loader's state is the stream's state at the last example handed out.

Workers are started with `spawn` (forking a process that holds torch's threads can hang), so,
as for any spawning program, a script that uses the loader runs it under
`if __name__ == "__main__":`.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Iterator
from typing import Any

from .stream import Chunk, ExampleStream, Shard

_DONE = "done"
_ERROR = "error"
_CHUNK = "chunk"


def _worker(stream: ExampleStream, shard: Shard, out: Any) -> None:
    try:
        for chunk in stream.with_shard(shard).chunks():
            out.put((_CHUNK, chunk))
        out.put((_DONE, None))
    except BaseException:  # reported to the training process, which raises it
        out.put((_ERROR, traceback.format_exc()))


class ParallelLoader:
    """Iterate `stream` (for this rank) with `num_workers` processes. `num_workers=0` runs
    in-process (the reference the parallel order is tested against)."""

    def __init__(
        self,
        stream: ExampleStream,
        num_workers: int = 2,
        prefetch: int = 16,
        start_method: str = "spawn",
        timeout: float = 600.0,
    ) -> None:
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if stream.shard.num_workers != 1 or stream.shard.worker_id != 0:
            raise ValueError("give the loader the rank's stream (num_workers=1); it shards it")
        self.stream = stream
        self.num_workers = num_workers
        self.prefetch = prefetch
        # spawn by default: forking a process that holds torch's thread pools can deadlock.
        self.context = mp.get_context(start_method)
        self.timeout = timeout
        self._state = stream.state_dict()

    def state_dict(self) -> dict[str, int]:
        return dict(self._state)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.stream.load_state_dict(state)
        self._state = self.stream.state_dict()

    def __iter__(self) -> Iterator[Any]:
        self.stream.load_state_dict(self._state)
        chunks = self._serial() if self.num_workers == 0 else self._parallel()
        for chunk in chunks:
            for k, example in enumerate(chunk.examples):
                self._state = {**self._state, "epoch": chunk.epoch, "position": chunk.position,
                               "offset": chunk.skip + k + 1}
                yield example

    def _serial(self) -> Iterator[Chunk]:
        yield from self.stream.chunks()

    def _parallel(self) -> Iterator[Chunk]:
        n = self.num_workers
        base = self.stream.shard
        queues = [self.context.Queue(self.prefetch) for _ in range(n)]
        procs = [
            self.context.Process(
                target=_worker,
                args=(self.stream, Shard(base.rank, base.world_size, k, n), queues[k]),
                daemon=True,
            )
            for k in range(n)
        ]
        for proc in procs:
            proc.start()
        pending: list[tuple[str, Any] | None] = [None] * n  # one message read ahead per worker
        try:
            epoch, position = self._state["epoch"], self._state["position"]
            while True:
                k = position % n
                kind, payload = self._message(queues, procs, pending, k)
                if kind == _CHUNK and payload.epoch == epoch and payload.position == position:
                    pending[k] = None
                    yield payload
                    position += 1
                    continue
                if kind == _CHUNK and payload.epoch == epoch:
                    raise RuntimeError(
                        f"data worker {k} sent position {payload.position}, expected {position}")
                if kind == _DONE:
                    # Worker k owns this position and has finished: so has every worker.
                    if all(self._message(queues, procs, pending, j)[0] == _DONE
                           for j in range(n)):
                        return
                    raise RuntimeError("data workers disagree about where the data ends")
                # Worker k's next chunk is of a later epoch: this epoch is over for everyone.
                epoch, position = epoch + 1, 0
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
            for proc in procs:
                proc.join(timeout=5)
            for q in queues:
                q.close()
                q.cancel_join_thread()

    def _message(self, queues, procs, pending, j: int) -> tuple[str, Any]:
        """Worker j's next message, read ahead and kept until it is used."""
        if pending[j] is None:
            pending[j] = self._receive(queues[j], procs[j])
        return pending[j]

    def _receive(self, q: Any, proc: Any) -> tuple[str, Any]:
        waited = 0.0
        while True:
            try:
                kind, payload = q.get(timeout=1.0)
            except queue.Empty:
                waited += 1.0
                if not proc.is_alive():
                    raise RuntimeError(
                        f"data worker exited with code {proc.exitcode} without a message"
                    ) from None
                if waited >= self.timeout:
                    raise TimeoutError(f"no data from a worker for {self.timeout:.0f}s") from None
                continue
            if kind == _ERROR:
                raise RuntimeError(f"data worker failed:\n{payload}")
            return kind, payload
