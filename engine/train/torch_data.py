"""The thin torch side of the data pipeline, for training only (everything else in
`engine.data.pipeline` runs without torch).

`TorchStream` lets a torch `DataLoader` run an `ExampleStream`, each torch worker taking its
own shard; `to_tensors` turns the pipeline's outputs into tensors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from engine.data.packing import Encoded
from engine.data.stream import ExampleStream, Shard


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]; normalisation is the model's job."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if not image.flags.writeable:  # torch cannot share a read-only buffer
        image = image.copy()
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def to_tensors(example: Any) -> Any:
    """Encoded -> (ids, mask) tensors; anything with an `image` array -> (image tensor,
    example); a (ids, mask) numpy batch -> a tensor pair."""
    if isinstance(example, Encoded):
        return torch.tensor(example.ids, dtype=torch.long), torch.tensor(example.mask,
                                                                          dtype=torch.uint8)
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[0], np.ndarray):
        return torch.from_numpy(example[0]), torch.from_numpy(example[1])
    if hasattr(example, "image"):
        return image_tensor(example.image), example
    raise TypeError(f"no tensor form for {type(example).__name__}")


class TorchStream(IterableDataset):
    """An ExampleStream for torch's DataLoader: each torch worker runs its own shard."""

    def __init__(self, stream: ExampleStream, convert: bool = True) -> None:
        super().__init__()
        self.stream = stream
        self.convert = convert

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        base = self.stream.shard
        shard = Shard(base.rank, base.world_size, info.id if info else 0,
                      info.num_workers if info else 1)
        for example in self.stream.with_shard(shard):
            yield to_tensors(example) if self.convert else example
