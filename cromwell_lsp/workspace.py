"""The workspace index: which files exist, which are text, how they are encoded, and how
recently the user touched them.

pygls owns the open documents (it applies every `didChange`); this index only knows the
files on disk, reads them on demand, and keeps a small cache of the decoded text keyed by
modification time. Open documents always win over the disk copy: the server asks pygls first.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

# Directories that are never source, whatever .gitignore says (it may not exist).
ALWAYS_SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".cache",
        "build",
        "dist",
        ".hypothesis",
    }
)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"})
# Enough to tell text from binary: git's heuristic looks at the first 8000 bytes.
SNIFF_BYTES = 8000
MAX_INDEXED_FILES = 20_000


class FileRefused(ValueError):
    """A file the server will not read as text; the message says why."""


@dataclass(frozen=True)
class IndexedFile:
    path: Path
    size: int
    mtime_ns: int
    encoding: str


def is_binary(head: bytes) -> bool:
    """A NUL byte outside a UTF-16/32 BOM means binary (git's rule)."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    return b"\0" in head


def detect_encoding(data: bytes) -> str:
    """BOMs first, then strict UTF-8, then Windows-1252 for mostly-ASCII text, then
    charset-normalizer's best guess, else latin-1
    (which decodes any byte string, so a file is never refused for its encoding alone)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # Source code is mostly ASCII: a few high bytes in an otherwise ASCII file are far more
    # often Windows-1252 than anything a statistical guess on so little evidence would pick.
    high = sum(b > 0x7F for b in data)
    if high <= len(data) // 10:
        try:
            data.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    if best is not None and best.encoding:
        return best.encoding
    return "latin-1"


def read_text(path: Path, max_bytes: int) -> tuple[str, str]:
    """Read a text file: (text, encoding). Refuses missing, huge and binary files by name."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileRefused(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size > max_bytes:
        raise FileRefused(
            f"{path}: {size} bytes is over the {max_bytes}-byte limit (setting maxFileBytes)"
        )
    data = path.read_bytes()
    if is_binary(data[:SNIFF_BYTES]):
        raise FileRefused(f"{path}: binary file, not text")
    encoding = detect_encoding(data)
    return data.decode(encoding, errors="replace"), encoding


class WorkspaceIndex:
    """Files of the workspace folders, kept current by `update`/`remove` from file events.

    Deterministic: `files()` is sorted by path; recency is a counter, not a clock, so two
    runs over the same events rank the same.
    """

    def __init__(self, max_file_bytes: int = 1_000_000) -> None:
        self.max_file_bytes = max_file_bytes
        self.roots: list[Path] = []
        self._files: dict[Path, IndexedFile] = {}
        self._ignores: dict[Path, pathspec.PathSpec] = {}
        self._text_cache: dict[Path, tuple[int, str]] = {}
        self._clock = 0
        self.opened: dict[Path, int] = {}
        self.edited: dict[Path, int] = {}

    # --- folders -------------------------------------------------------------------------
    def add_root(self, root: Path) -> None:
        root = root.resolve()
        if root in self.roots or not root.is_dir():
            return
        self.roots.append(root)
        for path in self._walk(root):
            self.update(path)

    def remove_root(self, root: Path) -> None:
        root = root.resolve()
        if root in self.roots:
            self.roots.remove(root)
        for path in [p for p in self._files if p.is_relative_to(root)]:
            self.remove(path)
        self._ignores = {d: s for d, s in self._ignores.items() if not d.is_relative_to(root)}

    def root_of(self, path: Path) -> Path | None:
        matches = [r for r in self.roots if path.is_relative_to(r)]
        return max(matches, key=lambda r: len(r.parts)) if matches else None

    # --- ignore rules ------------------------------------------------------------------
    def _ignore_spec(self, directory: Path) -> pathspec.PathSpec | None:
        if directory not in self._ignores:
            gitignore = directory / ".gitignore"
            lines = (
                gitignore.read_text(errors="replace").splitlines() if gitignore.is_file() else []
            )
            self._ignores[directory] = pathspec.GitIgnoreSpec.from_lines(lines)
        return self._ignores[directory]

    def is_ignored(self, path: Path) -> bool:
        """True for paths under an always-skipped directory or matched by a .gitignore in
        any directory between the workspace root and the file (nearest rules last, as git)."""
        root = self.root_of(path)
        if root is None:
            return True
        rel = path.relative_to(root)
        if any(part in ALWAYS_SKIPPED_DIRS for part in rel.parts[:-1]):
            return True
        directory = root
        for depth in range(len(rel.parts)):
            spec = self._ignore_spec(directory)
            sub = Path(*rel.parts[depth:]).as_posix()
            if spec is not None and spec.match_file(sub):
                return True
            directory = directory / rel.parts[depth]
        return False

    def invalidate_ignores(self, gitignore: Path) -> None:
        """A .gitignore changed: forget its rules and re-scan the folder it governs."""
        self._ignores.pop(gitignore.parent.resolve(), None)
        directory = gitignore.parent.resolve()
        for path in [p for p in self._files if p.is_relative_to(directory)]:
            if self.is_ignored(path):
                self.remove(path)
        if self.root_of(directory) is not None:
            for path in self._walk(directory):
                self.update(path)

    def _walk(self, top: Path) -> Iterator[Path]:
        count = 0
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in ALWAYS_SKIPPED_DIRS and not self.is_ignored(here / d / "_")
            )
            for name in sorted(filenames):
                if name == ".gitignore":  # rules, not source; read by _ignore_spec
                    continue
                count += 1
                if count > MAX_INDEXED_FILES:
                    return
                yield here / name

    # --- files ---------------------------------------------------------------------------
    def update(self, path: Path) -> IndexedFile | None:
        """(Re-)index one file after a create or change; returns None when it is left out."""
        path = path.resolve()
        self._text_cache.pop(path, None)
        if path.name == ".gitignore":
            self.invalidate_ignores(path)
            return None
        if self.is_ignored(path) or not path.is_file():
            self._files.pop(path, None)
            return None
        try:
            stat = path.stat()
            if stat.st_size > self.max_file_bytes:
                self._files.pop(path, None)
                return None
            with path.open("rb") as handle:
                head = handle.read(SNIFF_BYTES)
        except OSError:
            self._files.pop(path, None)
            return None
        if path.suffix.lower() in IMAGE_SUFFIXES:
            encoding = "binary"
        elif is_binary(head):
            self._files.pop(path, None)
            return None
        else:
            encoding = detect_encoding(head) if head else "utf-8"
        entry = IndexedFile(path, stat.st_size, stat.st_mtime_ns, encoding)
        self._files[path] = entry
        return entry

    def remove(self, path: Path) -> None:
        path = path.resolve()
        self._files.pop(path, None)
        self._text_cache.pop(path, None)

    def files(self) -> list[IndexedFile]:
        """Text files, sorted by path."""
        return [f for p, f in sorted(self._files.items()) if f.encoding != "binary"]

    def images(self) -> list[Path]:
        return [p for p, f in sorted(self._files.items()) if f.encoding == "binary"]

    def __contains__(self, path: Path) -> bool:
        return path.resolve() in self._files

    def text(self, path: Path) -> str:
        """The disk text of an indexed file (cached by modification time)."""
        path = path.resolve()
        entry = self._files.get(path)
        if entry is None or entry.encoding == "binary":
            raise FileRefused(f"{path}: not an indexed text file")
        cached = self._text_cache.get(path)
        if cached is not None and cached[0] == entry.mtime_ns:
            return cached[1]
        text, _ = read_text(path, self.max_file_bytes)
        self._text_cache[path] = (entry.mtime_ns, text)
        return text

    # --- recency -------------------------------------------------------------------------
    def touch(self, path: Path, *, edited: bool) -> None:
        """Record that the user opened (or edited) a file: later events rank higher."""
        self._clock += 1
        (self.edited if edited else self.opened)[path.resolve()] = self._clock

    def recency(self) -> dict[Path, int]:
        """For each touched file, the latest event's tick (edits and opens alike)."""
        out = dict(self.opened)
        for path, tick in self.edited.items():
            out[path] = max(out.get(path, 0), tick)
        return out

    def add_roots(self, roots: Iterable[Path]) -> None:
        for root in roots:
            self.add_root(root)
