"""The row count up to which `matmul` computes each row with the decode step's kernels is one
number, defined in native/src/matmul.h and exported as `_native.MATMUL_DECODE_ROWS`. The runtime
chunks a speculative verification by it (decoder.Decoder._linear_as_decode), so its logits are
those of decode steps; these tests fail if the Python chunking and the C++ switch disagree.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import _native
from engine.runtime import decoder
from engine.runtime.decoder_weights import Matrix
from tests.quant_cases import random_weights, valid_k
from tests.test_matmul import activations, check, reference
from tests.test_matmul_int import SHAPES as INT_GEMM_SHAPES

LIMIT = _native.MATMUL_DECODE_ROWS
# A float format (the GEMM unpacks into float tiles), a 32-element and a k-quant format (the
# integer GEMM); rows not a multiple of any kernel's panel.
FORMATS = ["F32", "F16", "Q4_1", "Q8_0", "Q4_K", "Q6_K"]
ROWS, K = 37, 512


def decode_rows(w: np.ndarray, fmt: str, x: np.ndarray) -> np.ndarray:
    """Each activation row as a decode step computes it."""
    return np.stack([_native.matvec(w, fmt, row) for row in x])


def test_the_runtime_reads_the_row_count_from_the_extension() -> None:
    assert isinstance(LIMIT, int) and LIMIT >= 1
    assert decoder.MATMUL_DECODE_ROWS == LIMIT
    # The integer GEMM tests mean to reach the GEMM, past the decode rows.
    assert min(n for n, _, _ in INT_GEMM_SHAPES) == LIMIT + 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_matmul_on_either_side_of_the_limit(fmt: str) -> None:
    k = valid_k(fmt, K)
    rng = np.random.default_rng(LIMIT * 7 + len(fmt))
    w = random_weights(fmt, ROWS, k, rng)
    for n in (LIMIT, LIMIT + 1):
        x = activations(n, k, rng)
        got = _native.matmul(w, fmt, x)
        want, bound = reference(w, fmt, k, x, integer_path=True)
        check(got, want, bound)
        if n == LIMIT:  # the decode step's kernels: each row bit for bit its decode step's
            np.testing.assert_array_equal(got, decode_rows(w, fmt, x))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n", [LIMIT + 1, 2 * LIMIT + 3])
def test_the_runtimes_chunks_give_decode_steps_rows(fmt: str, n: int) -> None:
    k = valid_k(fmt, K)
    rng = np.random.default_rng(n * 31 + len(fmt))
    w = random_weights(fmt, ROWS, k, rng)
    x = activations(n, k, rng)
    out = np.full((n, ROWS), np.nan, np.float32)
    decoder.Decoder._linear_as_decode(Matrix(w, fmt, ROWS, k), x, out)
    np.testing.assert_array_equal(out, decode_rows(w, fmt, x))
