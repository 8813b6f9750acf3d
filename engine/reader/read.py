"""Reading a screenshot file: the shipped reader's weights, the picture at full resolution, the
transcript.

The weights ship with the package (engine/assets/reader.npz, float16, trained by `cromwell train
reader`) and `cromwell models fetch` builds them into the default model, cromwell-smol. They are
taken from, in order: `$CROMWELL_READER` (a run's reader.npz, or a GGUF that carries a reader),
cromwell-smol in the model cache when it carries one, the package's own copy.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from engine.reader.transcript import Transcript, read_lines

ASSET = Path(__file__).resolve().parents[1] / "assets" / "reader.npz"
MAX_PIXELS = 4096 * 4096  # a larger picture is refused: it is no screenshot of an editor

LANGUAGES = {".py": "python", ".pyi": "python", ".pyw": "python"}


class ReaderUnavailable(RuntimeError):
    """No reader weights to read with."""


def weights_path() -> Path:
    chosen = os.environ.get("CROMWELL_READER")
    if chosen:
        if not Path(chosen).is_file():
            raise ReaderUnavailable(f"no screenshot reader weights at {chosen} ($CROMWELL_READER)")
        return Path(chosen)
    from engine.runtime.model_store import cromwell_smol_path

    smol = cromwell_smol_path()
    try:
        stat = smol.stat()
    except OSError:
        stat = None
    if stat is not None and _carries_reader(str(smol), stat.st_mtime_ns, stat.st_size):
        return smol
    if not ASSET.is_file():
        raise ReaderUnavailable(
            f"no screenshot reader weights at {ASSET}: train them with `cromwell train reader`")
    return ASSET


@functools.lru_cache(maxsize=4)
def _carries_reader(path: str, _mtime_ns: int, _size: int) -> bool:
    """Whether the model file carries a reader; asked once per version of the file (opening
    a GGUF reads its header, vocabulary included: tens of milliseconds)."""
    from engine.runtime.reader_file import gguf_has_reader

    return gguf_has_reader(path)


@functools.lru_cache(maxsize=2)
def _reader(path: str):  # noqa: ANN202 - the runtime Reader, imported late (native kernels)
    import gc

    from engine.runtime.reader import Reader, load_reader

    reader = Reader(load_reader(path))
    # Reading a model file's header builds its vocabulary's strings, and the file object
    # (in a reference cycle) keeps the file mapped: collected and trimmed now, the reader
    # costs the process its weights, not a parsed GGUF header.
    gc.collect()
    release_free_memory()
    return reader


def default_reader():  # noqa: ANN201
    """The runtime reader on the shipped (or $CROMWELL_READER) weights, loaded once."""
    return _reader(str(weights_path()))


def load_pixels(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 at the file's own resolution: the reader needs every pixel."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ValueError(f"{path}: {w}x{h} pixels is larger than a screenshot "
                                 f"({MAX_PIXELS} pixels at most)")
            if w < 2 or h < 2:
                raise ValueError(f"{path}: the image is {w}x{h} pixels: too small to read")
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: cannot read the image: {err}") from None


def language_of(suffix: str) -> str | None:
    return LANGUAGES.get(suffix.lower())


@functools.cache
def _malloc_trim():  # noqa: ANN202 - glibc's malloc_trim, or None where there is none
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Give the heap's free pages back to the system. A read allocates and frees picture-sized
    arrays; once glibc has raised its mmap threshold they come from the heap, and without
    this the process would keep ~20 MB it no longer uses after every screenshot."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def read_screenshot(image: str | Path | np.ndarray, suffix: str = ".py") -> Transcript:
    """The code a screenshot shows. `suffix` is the file type the code is for: where it is
    known (Python), readings that parse are preferred."""
    pixels = load_pixels(image) if not isinstance(image, np.ndarray) else image
    try:
        return read_lines(pixels, default_reader(), language=language_of(suffix))
    finally:
        release_free_memory()
