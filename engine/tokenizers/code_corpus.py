"""The code corpus the Cromwell BPE is trained on, found offline on any machine.

Sources: the Python standard library's own sources (PSF licence), plus source files that
installed distributions with a permissive licence ship inside site-packages. Files are held
out by the project's one held-out rule (engine/data/split.py: a hash of the path, here
`source/relative-path`), with a larger fraction than training's, so the split is the same on
every machine and never depends on the order files are found in.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.data.split import is_heldout

CODE_SUFFIXES = frozenset({".py", ".pyi", ".c", ".h", ".cc", ".cpp", ".hpp", ".cuh", ".js", ".ts"})
# A tenth of the files, not training's 2%: the tokenizer's held-out set is measured per
# language and per source, and its smaller groups need the files.
HELDOUT_FRACTION = 0.10
MAX_FILE_BYTES = 400_000  # generated tables and vendored blobs teach the BPE nothing
_PERMISSIVE = re.compile(r"\b(MIT|BSD|Apache|PSF|Python Software Foundation|ISC|Zlib|Unlicense)\b")

# The distributions `make setup` installs (Cromwell's dependencies and extras, and theirs).
# Naming them keeps whatever else a machine has installed out of the corpus; one that is
# missing only makes the corpus smaller. Each must still declare a permissive licence.
SETUP_DISTRIBUTIONS = frozenset({
    "annotated-doc", "annotated-types", "anyio", "attrs", "cattrs", "charset-normalizer",
    "click", "filelock", "fsspec", "gguf", "h11", "hf-xet", "httpcore2", "httpx2",
    "huggingface_hub", "idna", "iniconfig", "jinja2", "lsprotocol", "markdown-it-py",
    "markupsafe", "mdurl", "mpmath", "networkx", "numpy", "packaging", "pillow", "pip",
    "pluggy", "pybind11", "pydantic", "pydantic_core", "pygls", "pygments", "pytest",
    "pytest-asyncio", "pytest-lsp", "pyyaml", "regex", "requests", "rich", "ruff",
    "safetensors", "scikit_build_core", "setuptools", "shellingham", "sortedcontainers",
    "sympy", "tokenizers", "torch", "tqdm", "transformers", "truststore", "typer",
    "typing-inspection", "typing_extensions", "unidiff", "urllib3",
})


@dataclass(frozen=True)
class CorpusFile:
    source: str  # "stdlib" or the distribution's name
    rel: str  # path relative to the source's root
    path: Path

    @property
    def split_key(self) -> str:
        """What the held-out rule hashes: the same relative path in two sources is two files."""
        return f"{self.source}/{self.rel}"

    @property
    def held_out(self) -> bool:
        return is_heldout(self.split_key, HELDOUT_FRACTION)

    @property
    def language(self) -> str:
        suffix = self.path.suffix
        if suffix in (".py", ".pyi"):
            return "python"
        if suffix in (".c", ".h", ".cc", ".cpp", ".hpp", ".cuh"):
            return "c/c++"
        return "js/ts"


def _is_permissive(dist: md.Distribution) -> bool:
    meta = dist.metadata
    texts = [meta.get("License-Expression") or "", (meta.get("License") or "")[:200]]
    texts += [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return any(_PERMISSIVE.search(t) for t in texts)


def stdlib_files() -> Iterator[CorpusFile]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("site-packages/") or "dist-packages" in rel:
            continue
        yield CorpusFile("stdlib", rel, path)


def package_files(max_bytes_per_dist: int) -> Iterator[CorpusFile]:
    """Source files of permissively licensed installed distributions, capped per distribution
    so that one huge package (torch) does not outvote the rest."""
    dists = {d.metadata["Name"].lower(): d for d in md.distributions() if d.metadata["Name"]}
    for name in sorted(dists):
        dist = dists[name]
        if name not in SETUP_DISTRIBUTIONS or not _is_permissive(dist):
            continue
        files = sorted(
            (f for f in dist.files or [] if Path(str(f)).suffix in CODE_SUFFIXES),
            key=str,
        )
        taken = 0
        for f in files:
            # A file installed outside the distribution's tree has no relative path to be
            # split by.
            if ".." in PurePosixPath(str(f)).parts:
                continue
            path = Path(str(dist.locate_file(f)))
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size > MAX_FILE_BYTES or taken + size > max_bytes_per_dist:
                continue
            taken += size
            yield CorpusFile(name, str(f), path)


def read_text(path: Path) -> str | None:
    """The file as text, or None for files that are not UTF-8 (a few test fixtures)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def corpus_files(max_bytes_per_dist: int = 3_000_000) -> list[CorpusFile]:
    return [*stdlib_files(), *package_files(max_bytes_per_dist)]


def split(files: list[CorpusFile]) -> tuple[list[CorpusFile], list[CorpusFile]]:
    train = [f for f in files if not f.held_out]
    held = [f for f in files if f.held_out]
    return train, held
