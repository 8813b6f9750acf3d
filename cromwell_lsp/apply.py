"""Apply a unified diff to files on disk, safely.

All or nothing: every hunk of every file is checked against the file's current bytes first
(no fuzz, through `patches.apply_diff`); nothing is written unless all of them apply. Then each
new file is staged as a temporary file in the target's own folder (same file system, so the
rename is atomic), written, fsynced and given the original's permissions; the originals are
re-hashed, and only if none changed since they were read are the staged files renamed over
them. A crash at any moment leaves each file either entirely old or entirely new. An error
during the renames puts back the files already replaced.

A process killed mid-apply can leave its hidden staged files behind; the next apply in that
folder removes them (`remove_stale_files`): only names of exactly our pattern, and only those
whose writer is gone: its process id, part of the name, names no running process, or (a name
from before ids were part of it) the file is older than the running process.

Each file keeps its encoding, byte-order mark and line endings: the diff is matched and applied
on text with "\\n" endings, which are turned back into the file's own on the way out.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import unidiff

from .patches import PatchError, StaleDocument, apply_diff
from .workspace import detect_encoding, is_binary

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
BACKUP_SUFFIX = ".orig"
# A staged new file or a kept original: ".NAME.pPID.XXXXXXXX.cromwell-tmp" (or -old), where
# XXXXXXXX is tempfile's random part; names written before the id was added lack ".pPID".
STAGED_NAME = re.compile(
    r"\.(?P<target>.+?)\.(?:p(?P<pid>[1-9][0-9]{0,9})\.)?[a-z0-9_]{8}\.cromwell-(?:tmp|old)"
)
_IMPORTED_AT = time.time()


class FileChanged(StaleDocument):
    """A file changed on disk after it was read: nothing was written."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TextFormat:
    """How a file's text is stored: encoding, byte-order mark, line ending."""

    encoding: str = "utf-8"
    bom: bytes = b""
    newline: str = "\n"

    def decode(self, data: bytes) -> str:
        text = data[len(self.bom) :].decode(self.encoding)
        return text.replace("\r\n", "\n") if self.newline == "\r\n" else text

    def encode(self, text: str) -> bytes:
        if self.newline == "\r\n":
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        return self.bom + text.encode(self.encoding)


def text_format(data: bytes) -> TextFormat:
    """The storage format of a file's bytes; raises PatchError for a binary file."""
    found = [(bom, encoding) for bom, encoding in _BOMS if data.startswith(bom)]
    if found:
        bom, encoding = found[0]
    else:
        bom = b""
        if is_binary(data[:8192]):
            raise PatchError("binary file: a text diff cannot apply to it")
        encoding = detect_encoding(data)
    text = data[len(bom) :].decode(encoding, errors="replace")
    crlf = text.count("\r\n")
    newline = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
    return TextFormat(encoding, bom, newline)


@dataclass(frozen=True)
class FileChange:
    """One file's part of a checked patch: its bytes before and after."""

    path: Path  # absolute
    relative: str
    kind: str  # "modify", "create" or "delete"
    old_hash: str | None  # None for a file that must not exist yet
    new_bytes: bytes | None  # None for a deletion
    mode: int | None
    hunks: int
    added: int
    removed: int


@dataclass(frozen=True)
class CheckedPatch:
    """Every file of a patch, checked against the disk; `write` applies them all."""

    root: Path
    files: list[FileChange] = field(default_factory=list)

    def summary(self) -> list[dict[str, object]]:
        return [
            {"path": f.relative, "change": f.kind, "hunks": f.hunks, "added": f.added,
             "removed": f.removed}
            for f in self.files
        ]


def resolve_inside(root: Path, name: str) -> Path:
    if not name or name == "/dev/null":
        raise PatchError(f"the diff names no file ({name!r})")
    candidate = Path(name)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise PatchError(f"{name}: only relative paths inside {root} may be patched")
    path = (root / candidate).resolve()
    if path != root and root not in path.parents:
        raise PatchError(f"{name}: resolves outside {root}")
    return path


def check(
    diff: str, root: Path | str = ".", expected: Mapping[str, str] | None = None
) -> CheckedPatch:
    """Check every hunk of `diff` against the files under `root` and compute the new bytes.

    `expected` maps a relative path to the SHA-256 its bytes had when the diff was computed:
    a file that differs is refused with FileChanged. Raises PatchError naming the first
    file and hunk that do not apply; reads only, never writes.
    """
    root = Path(root).resolve()
    try:
        patch_set = unidiff.PatchSet(diff.replace("\r\n", "\n"))
    except unidiff.UnidiffParseError as exc:
        raise PatchError(f"not a valid unified diff: {exc}") from exc
    if len(patch_set) == 0:
        raise PatchError("the diff contains no file changes")
    files: list[FileChange] = []
    seen: set[Path] = set()
    for patched in patch_set:
        name = patched.path
        path = resolve_inside(root, name)
        if path in seen:
            raise PatchError(f"{name}: the diff changes this file twice")
        seen.add(path)
        one_file = str(patched)
        stats = (len(patched), patched.added, patched.removed)
        if patched.is_added_file:
            if path.exists():
                raise PatchError(f"{name}: the diff creates it, but it already exists")
            text = apply_diff("", one_file)
            files.append(FileChange(path, name, "create", None, text.encode("utf-8"), None,
                                    *stats))
            continue
        try:
            data = path.read_bytes()
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError as exc:
            raise PatchError(f"{name}: no such file under {root}") from exc
        except OSError as exc:
            raise PatchError(f"{name}: cannot read ({exc.strerror or exc})") from exc
        old_hash = sha256(data)
        if expected is not None and name in expected and expected[name] != old_hash:
            raise FileChanged(f"{name} changed since the diff was computed: nothing was written")
        try:
            fmt = text_format(data)
            new_text = apply_diff(fmt.decode(data), one_file)
        except StaleDocument as exc:
            raise StaleDocument(f"{name}: the diff does not apply: {exc}") from exc
        except PatchError as exc:
            raise PatchError(f"{name}: {exc}") from exc
        except UnicodeError as exc:
            raise PatchError(f"{name}: cannot decode as {fmt.encoding} ({exc})") from exc
        if patched.is_removed_file:
            if new_text:
                raise PatchError(f"{name}: the diff deletes it but does not remove every line")
            files.append(FileChange(path, name, "delete", old_hash, None, mode, *stats))
            continue
        try:
            new_bytes = fmt.encode(new_text)
        except UnicodeError as exc:
            raise PatchError(f"{name}: the new text cannot be written as {fmt.encoding}"
                             f" ({exc})") from exc
        files.append(FileChange(path, name, "modify", old_hash, new_bytes, mode, *stats))
    return CheckedPatch(root, files)


def _stage(change: FileChange) -> str:
    """Write the new bytes to a temporary file beside the target; fsynced, with its mode."""
    assert change.new_bytes is not None
    change.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_staged_prefix(change.path), suffix=".cromwell-tmp",
                               dir=change.path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(change.new_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, change.mode if change.mode is not None else 0o644 & ~_umask())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _staged_prefix(path: Path) -> str:
    return f".{path.name}.p{os.getpid()}."


def process_started_at() -> float:
    """When this process started, in seconds since the epoch: from Linux's /proc (rounded
    down to the boot time's whole second, so never later than the truth), elsewhere when this
    module was imported."""
    try:
        # Fields after the command name, which may itself hold spaces; starttime is field 22.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        with open("/proc/stat") as proc_stat:
            boot = next(int(line.split()[1]) for line in proc_stat if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED_AT


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    except OverflowError:
        return False
    return True


def is_stale(entry: os.DirEntry[str], started_at: float) -> bool:
    """Whether a folder entry is a staged file that a killed apply left behind."""
    match = STAGED_NAME.fullmatch(entry.name)
    if match is None:
        return False
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    pid = match.group("pid")
    if pid is not None:
        return int(pid) != os.getpid() and not _running(int(pid))
    return info.st_mtime < started_at


def remove_stale_files(folder: Path) -> list[str]:
    """Remove the staged files a killed apply left in `folder` (see is_stale); the names
    removed. Never raises: a file that cannot be removed is left for a later apply."""
    removed: list[str] = []
    started_at = process_started_at()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if is_stale(entry, started_at):
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(entry.name)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the folder's entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_hash(path: Path) -> str | None:
    try:
        return sha256(path.read_bytes())
    except FileNotFoundError:
        return None


def write(
    checked: CheckedPatch, backup: bool = False, on_file: Callable[[str], None] | None = None
) -> None:
    """Write a checked patch: stage every file, re-check the originals, then rename.

    Raises FileChanged (and writes nothing) when a file changed since `check` read it.
    With `backup`, each original is kept beside it as FILE.orig.
    """
    for folder in {c.path.parent for c in checked.files}:
        remove_stale_files(folder)
    staged: dict[Path, str] = {}
    try:
        for change in checked.files:
            if change.new_bytes is not None:
                staged[change.path] = _stage(change)
        for change in checked.files:
            if _current_hash(change.path) != change.old_hash:
                raise FileChanged(
                    f"{change.relative} changed on disk while the patch was being written:"
                    " nothing was written"
                )
        done: list[tuple[FileChange, Path | None]] = []
        try:
            for change in checked.files:
                saved = _keep_original(change)
                if change.kind == "delete":
                    change.path.unlink()
                else:
                    os.replace(staged.pop(change.path), change.path)
                done.append((change, saved))
                if on_file is not None:
                    on_file(change.relative)
        except BaseException:
            _roll_back(done)
            raise
        for folder in {c.path.parent for c in checked.files}:
            _fsync_dir(folder)
        for change, saved in done:
            if saved is None:
                continue
            if backup:
                os.replace(saved, change.path.with_name(change.path.name + BACKUP_SUFFIX))
            else:
                saved.unlink(missing_ok=True)
    finally:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)


def _keep_original(change: FileChange) -> Path | None:
    """A hard link (or a copy) of the original under a unique hidden name: what a failed
    rename rolls back to, and what --backup keeps."""
    if change.kind == "create":
        return None
    fd, name = tempfile.mkstemp(prefix=_staged_prefix(change.path), suffix=".cromwell-old",
                                dir=change.path.parent)
    os.close(fd)
    saved = Path(name)
    saved.unlink()
    try:
        os.link(change.path, saved)
    except OSError:
        shutil.copy2(change.path, saved)
    return saved


def _roll_back(done: list[tuple[FileChange, Path | None]]) -> None:
    for change, saved in reversed(done):
        if change.kind == "create":
            change.path.unlink(missing_ok=True)
        elif saved is not None:
            os.replace(saved, change.path)


def apply_patch(
    diff: str,
    root: Path | str = ".",
    *,
    dry_run: bool = False,
    backup: bool = False,
    expected: Mapping[str, str] | None = None,
) -> CheckedPatch:
    """Check `diff` against the files under `root` and, unless `dry_run`, write it."""
    checked = check(diff, root, expected)
    if not dry_run:
        write(checked, backup=backup)
    return checked
