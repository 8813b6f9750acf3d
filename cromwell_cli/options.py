"""Options that several commands share, put on a command as one decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def with_options(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """A decorator that puts `options` on a command, in the order given."""

    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return apply
