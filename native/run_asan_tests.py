"""Runs the native kernel tests against the AddressSanitizer build of the extension.

`make test-native-asan` builds native/ with -DCROMWELL_ASAN=ON into build/asan and runs this
with libasan preloaded. The editable install's import hook would hand out the regular build of
engine._native, so it is taken out of the import system here and the ASan build is put first on
the engine package's path; the run fails if any other build gets imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASAN_BUILD = ROOT / "build" / "asan"
KERNEL_TESTS = [
    "tests/test_native_core.py",
    "tests/test_quant_formats.py",
    "tests/test_matmul.py",
    "tests/test_matmul_threads.py",
    "tests/test_matmul_int.py",
    "tests/test_matmul_decode_rows.py",
    "tests/test_ops.py",
    "tests/test_attention.py",
    "tests/test_vision_ops.py",
    # The byte-level BPE: flat hash tables, string views into its own buffers.
    "tests/test_native_bpe.py",
    "tests/test_vocab_tables.py",
    # The fused decode step reads the arrays it was built from for as long as it lives.
    "tests/runtime/test_decode_step_weights.py",
    "tests/runtime/test_decode_step_spans.py",
]


def main() -> int:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
    sys.path.insert(0, str(ROOT))
    import engine

    engine.__path__.insert(0, str(ASAN_BUILD))
    from engine import _native

    if Path(_native.__file__).parent != ASAN_BUILD:
        print(f"expected the ASan build in {ASAN_BUILD}, imported {_native.__file__}")
        return 1
    import pytest

    tests = [t for t in KERNEL_TESTS if (ROOT / t).is_file()]
    return int(pytest.main(["-q", "-x", "-p", "no:cacheprovider", *tests, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
