"""The KV cache's memory: zero, writable, and mapped in small pages as positions are written.

A huge page per layer would make the first token of a session zero 2 MiB of every layer's K
and V slab (hundreds of milliseconds and 100+ MB for the default model) to store rows of a few
hundred bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.runtime.kv_cache import KV_DTYPES, KVCache, lazy_zeros


def _anon_huge_kib(a: np.ndarray) -> int | None:
    """AnonHugePages of the mappings that hold `a`'s bytes, from /proc/self/smaps (None: no such
    file here). An madvise splits a mapping, so an array may span several."""
    try:
        with open("/proc/self/smaps") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    start, end = a.ctypes.data, a.ctypes.data + a.nbytes
    total, inside = 0, False
    for line in lines:
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(v, 16) for v in head.split("-"))
            inside = lo < end and start < hi
        elif inside and head == "AnonHugePages:":
            total += int(line.split()[1])
    return total


@pytest.mark.parametrize("dtype", sorted(KV_DTYPES))
def test_cache_slabs_start_zero_and_take_writes(dtype: str) -> None:
    cache = KVCache(n_layers=3, n_ctx=64, n_kv_heads=2, head_dim=8, dtype=dtype)
    for slab in (cache.k, cache.v):
        assert slab.shape == (3, 64, 2, 8)
        assert slab.dtype == KV_DTYPES[dtype]
        assert slab.flags.c_contiguous and slab.flags.writeable
        assert not slab.any()
    cache.k_layers[1][5] = 1.5
    assert cache.k[1, 5].tolist() == [[1.5] * 8] * 2
    assert np.count_nonzero(cache.k) == 16 and not cache.v.any()


def test_first_rows_of_every_layer_take_small_pages() -> None:
    # 30 layers x 8192 positions x 384 bytes, as the default model's K slab: each layer's first
    # row is in a different 2 MiB stretch.
    k = lazy_zeros((30, 8192, 3, 64), np.float16)
    for layer in range(30):
        k[layer, 0] = 1.0
    huge = _anon_huge_kib(k)
    if huge is None:
        pytest.skip("no /proc/self/smaps here")
    assert huge == 0


def test_empty_shape() -> None:
    assert lazy_zeros((0, 4), np.float32).shape == (0, 4)
