"""Loading a llama.cpp peer (llama-cpp-python) beside Cromwell's kernels.

llama-cpp-python builds llama.cpp for the CPU it is built on. On this project's AMX machines,
where a process may use AMX (Cromwell asks the kernel for the tile state, arch_prctl
XTILEDATA), the 0.3.36 build dies in its AMX weight buffer's first product: a general
protection fault on `ldtilecfg` on one Xeon, an illegal instruction on another. Models loaded
with `use_extra_bufts` off have no repacked and no AMX buffer, and run in the same process as
Cromwell's kernels. Used by the benchmarks (bench/peers.py) and `cromwell eval infill --peer`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """llama.cpp models loaded in the body get `use_extra_bufts` off. llama-cpp-python sets
    every other field of the model parameters itself, so its default parameters are wrapped
    meanwhile."""
    import llama_cpp.llama_cpp as api

    default = api.llama_model_default_params

    def without() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    api.llama_model_default_params = without
    try:
        yield
    finally:
        api.llama_model_default_params = default
