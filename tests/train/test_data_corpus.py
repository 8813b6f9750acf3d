"""Corpus: sources, dedup (exact, normalised, near), and the held-out split by path."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from engine.data.corpus import build_index, folder_source, git_source
from engine.data.dedup import EXACT, NEAR, NORMALISED, Deduplicator, exact_hash
from engine.data.pipeline import code_corpus
from engine.data.split import HELDOUT, TRAIN, is_heldout, path_fraction, split_of

STDLIB = Path(sysconfig.get_paths()["stdlib"])
STDLIB_FILES = ("textwrap.py", "shlex.py", "json/decoder.py", "colorsys.py", "bisect.py")


def _heldout_name(fraction: float, want: bool, stem: str = "f") -> str:
    """The first name stem_N.py whose split is `want` (held out or not)."""
    return next(f"{stem}_{i}.py" for i in range(10_000)
                if is_heldout(f"{stem}_{i}.py", fraction) == want)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    for name in STDLIB_FILES:
        shutil.copy(STDLIB / name, root / "pkg" / name.replace("/", "_"))
    text = (STDLIB / "textwrap.py").read_text()
    (root / "copy_exact.py").write_text(text)
    (root / "copy_spaces.py").write_text("\n".join("  " + ln + "   " for ln in text.split("\n")))
    near = text.replace("def dedent(text):", "def dedent(text, strict=False):")
    (root / "copy_near.py").write_text(near)
    (root / "tiny.py").write_text("x = 1\n")  # too small to teach anything
    (root / "binary.py").write_bytes(b"\x00\x01\x02" * 40)
    (root / "notes.txt").write_text("not code " * 20)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "cached.py").write_text(text)
    return root


def test_folder_source_lists_code_files_only(folder: Path) -> None:
    source = folder_source(folder)
    assert "notes.txt" not in source.relpaths
    assert not any(p.startswith("__pycache__") for p in source.relpaths)
    assert "pkg/json_decoder.py" in source.relpaths
    assert list(source.relpaths) == sorted(source.relpaths)


def test_index_drops_exact_normalised_and_near_duplicates(folder: Path) -> None:
    index = build_index([folder_source(folder)], heldout_fraction=0.0)
    kept = {e.relpath for e in index.entries}
    # textwrap.py and its three copies: exactly one survives.
    copies = {"pkg/textwrap.py", "copy_exact.py", "copy_spaces.py", "copy_near.py"}
    assert len(kept & copies) == 1
    assert index.dropped == {EXACT: 1, NORMALISED: 1, NEAR: 1}
    assert {"pkg/shlex.py", "pkg/json_decoder.py", "pkg/colorsys.py", "pkg/bisect.py"} <= kept
    assert "tiny.py" not in kept and "binary.py" not in kept
    entry = next(e for e in index.entries if e.relpath == "pkg/shlex.py")
    assert entry.read() == (STDLIB / "shlex.py").read_text()
    assert entry.sha256 == exact_hash(entry.read())


def test_near_dedup_can_be_switched_off(folder: Path) -> None:
    index = build_index([folder_source(folder)], heldout_fraction=0.0, near_dedup=False)
    assert NEAR not in index.dropped
    assert "copy_near.py" in {e.relpath for e in index.entries}


def test_deduplicator_reasons() -> None:
    base = "\n".join(f"def f{i}(a, b):\n    return a * {i} + b" for i in range(60))
    dedup = Deduplicator()
    assert dedup.check_and_add(base) is None
    assert dedup.check_and_add(base) == EXACT
    assert dedup.check_and_add(base.replace("    ", "  ") + "\n\n") == NORMALISED
    assert dedup.check_and_add(base.replace("f3(", "g3(")) == NEAR
    other = "\n".join(f"class C{i}:\n    size = {i * 7}" for i in range(60))
    assert dedup.check_and_add(other) is None
    assert len(dedup) == 2


def test_split_is_a_deterministic_function_of_the_path() -> None:
    paths = [f"pkg/module_{i}.py" for i in range(3000)]
    first = [split_of(p, 0.1) for p in paths]
    assert first == [split_of(p, 0.1) for p in reversed(paths)][::-1]
    share = first.count(HELDOUT) / len(first)
    assert 0.07 < share < 0.13
    assert split_of("./pkg/module_1.py", 0.1) == split_of("pkg/module_1.py", 0.1)
    assert path_fraction("a.py", salt="one") != path_fraction("a.py", salt="two")
    with pytest.raises(ValueError, match="relative path"):
        split_of("/abs/a.py")
    with pytest.raises(ValueError, match="fraction"):
        is_heldout("a.py", 1.5)


def test_heldout_files_and_their_copies_never_reach_training(tmp_path: Path) -> None:
    fraction = 0.3
    held, trained = _heldout_name(fraction, True), _heldout_name(fraction, False, "g")
    text = (STDLIB / "colorsys.py").read_text()
    (tmp_path / held).write_text(text)
    (tmp_path / trained).write_text(text)  # same content under a training path
    near = _heldout_name(fraction, False, "h")
    (tmp_path / near).write_text(text.replace("def rgb_to_yiq(r, g, b):",
                                              "def rgb_to_yiq(r, g, b, scale=1.0):"))
    (tmp_path / "other.py").write_text((STDLIB / "bisect.py").read_text())
    index = build_index([folder_source(tmp_path)], heldout_fraction=fraction)
    train, heldout = index.split(TRAIN), index.split(HELDOUT)
    assert held in index.heldout_paths()
    assert trained not in {e.relpath for e in train}
    assert near not in {e.relpath for e in train}  # a near copy leaks as much as a copy
    assert {e.relpath for e in train}.isdisjoint(e.relpath for e in heldout)
    assert {e.sha256 for e in train}.isdisjoint(e.sha256 for e in heldout)
    # Saved and loaded, the index is the same.
    index.save(tmp_path / "index.json")
    assert type(index).load(tmp_path / "index.json") == index


def test_corpus_from_stdlib_folder_and_git_repo(tmp_path: Path, folder: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tracked.py").write_text("def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\n")
    shutil.copy(STDLIB / "statistics.py", repo / "untracked.py")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "tracked.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "add"], check=True)
    assert git_source(repo).relpaths == ("tracked.py",)
    index = code_corpus(folders=[folder], repos=[repo], stdlib=True, near_dedup=False,
                        workers=0)
    sources = {e.source for e in index.entries}
    assert sources == {"stdlib", "proj", "repo"}
    assert index.stats()["train_files"] > 500
    # stdlib's own textwrap.py came first, so the folder's copies of it are duplicates.
    assert not any(e.source == "proj" and "textwrap" in e.relpath for e in index.entries)
    with pytest.raises(ValueError, match="not a git repository"):
        git_source(folder)
    with pytest.raises(ValueError, match="does not exist"):
        folder_source(tmp_path / "missing")


def test_a_file_changed_since_indexing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text((STDLIB / "bisect.py").read_text())
    entry = build_index([folder_source(tmp_path)], heldout_fraction=0.0).entries[0]
    assert entry.read() == (STDLIB / "bisect.py").read_text()
    (tmp_path / "a.py").write_text("def changed():\n    return 'not what was indexed'\n")
    with pytest.raises(ValueError, match="changed since it was indexed"):
        entry.read()


def test_index_is_the_same_with_worker_processes(folder: Path) -> None:
    serial = build_index([folder_source(folder)], heldout_fraction=0.3)
    parallel = build_index([folder_source(folder)], heldout_fraction=0.3, workers=2)
    assert parallel == serial
