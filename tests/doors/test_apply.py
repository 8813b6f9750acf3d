"""Safe patching on disk: all or nothing, formats kept, stale files refused, crash-safe."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cromwell_lsp.apply import FileChanged, apply_patch, check, sha256
from cromwell_lsp.patches import PatchError, StaleDocument, unified_diff


def _diff(root: Path, changes: dict[str, tuple[str, str]]) -> str:
    return "".join(unified_diff(old, new, name) for name, (old, new) in changes.items())


def test_multi_file_patch_applies_and_keeps_mode(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    a, b = tmp_path / "a.py", tmp_path / "pkg" / "b.py"
    a.write_text("x = 1\ny = 2\n")
    b.write_text("def f():\n    return 1\n")
    os.chmod(b, 0o755)
    diff = _diff(tmp_path, {"a.py": ("x = 1\ny = 2\n", "x = 1\ny = 3\n"),
                            "pkg/b.py": ("def f():\n    return 1\n", "def f():\n    return 2\n")})
    checked = apply_patch(diff, tmp_path)
    assert [f["path"] for f in checked.summary()] == ["a.py", "pkg/b.py"]
    assert a.read_text() == "x = 1\ny = 3\n"
    assert b.read_text() == "def f():\n    return 2\n"
    assert b.stat().st_mode & 0o777 == 0o755
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temporary file left


def test_one_bad_hunk_writes_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one\n")
    b.write_text("two\n")
    diff = _diff(tmp_path, {"a.txt": ("one\n", "ONE\n"), "b.txt": ("not two\n", "TWO\n")})
    with pytest.raises(StaleDocument, match="b.txt"):
        apply_patch(diff, tmp_path)
    assert a.read_text() == "one\n" and b.read_text() == "two\n"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("one\n")
    checked = apply_patch(_diff(tmp_path, {"a.txt": ("one\n", "1\n")}), tmp_path, dry_run=True)
    assert checked.files[0].new_bytes == b"1\n"
    assert a.read_text() == "one\n"


def test_crlf_bom_and_encoding_are_kept(tmp_path: Path) -> None:
    crlf, bom, latin = tmp_path / "crlf.txt", tmp_path / "bom.txt", tmp_path / "latin.txt"
    crlf.write_bytes(b"a\r\nb\r\nc\r\n")
    bom.write_bytes(codecs.BOM_UTF8 + "é\nb\n".encode())
    latin.write_bytes("café = 1\nb = 2\n".encode("cp1252"))
    diff = _diff(tmp_path, {"crlf.txt": ("a\nb\nc\n", "a\nB\nc\n"),
                            "bom.txt": ("é\nb\n", "é\nB\n"),
                            "latin.txt": ("café = 1\nb = 2\n", "café = 1\nb = 3\n")})
    apply_patch(diff, tmp_path)
    assert crlf.read_bytes() == b"a\r\nB\r\nc\r\n"
    assert bom.read_bytes() == codecs.BOM_UTF8 + "é\nB\n".encode()
    assert latin.read_bytes() == "café = 1\nb = 3\n".encode("cp1252")


def test_changed_file_is_refused_by_hash(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("one\n")
    old_hash = sha256(a.read_bytes())
    a.write_text("one\n\n")  # changed after the diff was computed; the hunk still applies
    with pytest.raises(FileChanged, match="changed since"):
        apply_patch(_diff(tmp_path, {"a.txt": ("one\n", "1\n")}), tmp_path,
                    expected={"a.txt": old_hash})
    assert a.read_text() == "one\n\n"


def test_backup_keeps_the_original(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("one\n")
    apply_patch(_diff(tmp_path, {"a.txt": ("one\n", "1\n")}), tmp_path, backup=True)
    assert a.read_text() == "1\n"
    assert (tmp_path / "a.txt.orig").read_text() == "one\n"


def test_create_and_delete_files(tmp_path: Path) -> None:
    gone = tmp_path / "gone.txt"
    gone.write_text("bye\n")
    diff = ("--- /dev/null\n+++ b/new/hello.txt\n@@ -0,0 +1 @@\n+hello\n"
            "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n")
    apply_patch(diff, tmp_path)
    assert (tmp_path / "new" / "hello.txt").read_text() == "hello\n"
    assert not gone.exists()


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd"])
def test_paths_outside_the_root_are_refused(tmp_path: Path, name: str) -> None:
    diff = f"--- a/{name}\n+++ b/{name}\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(PatchError, match="inside|outside"):
        check(diff, tmp_path)


def test_garbage_is_not_a_diff(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match="no file changes|not a valid"):
        check("hello world\n", tmp_path)


# --- a process killed in the middle of a multi-file apply --------------------------------

_APPLIER = """
import sys
from pathlib import Path
from cromwell_lsp.apply import apply_patch
apply_patch(Path(sys.argv[1]).read_text(), sys.argv[2])
"""


@pytest.mark.parametrize("kill_when", ["staging", "renaming"])
def test_killed_apply_leaves_each_file_old_or_new(tmp_path: Path, kill_when: str) -> None:
    """SIGKILL while the files are staged, or while they are being renamed: every file is
    then byte for byte its old or its new version, never a mix or a truncation."""
    n_files, size = 60, 200_000
    work = tmp_path / "tree"
    work.mkdir()
    olds, news, parts = {}, {}, []
    for i in range(n_files):
        old = "".join(f"line {j} of file {i}\n" for j in range(size // 20))
        new = old.replace("line 5 of", "LINE 5 of").replace("line 900 of", "LINE 900 of")
        (work / f"f{i:03}.txt").write_text(old)
        olds[i], news[i] = old.encode(), new.encode()
        parts.append(unified_diff(old, new, f"f{i:03}.txt"))
    patch = tmp_path / "big.diff"
    patch.write_text("".join(parts))
    proc = subprocess.Popen([sys.executable, "-c", _APPLIER, str(patch), str(work)])
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            names = os.listdir(work)
            staged = any(n.endswith(".cromwell-tmp") for n in names)
            renamed = any(n.endswith(".cromwell-old") for n in names)
            if (kill_when == "staging" and staged) or (kill_when == "renaming" and renamed):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0005)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the apply ended before it could be killed"
    states = []
    for i in range(n_files):
        data = (work / f"f{i:03}.txt").read_bytes()
        assert data in (olds[i], news[i]), f"f{i:03}.txt is neither old nor new"
        states.append(data == news[i])
    if kill_when == "staging":
        assert not any(states)  # nothing is renamed before every file is staged
    # The next apply in that folder removes what the killed one left staged, and only that.
    (work / "z.txt").write_text("z\n")
    apply_patch(_diff(work, {"z.txt": ("z\n", "Z\n")}), work)
    assert not [n for n in os.listdir(work) if ".cromwell-" in n]


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_the_next_apply_removes_stale_staged_files_and_nothing_else(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod00.py").write_text("a = 1\n")
    (tmp_path / "top.py").write_text("t = 1\n")
    dead = _dead_pid()
    long_ago = time.time() - 3600
    stale = [  # a killed apply's leftovers: a name from before the writer's id was in it,
        # older than this process, and names whose writer is no longer running
        ".mod00.py.k2aj3k3y.cromwell-tmp",
        ".mod00.py.q_8zz0a1.cromwell-old",
        f".other.py.p{dead}.abcdefgh.cromwell-tmp",
    ]
    kept = [
        ".mod00.py.k2aj3k3y.cromwell-tmp.bak",  # look-alikes that are not ours
        "mod00.py.k2aj3k3y.cromwell-tmp",
        ".mod00.py.SHORT.cromwell-tmp",
        ".mod00.py.k2aj3k3y.cromwell-tmpx",
        f".mod00.py.p{os.getpid()}.abcdefgh.cromwell-tmp",  # a running writer's
        ".fresh.py.abcdefgh.cromwell-tmp",  # newer than this process: maybe another's
    ]
    for name in stale + kept:
        (pkg / name).write_text("leftover\n")
    for name in stale + kept[:-1]:
        os.utime(pkg / name, (long_ago, long_ago))
    (pkg / ".dir.py.abcdefgh.cromwell-tmp").mkdir()  # the right name, but a folder
    os.utime(pkg / ".dir.py.abcdefgh.cromwell-tmp", (long_ago, long_ago))
    (tmp_path / ".top.py.k2aj3k3y.cromwell-tmp").write_text("another folder's\n")
    os.utime(tmp_path / ".top.py.k2aj3k3y.cromwell-tmp", (long_ago, long_ago))

    apply_patch(_diff(tmp_path, {"pkg/mod00.py": ("a = 1\n", "a = 2\n")}), tmp_path)

    assert (pkg / "mod00.py").read_text() == "a = 2\n"
    left = set(os.listdir(pkg))
    assert not left & set(stale)
    assert left == {"mod00.py", ".dir.py.abcdefgh.cromwell-tmp", *kept}
    assert (tmp_path / ".top.py.k2aj3k3y.cromwell-tmp").exists()  # not the folder applied to
