"""The two readers `cromwell eval screenshot` compares on the same pixels.

- reader: the product's reading path, `engine.reader.read.read_screenshot` on the picture's
  uint8 pixels, the suffix of the picture's file type; the weights the product would take
  (engine/reader/read.py: `$CROMWELL_READER`, cromwell-smol's, the package's). The memory it
  adds: VmRSS before its weights load and after the last picture is read.
- tesseract: the peer, Debian's `tesseract IMAGE - --psm 6` (one uniform block of text) on the
  same pixels saved as PNG, one process per picture; its time includes the process start, as a
  user calling it pays it. Its memory: the peak RSS of its largest process (wait4's rusage).
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.runtime.reader_file import read_any, write_npz

TESSERACT_ARGS = ("--psm", "6")


@dataclass(frozen=True)
class Transcribed:
    text: str
    seconds: float  # wall clock, this picture


class Unavailable(RuntimeError):
    """A reader that cannot run here; the report leaves its column out and says why."""


def rss_mib() -> float:
    """This process's resident set now, from /proc/self/status (0.0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return 0.0


class CodeReader:
    """The product's reader; `info` says which weights and how much memory they added."""

    name = "reader"

    def __init__(self) -> None:
        from engine.reader.read import ReaderUnavailable, weights_path

        try:
            path = weights_path()
        except ReaderUnavailable as err:
            raise Unavailable(str(err)) from None
        # Copied once (out of a model file too): a training run rewrites its reader.npz as it
        # goes, so every picture is read with the same weights and the step reported is theirs.
        try:
            stored = read_any(path)
        except ValueError as err:
            raise Unavailable(str(err)) from None
        self._dir = tempfile.TemporaryDirectory(prefix="cromwell-eval-reader-")
        self.path = Path(self._dir.name) / "reader.npz"
        write_npz(stored, self.path)
        step = stored.meta.get("step")
        self.info: dict[str, Any] = {"weights": str(path),
                                     "step": step if isinstance(step, int) else None}

    def read_all(self, pictures: list[tuple[np.ndarray, str]]) -> list[Transcribed]:
        """Each (pixels, suffix) read in turn, through the product's own entry point."""
        from engine.reader import read

        # Memory freed before (the pictures' rendering) goes back first: without it the
        # reader's first trim would return it and the reader would seem to cost less than 0.
        gc.collect()
        read.release_free_memory()
        before = rss_mib()
        previous = os.environ.get("CROMWELL_READER")
        os.environ["CROMWELL_READER"] = str(self.path)
        out: list[Transcribed] = []
        try:
            t0 = time.perf_counter()
            read.default_reader()
            self.info["load_seconds"] = round(time.perf_counter() - t0, 3)
            for pixels, suffix in pictures:
                t = time.perf_counter()
                text = read.read_screenshot(pixels, suffix).text
                out.append(Transcribed(text, time.perf_counter() - t))
        finally:
            if previous is None:
                os.environ.pop("CROMWELL_READER", None)
            else:
                os.environ["CROMWELL_READER"] = previous
            self._dir.cleanup()
        # The weights stay loaded after (an lru_cache keyed by their path, here a fresh copy's):
        # what the reader costs a process that reads screenshots.
        self.info["rss_added_mib"] = round(rss_mib() - before, 1)
        return out


def tesseract_binary() -> str | None:
    return shutil.which("tesseract")


class Tesseract:
    """The OCR peer, one process per picture."""

    name = "tesseract"

    def __init__(self) -> None:
        binary = tesseract_binary()
        if binary is None:
            raise Unavailable("tesseract is not installed (Debian: apt-get install tesseract-ocr)")
        self.binary = binary
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=30, check=False)
        first = (version.stdout or version.stderr).strip().splitlines()
        self.info: dict[str, Any] = {"binary": binary, "version": first[0] if first else "",
                                     "args": " ".join(TESSERACT_ARGS)}

    def _run(self, png: Path) -> tuple[str, float, float]:
        """(text, seconds, peak RSS MiB) of one tesseract process."""
        t = time.perf_counter()
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([self.binary, str(png), "-", *TESSERACT_ARGS],
                                    stdout=subprocess.PIPE, stderr=err)
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
            # wait4 rather than wait: the rusage of this one child, its peak RSS among it.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - t
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"tesseract failed on {png.name} ({proc.returncode}): "
                                   f"{err.read().decode(errors='replace').strip()}")
        # Tesseract ends its page with a form feed; the picture shows none.
        return out.decode("utf-8", errors="replace").replace("\f", ""), seconds, \
            usage.ru_maxrss / 1024

    def read_all(self, pictures: list[tuple[np.ndarray, str]]) -> list[Transcribed]:
        from PIL import Image

        out: list[Transcribed] = []
        peak = 0.0
        with tempfile.TemporaryDirectory(prefix="cromwell-eval-tesseract-") as tmp:
            for i, (pixels, _suffix) in enumerate(pictures):
                png = Path(tmp) / f"{i}.png"
                Image.fromarray(pixels).save(png)  # written before the clock starts
                text, seconds, rss = self._run(png)
                peak = max(peak, rss)
                out.append(Transcribed(text, seconds))
        self.info["peak_rss_mib"] = round(peak, 1)
        return out
