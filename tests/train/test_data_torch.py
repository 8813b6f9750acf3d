"""The torch adapter: a torch DataLoader over an ExampleStream, each worker its own shard."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.data.mockups import render_mockup  # noqa: E402
from engine.data.packing import Encoded  # noqa: E402
from engine.data.pipeline import mockup_stream  # noqa: E402
from engine.train.torch_data import TorchStream, image_tensor, to_tensors  # noqa: E402


def test_to_tensors() -> None:
    ids, mask = to_tensors(Encoded([5, 6, 7], [0, 1, 1]))
    assert ids.dtype == torch.long and ids.tolist() == [5, 6, 7] and mask.tolist() == [0, 1, 1]
    shot = render_mockup(random.Random(0))
    image, same = to_tensors(shot)
    assert same is shot and image.shape == (3, *shot.image.shape[:2])
    assert float(image.max()) <= 1.0 and torch.allclose(
        image[:, 0, 0] * 255, torch.tensor(shot.image[0, 0], dtype=torch.float32))
    batch = (np.zeros((2, 4), np.int64), np.ones((2, 4), np.uint8))
    assert [t.shape for t in to_tensors(batch)] == [(2, 4), (2, 4)]
    with pytest.raises(ValueError, match="uint8"):
        image_tensor(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="no tensor form"):
        to_tensors(3.5)


def test_torch_dataloader_covers_the_stream() -> None:
    expected = sorted(m.source for m in mockup_stream(6, seed=2))
    dataset = TorchStream(mockup_stream(6, seed=2), convert=False)
    for workers in (0, 2):  # with 2 workers each takes half: nothing twice, nothing lost
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
        assert sorted(m.source for m in loader) == expected
