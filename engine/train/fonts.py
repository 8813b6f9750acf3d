"""Monospace fonts available offline, and their train / held-out split.

Where fonts come from, in order: the DejaVu Sans Mono faces matplotlib ships inside its package
(present wherever the `train` extra is installed, so tests never need a system package), then
whatever fontconfig lists as monospace (`fc-list :spacing=mono`), then the usual font folders.
Each face file (regular, bold, oblique...) counts as one font: they look different enough to
vary the pictures. A face is kept only if Pillow loads it and it really is fixed-pitch.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from .split import HELDOUT, TRAIN

FONT_SUFFIXES = (".ttf", ".otf")
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts",
                    "/System/Library/Fonts")
TRAIN_SIZES = (11, 12, 13, 14, 16, 18)
HELDOUT_SIZES = (15, 17)


@dataclass(frozen=True)
class Font:
    name: str  # the file's stem, e.g. "DejaVuSansMono-Bold": one name per face
    path: str


def _matplotlib_fonts() -> list[Path]:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return []
    ttf = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    return sorted(ttf.glob("*Mono*.ttf"))


def _fontconfig_fonts() -> list[Path]:
    if shutil.which("fc-list") is None:
        return []
    try:
        out = subprocess.run(["fc-list", ":spacing=mono", "file"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return sorted(Path(line.split(":")[0].strip()) for line in out.splitlines() if line.strip())


def _folder_fonts() -> list[Path]:
    found: list[Path] = []
    for folder in SYSTEM_FONT_DIRS:
        root = Path(folder)
        if root.is_dir():
            found += [p for p in root.rglob("*") if "mono" in p.name.lower()]
    return sorted(found)


def is_monospace(path: str | Path) -> bool:
    """Loads with Pillow and gives the same advance to narrow, wide and punctuation glyphs."""
    try:
        font = ImageFont.truetype(str(path), 20)
        widths = {round(font.getlength(ch), 3) for ch in "iMW_.m0"}
    except OSError:
        return False
    return len(widths) == 1


@functools.lru_cache(maxsize=1)
def available_fonts() -> tuple[Font, ...]:
    """Every usable monospace face on this machine, one per face name, sorted by name."""
    by_name: dict[str, Font] = {}
    for path in _matplotlib_fonts() + _fontconfig_fonts() + _folder_fonts():
        if path.suffix.lower() not in FONT_SUFFIXES or path.stem in by_name:
            continue
        if path.is_file() and is_monospace(path):
            by_name[path.stem] = Font(path.stem, str(path))
    return tuple(sorted(by_name.values(), key=lambda f: f.name))


def split_fonts(fonts: tuple[Font, ...], heldout_count: int = 1) -> dict[str, tuple[Font, ...]]:
    """Hold out the `heldout_count` faces whose name hashes lowest (never all of them: with a
    single face, evaluation differs from training by size only)."""
    if not fonts:
        raise ValueError(
            "no monospace font found: install the train extra (matplotlib ships DejaVu Sans "
            "Mono) or a font package such as fonts-dejavu-core"
        )
    ranked = sorted(fonts, key=lambda f: hashlib.sha256(f.name.encode()).hexdigest())
    count = min(heldout_count, len(fonts) - 1)
    heldout = {f.name for f in ranked[:count]}
    return {
        TRAIN: tuple(f for f in fonts if f.name not in heldout),
        HELDOUT: tuple(f for f in fonts if f.name in heldout) or fonts,
    }


def sizes_for(split: str) -> tuple[int, ...]:
    if split == TRAIN:
        return TRAIN_SIZES
    if split == HELDOUT:
        return HELDOUT_SIZES
    raise ValueError(f"split must be {TRAIN!r} or {HELDOUT!r}, got {split!r}")


@functools.lru_cache(maxsize=64)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)
