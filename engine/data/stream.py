"""Streaming, sharded, seeded, resumable example streams, in pure Python (no torch).

A stream turns a sequence of items (corpus files, or just indices for synthetic data) into
examples with a `make(item, rng)` function. Everything an example depends on is fixed by the
seed, the epoch and the item's index: the epoch's order is a seeded shuffle, and each item gets
its own `random.Random` seeded from (seed, epoch, item index). So:

- sharding is a partition of positions: rank r of w takes the epoch's positions r, r+w, ...
  (its "local" positions 0, 1, 2, ...), and worker k of n takes the local positions k, k+n, ...
  The union over ranks is the whole epoch, and a rank's examples do not depend on how many
  workers produce them;
- resuming is recomputation: the state is (epoch, local position, examples already taken from
  that position's item); `load_state_dict` puts the stream back exactly there.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Shard:
    """Which part of the stream this process produces: `rank` of `world_size` training
    processes, `worker_id` of that rank's `num_workers` data workers."""

    rank: int = 0
    world_size: int = 1
    worker_id: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")
        if not 0 <= self.worker_id < self.num_workers:
            raise ValueError(f"worker_id must be in [0, {self.num_workers}), got {self.worker_id}")


def derive_seed(*parts: Any) -> int:
    """A 64-bit seed from any printable parts; the same on every machine and Python build
    (unlike `hash()`, which is salted per process for strings)."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


@dataclass(frozen=True)
class Chunk(Generic[Out]):
    """The examples of one item: `position` is rank-local, `skip` how many of the item's
    examples were dropped from the front because a resumed state had already taken them."""

    epoch: int
    position: int
    examples: list[Out]
    skip: int = 0


class ExampleStream(Generic[Item, Out]):
    """Examples made from `items` by `make`, sharded by `shard`; `epochs=None` repeats forever.

    `make` must be picklable (a module-level function or an instance of a module-level class)
    when the stream is used by the multi-process loader.
    """

    def __init__(
        self,
        items: Sequence[Item],
        make: Callable[[Item, random.Random], list[Out]],
        seed: int = 0,
        shard: Shard | None = None,
        epochs: int | None = 1,
        shuffle: bool = True,
    ) -> None:
        if len(items) == 0:
            raise ValueError("a stream needs at least one item")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None (forever), got {epochs}")
        if shard is not None and len(items) < shard.world_size:
            raise ValueError(f"{len(items)} items cannot feed {shard.world_size} ranks")
        self.items = items
        self.make = make
        self.seed = seed
        self.shard = shard or Shard()
        self.epochs = epochs
        self.shuffle = shuffle
        self._epoch = 0
        self._position = 0
        self._offset = 0  # examples of the item at _position already handed out
        self._order_cache: tuple[int, Sequence[int]] | None = None

    # -- order and positions -------------------------------------------------------------

    def _order(self, epoch: int) -> Sequence[int]:
        if not self.shuffle:
            return range(len(self.items))
        if self._order_cache is None or self._order_cache[0] != epoch:
            order = list(range(len(self.items)))
            random.Random(derive_seed(self.seed, "order", epoch)).shuffle(order)
            self._order_cache = (epoch, order)
        return self._order_cache[1]

    def local_length(self) -> int:
        """How many positions this rank has per epoch (all workers together)."""
        return len(range(self.shard.rank, len(self.items), self.shard.world_size))

    def with_shard(self, shard: Shard) -> ExampleStream[Item, Out]:
        """The same stream (same state) for another shard; what the loader gives each worker."""
        other = ExampleStream(self.items, self.make, self.seed, shard, self.epochs, self.shuffle)
        other.load_state_dict(self.state_dict())
        return other

    # -- state ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "position": self._position, "offset": self._offset,
                "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("seed", self.seed) != self.seed:
            raise ValueError(f"state is for seed {state['seed']}, this stream has {self.seed}")
        for key in ("epoch", "position", "offset"):
            if not isinstance(state.get(key), int) or state[key] < 0:
                raise ValueError(f"state needs a non-negative integer {key!r}, got {state}")
        self._epoch, self._position, self._offset = (
            state["epoch"], state["position"], state["offset"])

    # -- iteration ------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk[Out]]:
        """This worker's chunks from the current state on, in order. Does not move the state;
        `__iter__` (and the loader) do."""
        epoch, start, offset = self._epoch, self._position, self._offset
        s = self.shard
        while self.epochs is None or epoch < self.epochs:
            order = self._order(epoch)
            local = range(s.rank, len(order), s.world_size)
            first = start + (s.worker_id - start) % s.num_workers
            for position in range(first, len(local), s.num_workers):
                index = order[local[position]]
                rng = random.Random(derive_seed(self.seed, "item", epoch, index))
                examples = list(self.make(self.items[index], rng))
                skip = offset if position == start else 0
                yield Chunk(epoch, position, examples[skip:], skip)
            epoch, start, offset = epoch + 1, 0, 0

    def __iter__(self) -> Iterator[Out]:
        for chunk in self.chunks():
            for k, example in enumerate(chunk.examples):
                self._epoch, self._position = chunk.epoch, chunk.position
                self._offset = chunk.skip + k + 1
                yield example
