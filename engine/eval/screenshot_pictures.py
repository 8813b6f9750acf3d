"""The pictures `cromwell eval screenshot` reads: held-out renders, or a folder of real ones.

Held-out renders: windows of standard-library files held out of training by their path
(`split.is_heldout`, the corpus training reads), rendered the way the held-out split renders
(`render.render_example(..., split=HELDOUT)`: faces and sizes training never uses, themes light
and dark). Every draw comes from a generator seeded by the seed and the file's path, so the
same install gives the same pictures on every run.

A folder of real screenshots: NAME.png (or .jpg) with NAME.txt, the exact text it shows, and
optionally NAME.json, what is known about it ({"theme": ..., "zoom": ..., "font": ...,
"source": "vscode"}); the report groups results by those keys. A "path" or "suffix" key there
names the file type (default .py); those two are not grouping keys.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.data.render import RenderedCode

DEFAULT_TASKS = 24
DEFAULT_SEED = 0
# The side the vision model was trained on (training's --max-image-side): heldout_tasks' and
# screenshot_loss's default, small snippets of a few lines.
DEFAULT_MAX_SIDE = 256
# The command's default: pictures of up to ~40 lines, an editor window's worth, as the reader
# reads them.
READ_MAX_SIDE = 1024
SALT = "cromwell-eval-screenshot"
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Metadata that names the file or measures the picture, not a condition it was taken in
# (scripts/editor_screenshots.py writes both kinds).
NOT_GROUPED = ("path", "suffix", "first_line", "last_line", "lines", "width", "height",
               "text_left", "column_width", "line_height")


@dataclass(frozen=True)
class ScreenshotTask:
    """A held-out render."""

    task_id: str  # "relpath@k": the picture of that file drawn in round k
    shot: RenderedCode  # the picture, (H, W, 3) uint8, and the code it shows: the target
    meta: dict[str, str]  # font, size, theme, tone ("light" or "dark": the background)

    @property
    def image(self) -> np.ndarray:
        return self.shot.image

    @property
    def text(self) -> str:
        return self.shot.text

    @property
    def suffix(self) -> str:
        return Path(self.shot.path).suffix or ".py"


@dataclass(frozen=True)
class FolderPicture:
    """A screenshot from a folder, with the text it shows."""

    task_id: str  # the file's name
    image: np.ndarray  # (H, W, 3) uint8 at the file's resolution
    text: str
    suffix: str
    meta: dict[str, str]  # NAME.json's keys (values as text), but "path" and "suffix"


Picture = ScreenshotTask | FolderPicture


def _order_key(seed: int, relpath: str) -> str:
    return hashlib.sha256(f"{SALT}\0{seed}\0{relpath}".encode()).hexdigest()


def heldout_tasks(count: int = DEFAULT_TASKS, seed: int = DEFAULT_SEED,
                  max_side: int = DEFAULT_MAX_SIDE) -> list[ScreenshotTask]:
    """`count` held-out pictures, the same ones for the same (count, seed, max_side): one per
    file in a seeded order, then a second round, and so on, until there are enough."""
    try:
        from engine.data.render import render_example, themes
    except ImportError as err:
        raise RuntimeError(f"the screenshot evaluation renders code as training does: it "
                           f"needs the train extra (pip install 'cromwell[train]'): {err}"
                           ) from None
    from engine.data.corpus import heldout_stdlib_files
    from engine.data.split import HELDOUT

    if count < 1:
        raise ValueError(f"the screenshot evaluation needs at least one task, got {count}")
    dark = set(themes()["dark"])
    files = sorted(heldout_stdlib_files(), key=lambda f: _order_key(seed, f[0]))
    if not files:
        raise ValueError("no held-out standard-library file to render")
    tasks: list[ScreenshotTask] = []
    for round_ in range(8):
        for relpath, text in files:
            rng = random.Random(f"{SALT}:{seed}:{round_}:{relpath}")
            shot = render_example(relpath, text, rng, HELDOUT, max_side)
            if shot is None:
                continue
            style = shot.style
            meta = {"font": style.font_name, "size": str(style.size), "theme": style.theme,
                    "tone": "dark" if style.theme in dark else "light"}
            tasks.append(ScreenshotTask(f"{relpath}@{round_}", shot, meta))
            if len(tasks) == count:
                return tasks
    raise ValueError(f"only {len(tasks)} held-out pictures could be drawn, {count} asked")


def _metadata(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a JSON object of metadata: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object of metadata")
    return data


def folder_pictures(folder: str | Path, limit: int | None = None) -> list[FolderPicture]:
    """The pictures of `folder` in name order (the first `limit`), each with its NAME.txt."""
    from engine.reader.read import load_pixels

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder of screenshots")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise ValueError(f"{root}: no picture ({', '.join(PICTURE_SUFFIXES)}) in it")
    pictures: list[FolderPicture] = []
    for image in files[:limit]:
        target = image.with_suffix(".txt")
        if not target.is_file():
            raise ValueError(f"{image}: no {target.name} beside it with the text it shows")
        data = _metadata(image.with_suffix(".json"))
        suffix = str(data.get("suffix") or Path(str(data.get("path", ""))).suffix or ".py")
        meta = {k: str(v) for k, v in sorted(data.items())
                if k not in NOT_GROUPED and isinstance(v, str | int | float | bool)}
        text = target.read_text(encoding="utf-8")
        pictures.append(FolderPicture(image.name, load_pixels(image), text,
                                      suffix if suffix.startswith(".") else f".{suffix}", meta))
    return pictures
