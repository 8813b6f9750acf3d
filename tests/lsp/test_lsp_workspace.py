"""The workspace index, on real files: .gitignore rules, binaries, size limit, encodings,
recency, and staying current as files change."""

from __future__ import annotations

from pathlib import Path

import pytest

from cromwell_lsp.workspace import FileRefused, WorkspaceIndex, detect_encoding, read_text


def make_tree(root: Path) -> None:
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "src" / "main.py").write_text("import pkg.mod\n")
    (root / "build").mkdir()
    (root / "build" / "gen.py").write_text("generated = True\n")
    (root / "logs").mkdir()
    (root / "logs" / "run.log").write_text("log\n")
    (root / "src" / "secret.txt").write_text("s\n")
    (root / ".gitignore").write_text("logs/\n*.tmp\n")
    (root / "src" / ".gitignore").write_text("secret.txt\n")
    (root / "data.bin").write_bytes(b"\x00\x01\x02\x03")
    (root / "big.py").write_text("a = 1\n" * 1000)
    (root / "note.tmp").write_text("tmp\n")
    (root / "latin1.txt").write_bytes(b'label = "caf\xe9 cr\xe8me"\n')
    (root / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")


def names(index: WorkspaceIndex, root: Path) -> list[str]:
    return [f.path.relative_to(root.resolve()).as_posix() for f in index.files()]


def test_index_respects_gitignore_binaries_and_size(tmp_path: Path):
    make_tree(tmp_path)
    index = WorkspaceIndex(max_file_bytes=2000)
    index.add_root(tmp_path)
    assert names(index, tmp_path) == ["latin1.txt", "src/main.py", "src/pkg/mod.py"]
    assert [p.name for p in index.images()] == ["shot.png"]
    latin = next(f for f in index.files() if f.path.name == "latin1.txt")
    assert latin.encoding not in ("utf-8", "binary")
    assert index.text(tmp_path / "latin1.txt") == 'label = "café crème"\n'


def test_index_follows_file_events(tmp_path: Path):
    make_tree(tmp_path)
    index = WorkspaceIndex(max_file_bytes=2000)
    index.add_root(tmp_path)
    new = tmp_path / "src" / "new.py"
    new.write_text("y = 2\n")
    index.update(new)
    assert "src/new.py" in names(index, tmp_path)
    assert index.text(new) == "y = 2\n"
    new.write_text("y = 3\n")
    index.update(new)
    assert index.text(new) == "y = 3\n"  # the cache follows the modification
    new.unlink()
    index.remove(new)
    assert "src/new.py" not in names(index, tmp_path)
    # A changed .gitignore re-decides what is in.
    (tmp_path / "src" / ".gitignore").write_text("pkg/\n")
    index.update(tmp_path / "src" / ".gitignore")
    assert names(index, tmp_path) == ["latin1.txt", "src/main.py", "src/secret.txt"]
    index.remove_root(tmp_path)
    assert index.files() == []


def test_recency_ranks_latest_events(tmp_path: Path):
    index = WorkspaceIndex()
    index.touch(tmp_path / "a.py", edited=False)
    index.touch(tmp_path / "b.py", edited=True)
    index.touch(tmp_path / "a.py", edited=True)
    recency = index.recency()
    assert recency[(tmp_path / "a.py").resolve()] > recency[(tmp_path / "b.py").resolve()]


def test_read_text_refuses_with_reasons(tmp_path: Path):
    (tmp_path / "b.bin").write_bytes(b"ab\x00cd")
    with pytest.raises(FileRefused, match="binary"):
        read_text(tmp_path / "b.bin", 100)
    (tmp_path / "big.txt").write_text("x" * 200)
    with pytest.raises(FileRefused, match="over the 100-byte limit"):
        read_text(tmp_path / "big.txt", 100)
    with pytest.raises(FileRefused, match="cannot read"):
        read_text(tmp_path / "none.txt", 100)
    (tmp_path / "u16.txt").write_text("hé 😋", encoding="utf-16")
    assert read_text(tmp_path / "u16.txt", 100) == ("hé 😋", "utf-16")


def test_detect_encoding():
    assert detect_encoding("hé".encode()) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbfx") == "utf-8-sig"
    assert detect_encoding('name = "café"\n'.encode("cp1252")) == "cp1252"
