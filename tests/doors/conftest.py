"""Shared fixtures: `cromwell serve` started as a real process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from doors_helpers import Server, make_root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(make_root(tmp_path_factory.mktemp("served")), "--max-body", "100000")
    yield srv
    srv.stop()
