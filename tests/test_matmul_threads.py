"""The kernel thread pool: persistent workers, a settable size, optional pinning."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from engine import _native
from tests.quant_cases import random_weights, stream_read_checksum


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture
def three_threads():
    _native.set_num_threads(3)
    try:
        yield
    finally:
        _native.set_pinning(False)
        _native.set_num_threads(0)


def test_workers_persist_across_kernel_calls(three_threads: None) -> None:
    rng = np.random.default_rng(0)
    w = random_weights("Q8_0", 512, 256, rng)
    x = rng.standard_normal((8, 256)).astype(np.float32)
    _native.matmul(w, "Q8_0", x)
    before = os_threads()
    for _ in range(50):
        _native.matvec(w, "Q8_0", x[0])
        _native.matmul(w, "Q8_0", x)
    assert os_threads() == before  # no thread is created per call


def test_pool_size_is_what_was_asked_and_defaults_to_physical_cores(three_threads: None) -> None:
    assert _native.num_threads() == 3
    _native.set_num_threads(0)
    assert _native.num_threads() == _native.cpu_features()["physical_cores"]


def test_pinned_workers_compute_the_same_results(three_threads: None) -> None:
    rng = np.random.default_rng(1)
    w = random_weights("Q4_K", 300, 512, rng)
    x = rng.standard_normal((5, 512)).astype(np.float32)
    free = _native.matmul(w, "Q4_K", x)
    _native.set_pinning(True)
    assert _native.num_threads() == 3
    np.testing.assert_array_equal(_native.matmul(w, "Q4_K", x), free)


def test_many_short_jobs_of_both_kinds_interleave_correctly(three_threads: None) -> None:
    # Per-thread jobs (stream_read) and dynamically chunked ones (matvec) back to back, with
    # workers that may wake late for either: every result must still be exact.
    rng = np.random.default_rng(2)
    w = random_weights("Q8_0", 4096, 64, rng)  # large enough to be split into chunks
    x = rng.standard_normal(64).astype(np.float32)
    data = rng.integers(0, 256, 64 * 1024 + 3, dtype=np.uint8)
    want_y = _native.matvec(w, "Q8_0", x)
    want_sum = _native.stream_read(data)
    for _ in range(2000):
        assert _native.stream_read(data) == want_sum
        np.testing.assert_array_equal(_native.matvec(w, "Q8_0", x), want_y)


@contextmanager
def matvec_in_another_thread(fmt: str, rows: int, k: int, seed: int) -> Iterator[list[str]]:
    """Multiplies one matrix over and over on a second Python thread (a second submitter of
    pool jobs) until the block ends; yields the list its wrong results are reported in."""
    import threading

    rng = np.random.default_rng(seed)
    w = random_weights(fmt, rows, k, rng)
    x = rng.standard_normal(k).astype(np.float32)
    want = _native.matvec(w, fmt, x)
    stop = threading.Event()
    failures: list[str] = []

    def multiply() -> None:
        while not stop.is_set():
            if not np.array_equal(_native.matvec(w, fmt, x), want):
                failures.append(f"wrong {fmt} matvec")

    worker = threading.Thread(target=multiply)
    worker.start()
    try:
        yield failures
    finally:
        stop.set()
        worker.join()


def test_resizing_the_pool_while_kernels_run_in_another_thread() -> None:
    try:
        with matvec_in_another_thread("Q4_0", 4096, 256, seed=3) as failures:
            for i in range(200):
                _native.set_num_threads(1 + i % 3)
    finally:
        _native.set_num_threads(0)
    assert not failures


def test_more_threads_than_cores_with_sleeping_workers_stay_exact() -> None:
    # More workers than cores, so some start their runs late and others take chunks from the
    # back of theirs; pauses past the workers' spin time, so they go to sleep and must be woken
    # for the next job, of either kind (per-thread attention, chunked matvec).
    import time

    rng = np.random.default_rng(4)
    w = random_weights("Q4_1", 3000, 256, rng)
    x = rng.standard_normal(256).astype(np.float32)
    q = rng.standard_normal((9, 64)).astype(np.float32)
    k = rng.standard_normal((3000, 3, 64)).astype(np.float32)
    v = rng.standard_normal((3000, 3, 64)).astype(np.float32)
    want_y = _native.matvec(w, "Q4_1", x)
    want_att = _native.attention_decode(q, k, v, 3000, 0.125)
    _native.set_num_threads(2 * (os.cpu_count() or 1) + 1)
    try:
        for i in range(300):
            if i % 10 == 0:
                time.sleep(0.002)
            np.testing.assert_array_equal(_native.matvec(w, "Q4_1", x), want_y)
            np.testing.assert_allclose(
                _native.attention_decode(q, k, v, 3000, 0.125), want_att, rtol=1e-5, atol=1e-6
            )
    finally:
        _native.set_num_threads(0)


def test_every_chunk_runs_exactly_once_whatever_the_chunk_count() -> None:
    # stream_read XORs the words of its chunks together: a chunk run twice would cancel out,
    # one skipped would be missing. From 2 chunks in all (most runs empty) to 4 per thread;
    # more workers than cores, so some see a job late (after it finished) and must
    # neither run a chunk of it nor take one of the next; pauses put workers to sleep; a
    # second thread submits jobs of the other kind meanwhile.
    import time

    rng = np.random.default_rng(5)
    buffers = [
        rng.integers(0, 256, 4096 * pages + 5, dtype=np.uint8) for pages in (32, 48, 100, 257, 600)
    ]
    want = [stream_read_checksum(b) for b in buffers]
    _native.set_num_threads(8)
    try:
        with matvec_in_another_thread("Q8_0", 2048, 128, seed=6) as failures:
            for i in range(400):
                if i % 50 == 0:
                    time.sleep(0.002)
                j = i % len(buffers)
                assert _native.stream_read(buffers[j]) == want[j]
    finally:
        _native.set_num_threads(0)
    assert not failures
