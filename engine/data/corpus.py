"""Code corpora from local sources: the Python standard library, the sources installed packages
ship, any folder, any git repository (its tracked files).

`build_index` reads every candidate file once, drops duplicates (exact, normalised, near) and
assigns each survivor to the train or held-out split by the hash of its path. Held-out files are
indexed first, so a training copy of held-out content under another path is dropped as its
duplicate: evaluation files are never seen in training, whatever their copies are called.
The index holds paths and hashes, not texts; streams re-read files when they need them.
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import subprocess
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .dedup import Deduplicator, Fingerprint, exact_hash
from .split import DEFAULT_HELDOUT_FRACTION, DEFAULT_SALT, HELDOUT, TRAIN, split_of

DEFAULT_EXTENSIONS = (".py",)
SKIPPED_DIRS = frozenset(
    {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".tox", ".mypy_cache"}
)
MAX_FILE_BYTES = 512 * 1024  # generated tables and vendored bundles are not code to learn from
MIN_FILE_CHARS = 32


@dataclass(frozen=True)
class Source:
    """A named tree of files; `relpaths` are relative to `root`, sorted, '/'-separated."""

    name: str
    root: str
    relpaths: tuple[str, ...]


@dataclass(frozen=True)
class FileEntry:
    source: str
    root: str
    relpath: str
    sha256: str
    split: str
    chars: int

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.relpath)

    def read(self) -> str:
        """The file's text, as it was indexed: a file changed since would have escaped the
        dedup and split checks, so it is an error, not silently new data."""
        text = read_code(Path(self.path))
        if exact_hash(text) != self.sha256:
            raise ValueError(f"{self.path} changed since it was indexed; rebuild the index")
        return text


@dataclass
class CorpusIndex:
    """The deduplicated, split corpus: entries in a deterministic order, and what was dropped."""

    entries: list[FileEntry]
    heldout_fraction: float
    salt: str
    dropped: dict[str, int] = field(default_factory=dict)

    def split(self, name: str) -> list[FileEntry]:
        if name not in (TRAIN, HELDOUT):
            raise ValueError(f"split must be {TRAIN!r} or {HELDOUT!r}, got {name!r}")
        return [e for e in self.entries if e.split == name]

    def heldout_paths(self) -> list[str]:
        """The relative paths an evaluator may use: none of them, nor a duplicate of one, is
        in the train split."""
        return [e.relpath for e in self.entries if e.split == HELDOUT]

    def stats(self) -> dict[str, int]:
        out = {f"{s}_files": len(self.split(s)) for s in (TRAIN, HELDOUT)}
        out.update({f"{s}_chars": sum(e.chars for e in self.split(s)) for s in (TRAIN, HELDOUT)})
        out.update({f"dropped_{k}": v for k, v in sorted(self.dropped.items())})
        return out

    def save(self, path: str | Path) -> None:
        data = {
            "heldout_fraction": self.heldout_fraction,
            "salt": self.salt,
            "dropped": self.dropped,
            "entries": [asdict(e) for e in self.entries],
        }
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path) -> CorpusIndex:
        data = json.loads(Path(path).read_text())
        return cls(
            entries=[FileEntry(**e) for e in data["entries"]],
            heldout_fraction=data["heldout_fraction"],
            salt=data["salt"],
            dropped=data["dropped"],
        )


def read_code(path: Path) -> str:
    """The file as text, or ValueError when it is not UTF-8 text."""
    raw = path.read_bytes()
    if b"\0" in raw:
        raise ValueError(f"{path} is binary")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8: {err}") from err


def _walk(root: Path, extensions: Sequence[str], skip_dirs: frozenset[str]) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for name in filenames:
            if name.endswith(tuple(extensions)):
                relpath = os.path.relpath(os.path.join(dirpath, name), root)
                found.append(relpath.replace(os.sep, "/"))
    return sorted(found)


def folder_source(
    root: str | Path,
    name: str | None = None,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    skip_dirs: Iterable[str] = (),
) -> Source:
    path = Path(root).resolve()
    if not path.is_dir():
        raise ValueError(f"corpus folder {str(root)!r} does not exist or is not a folder")
    skipped = SKIPPED_DIRS | frozenset(skip_dirs)
    return Source(name or path.name, str(path), tuple(_walk(path, extensions, skipped)))


def stdlib_source(extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> Source:
    """The standard library of the running interpreter, without its site-packages."""
    root = sysconfig.get_paths()["stdlib"]
    return folder_source(
        root, "stdlib", extensions, skip_dirs={"site-packages", "dist-packages", "idle_test"}
    )


def site_packages_source(extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> Source:
    """The sources installed packages ship, in the running environment's site-packages."""
    root = sysconfig.get_paths()["purelib"]
    return folder_source(root, "site-packages", extensions)


def git_source(repo: str | Path, extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> Source:
    """The files git tracks at HEAD in `repo` (build outputs and ignored files excluded)."""
    path = Path(repo).resolve()
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "ls-files", "-z"],
            check=True,
            capture_output=True,
        ).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        raise ValueError(f"{str(repo)!r} is not a git repository git can read: {err}") from err
    listed = out.decode("utf-8", "surrogateescape").split("\0")
    names = sorted(n for n in listed if n.endswith(tuple(extensions)))
    return Source(path.name, str(path), tuple(n for n in names if (path / n).is_file()))


def default_sources() -> list[Source]:
    return [stdlib_source(), site_packages_source()]


def indexable_text(path: Path) -> str | None:
    """The text of a code file training indexes (readable UTF-8, at most MAX_FILE_BYTES, not
    nearly empty), else None: the one filter for training and the held-out evaluations."""
    try:
        if os.stat(path).st_size > MAX_FILE_BYTES:
            return None
        text = read_code(path)
    except (OSError, ValueError):
        return None
    return text if len(text.strip()) >= MIN_FILE_CHARS else None


def heldout_stdlib_files() -> list[tuple[str, str]]:
    """(relative path, text) of the standard-library files training would index but the
    path-hash split holds out (`split.is_heldout`): what the evaluations read."""
    from engine.data.split import is_heldout

    source = stdlib_source()
    files = []
    for relpath in source.relpaths:
        if is_heldout(relpath) and (text := indexable_text(Path(source.root) / relpath)):
            files.append((relpath, text))
    return files


def _fingerprint_file(job: tuple[str, bool]) -> tuple[Fingerprint, int] | None:
    """(fingerprint, chars) of a readable code file of a sensible size, else None. Runs in
    worker processes: everything it needs comes in `job`."""
    path, near = job
    text = indexable_text(Path(path))
    if text is None:
        return None
    return _fingerprinter(near).fingerprint(text), len(text)


@functools.lru_cache(maxsize=2)
def _fingerprinter(near: bool) -> Deduplicator:
    return Deduplicator(near=near)


def build_index(
    sources: Sequence[Source],
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    salt: str = DEFAULT_SALT,
    near_dedup: bool = True,
    near_threshold: float = 0.85,
    workers: int = 0,
) -> CorpusIndex:
    """Index `sources`: deduplicate, split by path hash, held-out first (see module doc).
    `workers` processes read and fingerprint the files (0: this process does); the result
    is the same for any number."""
    if not sources:
        raise ValueError("a corpus needs at least one source")
    dedup = Deduplicator(near=near_dedup, threshold=near_threshold)
    dropped: dict[str, int] = {}
    kept: list[FileEntry] = []
    pool = mp.get_context("spawn").Pool(workers) if workers > 0 else None
    try:
        for split in (HELDOUT, TRAIN):
            files = [(source, relpath) for source in sources for relpath in source.relpaths
                     if split_of(relpath, heldout_fraction, salt) == split]
            jobs = [(os.path.join(source.root, relpath), near_dedup) for source, relpath in files]
            # imap keeps the order, so which copy of a duplicate survives never depends on
            # the number of workers.
            results = pool.imap(_fingerprint_file, jobs, 16) if pool else map(
                _fingerprint_file, jobs)
            for (source, relpath), result in zip(files, results, strict=True):
                if result is None:
                    continue
                fingerprint, chars = result
                reason = dedup.check_and_add_fingerprint(fingerprint)
                if reason is not None:
                    dropped[reason] = dropped.get(reason, 0) + 1
                    continue
                kept.append(FileEntry(source.name, source.root, relpath, fingerprint.exact,
                                      split, chars))
    finally:
        if pool is not None:
            pool.terminate()
    order = {s.name: i for i, s in enumerate(sources)}
    kept.sort(key=lambda e: (order[e.source], e.relpath))
    return CorpusIndex(kept, heldout_fraction, salt, dropped)

