"""Real edits from a repository's history: `git log -p` parsed into (before, after, message)
per changed file.

The log is asked for with a context larger than any file (`-U<n>`), so each file's single
hunk holds the whole file: "before" is its context and deleted lines, "after" its context and
added lines, and no second git call per file is needed. Merges are skipped (their diff is
against which parent?), and so are binary files, renames without content change, and files
beyond the size limit.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .edit_example import COMMIT, EditExample, example_from_texts, split_lines

_RECORD = "\x1e"  # starts each commit in the formatted log
_FIELD = "\x1f"  # separates the header fields
_FULL_FILE_CONTEXT = 1_000_000  # lines of context: more than any file we keep


@dataclass(frozen=True)
class FileChange:
    commit: str
    path: str
    message: str
    before: str  # "" for a file the commit created
    after: str  # "" for a file the commit deleted


def _git(repo: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["git", "-C", str(repo), "-c", "core.quotepath=off", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def commits(
    repo: str | Path,
    max_commits: int | None = None,
    paths: Sequence[str] = (),
    extensions: Sequence[str] = (".py",),
    max_file_chars: int = 200_000,
) -> Iterator[FileChange]:
    """Yield each file changed by each non-merge commit reachable from HEAD, newest first."""
    root = Path(repo)
    if not (root / ".git").exists() and not root.joinpath("HEAD").exists():
        raise ValueError(f"{str(repo)!r} is not a git repository (no .git)")
    args = ["log", "-p", "--no-merges", "--no-color", "--no-ext-diff", "--no-renames",
            f"-U{_FULL_FILE_CONTEXT}", f"--format={_RECORD}%H{_FIELD}%B{_FIELD}"]
    if max_commits is not None:
        args.append(f"-n{max_commits}")
    args += ["--", *paths]
    proc = _git(root, *args)
    assert proc.stdout is not None
    try:
        for record in _records(proc.stdout):
            yield from _parse_record(record, extensions, max_file_chars)
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
        if code not in (0, -13) and not stderr.startswith("fatal: your current branch"):
            # -13: we stopped reading early (SIGPIPE), which is not an error.
            raise ValueError(f"git log failed in {str(repo)!r}: {stderr.strip()}")


def _records(stream) -> Iterator[str]:
    """Split the log into per-commit records without holding the whole log in memory."""
    pending = ""
    while chunk := stream.read(1 << 16):
        pending += chunk.decode("utf-8", "surrogateescape")
        *done, pending = pending.split(_RECORD)
        yield from (r for r in done if r)
    if pending:
        yield pending


def _parse_record(
    record: str, extensions: Sequence[str], max_file_chars: int
) -> Iterator[FileChange]:
    commit, message, patch = record.split(_FIELD, 2)
    for block in ("\n" + patch).split("\ndiff --git ")[1:]:
        change = _parse_file_diff(block, commit.strip(), message.strip())
        if change is None or not change.path.endswith(tuple(extensions)):
            continue
        if max(len(change.before), len(change.after)) <= max_file_chars:
            yield change


def _strip_prefix(name: str) -> str | None:
    if name == "/dev/null":
        return None
    return name[2:] if name[:2] in ("a/", "b/") else name


def _parse_file_diff(block: str, commit: str, message: str) -> FileChange | None:
    lines = block.split("\n")
    old_path = new_path = None
    i = 1
    while i < len(lines) and not lines[i].startswith("@@"):
        line = lines[i]
        if line.startswith("Binary files "):
            return None
        if line.startswith("--- "):
            old_path = _strip_prefix(line[4:])
        elif line.startswith("+++ "):
            new_path = _strip_prefix(line[4:])
        i += 1
    if i >= len(lines) or (old_path is None and new_path is None):
        return None  # mode change, empty file, or a header-only entry
    before: list[str] = []
    after: list[str] = []
    before_eol = after_eol = True
    last = ""
    for line in lines[i:]:
        if line.startswith("@@") or not line:
            continue
        tag, text = line[0], line[1:]
        if tag == " ":
            before.append(text)
            after.append(text)
        elif tag == "-":
            before.append(text)
        elif tag == "+":
            after.append(text)
        elif tag == "\\":  # "\ No newline at end of file" applies to the line just read
            if last in (" ", "-"):
                before_eol = False
            if last in (" ", "+"):
                after_eol = False
            continue
        last = tag
    return FileChange(
        commit=commit,
        path=new_path or old_path or "",
        message=message,
        before=_join(before, before_eol) if old_path else "",
        after=_join(after, after_eol) if new_path else "",
    )


def _join(lines: list[str], final_newline: bool) -> str:
    if not lines:
        return ""
    return "\n".join(lines) + ("\n" if final_newline else "")


def commit_examples(
    repo: str | Path,
    max_commits: int | None = None,
    max_region_lines: int = 80,
    context_lines: int | None = 200,
    **kwargs,
) -> Iterator[EditExample]:
    """Commits as edit examples: the commit message is the instruction, the changed lines the
    region. Deletions of whole files, and changes spanning more than `max_region_lines`, are
    left out: neither is an edit a model should learn to write from a message. Prefix and
    suffix keep at most `context_lines` lines (None: the whole file), so a long history
    held in memory costs about its changes, not its files."""
    for change in commits(repo, max_commits, **kwargs):
        if not change.after or change.before == change.after:
            continue
        example = example_from_texts(
            COMMIT, change.path, change.message, change.before, change.after,
            meta={"commit": change.commit},
        )
        if example.region_before.count("\n") > max_region_lines \
                or example.region_after.count("\n") > max_region_lines:
            continue
        if context_lines is not None:
            head = split_lines(example.prefix)[-context_lines:] if context_lines else []
            tail = split_lines(example.suffix)[:context_lines]
            example = replace(example, prefix="".join(head), suffix="".join(tail))
        yield example
