"""The key/value cache: preallocated for the whole context, one slab per layer.

The slabs are anonymous memory the OS maps in 4 KiB pages as they are first written, so an
8192-token cache costs resident memory and zeroing only for the positions actually written.
Not `np.zeros`: numpy asks for transparent huge pages on large arrays, and then the first
write into each layer's slab zeroes a whole 2 MiB page, the first token of a session touching
every layer's K and V: 280 ms and 120 MB more before the first token of the default model, for
rows of a few hundred bytes. Rolling back (speculative decoding, prompt-prefix reuse) is just
moving `length`: rows past it are overwritten by the next write, and a forward writes only the
rows it runs. So runs of rows kept from an earlier prompt can be moved to their new positions
past `length` (`move_rows`) before the gaps before them are computed, and then counted in
(`extend_moved`): cache_reuse.py plans which.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence

import numpy as np

from engine import _native as K

# The cache's element types. Half (the default, as llama.cpp's) halves the bytes every decode
# step reads at long contexts, where attention, not the weights, is most of a step; a row is
# rounded to half once it is final (after RoPE). Float keeps rows as computed.
KV_DTYPES = {"f16": np.float16, "f32": np.float32}


def lazy_zeros(shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """A zero array in private anonymous memory, mapped in small pages on first write."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    # Where transparent huge pages are on for every mapping ("always"), not only on request.
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(buf, dtype).reshape(shape)  # the array keeps the mapping alive


class KVCache:
    def __init__(
        self, n_layers: int, n_ctx: int, n_kv_heads: int, head_dim: int, dtype: str = "f16"
    ) -> None:
        if dtype not in KV_DTYPES:
            raise ValueError(f"KV cache type {dtype!r}: expected one of {', '.join(KV_DTYPES)}")
        self.n_ctx = n_ctx
        self.dtype = dtype
        shape = (n_layers, n_ctx, n_kv_heads, head_dim)
        self.k = lazy_zeros(shape, KV_DTYPES[dtype])
        self.v = lazy_zeros(shape, KV_DTYPES[dtype])
        # Per-layer views made once, so the decode loop indexes a list, not a 4-d array.
        self.k_layers = list(self.k)  # each [n_ctx, n_kv_heads, head_dim] of the cache's type
        self.v_layers = list(self.v)
        self.length = 0  # positions 0..length-1 hold valid keys and values
        self.tokens: list[int] = []  # the token at each valid position (for prefix reuse)

    @property
    def half(self) -> bool:
        """Whether rows are stored in half precision (rounded once final)."""
        return self.dtype == "f16"

    def rollback(self, length: int) -> None:
        """Forget every position from `length` on."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot roll the cache back to {length}: it holds {self.length}")
        self.length = length
        del self.tokens[length:]

    def move_rows(
        self,
        moves: Sequence[tuple[int, int, int]],
        rotate_keys: Callable[[np.ndarray, int], None],
    ) -> None:
        """For each (src, dst, n), copy rows [src, src + n) of every layer to [dst, dst + n),
        keys re-rotated by dst - src positions: `rotate_keys(k, shift)` turns float32
        k[rows, n_kv_heads, head_dim] in place. Every run is read before any is written, so a
        run may land on another's old rows. Only rows below `length` may be read; `length` and
        `tokens` are left as they are."""
        n_ctx = self.n_ctx
        for src, dst, n in moves:
            if not (0 <= src <= self.length - n and 0 <= dst <= n_ctx - n and n >= 0):
                raise ValueError(
                    f"cannot move {n} rows from {src} to {dst}: {self.length} rows are "
                    f"cached and the context holds {n_ctx}"
                )
        n_layers, _, heads, head_dim = self.k.shape
        taken = []
        for src, dst, n in moves:
            if src == dst or n == 0:
                continue
            k = self._keys_f32(src, n)  # (n_layers * n, heads, head_dim)
            rotate_keys(k, dst - src)
            taken.append(
                (dst, k.reshape(n_layers, n, heads, head_dim), self.v[:, src : src + n].copy())
            )
        for dst, k, v in taken:
            n = k.shape[1]
            self.k[:, dst : dst + n] = self._from_f32(k)
            self.v[:, dst : dst + n] = v

    def _keys_f32(self, src: int, n: int) -> np.ndarray:
        """Rows [src, src + n) of every layer's keys, copied into a new float32 array
        (n_layers * n, heads, head_dim)."""
        heads, head_dim = self.k.shape[2:]
        if not self.half:
            return np.array(self.k[:, src : src + n]).reshape(-1, heads, head_dim)
        rows = np.ascontiguousarray(self.k[:, src : src + n]).reshape(-1, heads * head_dim)
        # The native conversion: numpy's float16 casts are scalar, several times slower.
        return K.dequantize(rows, "F16", heads * head_dim).reshape(-1, heads, head_dim)

    def _from_f32(self, k: np.ndarray) -> np.ndarray:
        """float32 keys in the cache's type, rounded to nearest as a forward rounds its rows."""
        if not self.half:
            return k
        return K.quantize(k.reshape(-1, k.shape[-2] * k.shape[-1]), "F16").reshape(k.shape)

    def extend_moved(self, tokens: Sequence[int]) -> None:
        """Count the next len(tokens) rows, already put in place by `move_rows`, as holding
        `tokens`."""
        self.check_room(len(tokens))
        self.length += len(tokens)
        self.tokens.extend(int(t) for t in tokens)

    def check_room(self, n: int) -> None:
        if self.length + n > self.n_ctx:
            raise ValueError(
                f"context full: {self.length} tokens cached + {n} new exceeds "
                f"the context of {self.n_ctx} tokens"
            )
