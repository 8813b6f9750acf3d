"""The native module imports, reports the CPU and dispatches; the scalar switch works."""

import os

import numpy as np
import pytest

from engine import _native


def test_cpu_features_reports_instruction_sets_and_caches() -> None:
    f = _native.cpu_features()
    for key in ("avx2", "fma", "f16c", "bmi2", "avx512f", "avx512vnni", "avx_vnni"):
        assert isinstance(f[key], bool)
    assert f["physical_cores"] >= 1
    assert f["logical_cores"] >= f["physical_cores"]
    assert f["kernels"] in ("avx512", "avx2", "scalar")
    assert f["matvec_kernels"] in ("avx-vnni", "avx512-vnni", "avx2", "scalar")
    if f["avx_vnni"] and not os.environ.get("CROMWELL_NO_AVX_VNNI"):
        assert f["matvec_kernels"] == "avx-vnni"


def test_avx512_and_avx_vnni_can_be_held_to_avx2_and_scalar() -> None:
    best = _native.cpu_features()["kernels"]
    best_matvec = _native.cpu_features()["matvec_kernels"]
    try:
        _native.set_force_avx2(True)
        assert _native.cpu_features()["kernels"] == ("avx2" if best == "avx512" else best)
        assert _native.cpu_features()["matvec_kernels"] == (
            "avx2" if best_matvec.endswith("vnni") else best_matvec
        )
        _native.set_force_scalar(True)
        assert _native.cpu_features()["kernels"] == "scalar"
        assert _native.cpu_features()["matvec_kernels"] == "scalar"
    finally:
        _native.set_force_avx2(False)
        _native.set_force_scalar(False)
    assert _native.cpu_features()["kernels"] == best
    assert _native.cpu_features()["matvec_kernels"] == best_matvec


@pytest.mark.parametrize("n", [1, 7, 8, 15, 16, 33, 1000])
@pytest.mark.parametrize("scalar", [False, True])
def test_dot_f32_matches_numpy(n: int, scalar: bool) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    _native.set_force_scalar(scalar)
    try:
        got = _native.dot_f32(a, b)
    finally:
        _native.set_force_scalar(False)
    want = float(np.dot(a.astype(np.float64), b.astype(np.float64)))
    assert abs(got - want) <= 1e-5 * (1 + np.abs(a * b).sum())


def test_bad_input_is_a_value_error_that_says_what_was_expected() -> None:
    with pytest.raises(ValueError, match="float32"):
        _native.dot_f32(np.zeros(3, np.float64), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="same length"):
        _native.dot_f32(np.zeros(3, np.float32), np.zeros(4, np.float32))


def test_thread_count_is_settable() -> None:
    before = _native.num_threads()
    _native.set_num_threads(1)
    assert _native.num_threads() == 1
    _native.set_num_threads(0)
    assert _native.num_threads() == before
