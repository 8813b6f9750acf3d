"""Every `cromwell` command, given bad input, fails with a one-line message and no traceback.

The cases are made by walking the click command tree: an unknown flag for every command, and
for every option or argument the bad values its type must refuse (a missing file, a folder
where a file is expected and the reverse, a word or an out-of-range number, an unknown choice);
then cases click's types cannot see (a file that is no model, a cursor outside the file, a
path that is no run folder). Each runs the real command in its own process; every case fails
on its arguments or on the file named, before any model could load."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from doors_helpers import cromwell_env

from cromwell_cli.main import main

SCRATCH = Path(tempfile.mkdtemp(prefix="cromwell-bad-input-"))
MISSING = str(SCRATCH / "missing.py")
FOLDER = str(SCRATCH / "folder")
TEXT = str(SCRATCH / "app.py")  # a file that is text: no model, no picture, no index
SMALL = str(SCRATCH / "ten.py")  # ten lines
os.makedirs(FOLDER, exist_ok=True)
Path(TEXT).write_text("import os\n\nprint(os.getcwd())\n")
Path(SMALL).write_text("".join(f"x{i} = {i}\n" for i in range(10)))


def bad_values(param: click.Parameter) -> list[tuple[str, str]]:
    """(what, value) pairs the parameter's type must refuse."""
    kind = param.type
    if isinstance(kind, click.Path):
        out = []
        if kind.exists:
            out.append(("missing", MISSING))
        if not kind.dir_okay:
            out.append(("folder", FOLDER))
        if not kind.file_okay:
            out.append(("file", TEXT))
        return out
    if isinstance(kind, click.File):
        return [("missing", MISSING), ("folder", FOLDER)]
    if isinstance(kind, click.Choice):
        return [("choice", "no-such-choice")]
    if isinstance(kind, click.types._NumberRangeBase):
        out = [("word", "x")]
        if kind.min is not None:
            out.append(("below", str(kind.min - 1)))
        if kind.max is not None:
            out.append(("above", str(kind.max + 1)))
        return out
    if kind in (click.INT, click.FLOAT):
        return [("word", "x")]
    return []


def tree_cases(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    cases = [(" ".join(path) + " --no-such-flag", [*path, "--no-such-flag"])]
    for param in command.params:
        if isinstance(param, click.Option) and param.is_flag:
            continue
        for what, value in bad_values(param):
            if isinstance(param, click.Argument):
                if isinstance(command, click.Command) and "-i" in [
                        o for p in command.params for o in getattr(p, "opts", [])]:
                    argv = [*path, value, "-i", "x"]
                else:
                    argv = [*path, value]
            else:
                argv = [*path, param.opts[0], value]
            cases.append((f"{' '.join(path)} {param.name}={what}", argv))
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            cases += tree_cases(sub, (*path, name))
    return cases


# What click's types cannot see: the file's content, the cursor against the file, the flags
# a kind needs, the argparse options of `cromwell train`.
SEMANTIC = [
    ("complete line outside", ["complete", SMALL, "--line", "999", "--column", "1"]),
    ("complete column outside", ["complete", SMALL, "--line", "2", "--column", "99"]),
    ("edit lines outside", ["edit", SMALL, "-i", "x", "--lines", "5:99"]),
    ("edit lines word", ["edit", SMALL, "-i", "x", "--lines", "a:b"]),
    ("bench kernels threads word", ["bench", "kernels", "--threads", "x"]),
    ("bench decode model text", ["bench", "decode", "--model", TEXT]),
    ("generate model text", ["generate", "--model", TEXT, "--prompt", "hi"]),
    ("eval humaneval model text", ["eval", "humaneval", "--model", TEXT]),
    ("eval infill model text", ["eval", "infill", "--model", TEXT]),
    ("eval edits model text", ["eval", "edits", "--model", TEXT]),
    ("eval screenshot model text", ["eval", "screenshot", "--model", TEXT]),
    ("complete model text", ["complete", SMALL, "--line", "1", "--column", "1", "--model", TEXT]),
    ("info model text", ["info", "--model", TEXT]),
    ("info model missing", ["info", "--model", MISSING]),
    ("info config missing", ["info", "--config", MISSING]),
    ("data heldout text", ["data", "heldout", TEXT]),
    ("data preview edit no index", ["data", "preview", "edit"]),
    ("data preview commit no repo", ["data", "preview", "commit"]),
    ("data preview chart no out", ["data", "preview", "chart"]),
    ("data preview fim index text", ["data", "preview", "fim", "--index", TEXT]),
    ("apply text", ["apply", TEXT, "--root", FOLDER, "--dry-run"]),
    ("export checkpoint missing", ["export", "--checkpoint", MISSING, "--out",
                                   str(SCRATCH / "out.gguf")]),
    ("serve public without token", ["serve", "--host", "0.0.0.0"]),
    ("train steps word", ["train", "--steps", "x"]),
    ("train plot text", ["train", "plot", TEXT]),
    ("train plot missing", ["train", "plot", MISSING]),
    ("train plot folder", ["train", "plot", FOLDER]),
    ("train plot unknown flag", ["train", "plot", FOLDER, "--no-such-flag"]),
    ("train finetune unknown flag", ["train", "finetune", "--no-such-flag"]),
]

CASES = dict(tree_cases(main, ()) + SEMANTIC)
CASES = {name.strip(): argv for name, argv in CASES.items()}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cromwell_cli", *argv], capture_output=True,
                          text=True, env=cromwell_env(), timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case, run four at a time (each is a short process)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(run, CASES.values()), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_no_traceback(
        name: str, results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    out = results[name]
    both = out.stdout + out.stderr
    assert out.returncode != 0, both
    assert "Traceback" not in both, both
    last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
    assert last.startswith("Error: ") or ": error: " in last, both


def test_the_sweep_covers_every_command() -> None:
    covered = {" ".join(a for a in argv if not a.startswith(("-", "/")))
               for argv in CASES.values()}
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        assert any(c.startswith(name) for c in covered), name
