"""Cromwell's model engine: tokens and pixels in, tokens out. Knows nothing of editors.

Importing this package is cheap: torch is only imported by `engine.model` and `engine.train`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runtime.model import Model


def load(path: str | None = None, threads: int | None = None, **kwargs: Any) -> Model:
    """Load a GGUF model for inference (see `engine.runtime.load`); imports no torch."""
    from engine.runtime import load as load_runtime

    return load_runtime(path, threads, **kwargs)
