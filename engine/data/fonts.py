"""Monospace fonts available offline, grouped into families, and their train / held-out split.

Where fonts come from, in order: the DejaVu Sans Mono faces matplotlib ships inside its package
(present wherever the `train` extra is installed, so tests never need a system package), then
the font packages `make fonts` unpacks into the checkout's `.cache/fonts/root` (`font_roots`),
then whatever fontconfig lists as monospace (`fc-list :spacing=mono`), then the usual font
folders. A face (one file: regular, bold, oblique...) is kept only if Pillow loads it and it
really is fixed-pitch and not a hairline weight; the first file of each name wins.

Faces are grouped into families by the family name in the font itself, with weight and width
words dropped and known derivatives folded into the design they come from (Hack is DejaVu Sans
Mono's fork, Courier Prime and FreeMono are both Courier): the split holds out whole families,
so a held-out picture is in a design training never saw in any weight.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from .split import HELDOUT, TRAIN

FONT_SUFFIXES = (".ttf", ".otf")  # bitmap-only faces (.otb: Terminus) load at few sizes only
SYSTEM_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts",
                    "/System/Library/Fonts")
# Both splits draw from 10-28 px; a held-out size is one training never renders.
TRAIN_SIZES = (10, 11, 12, 13, 14, 16, 18, 20, 22, 24, 26, 28)
HELDOUT_SIZES = (15, 17, 19, 21, 23, 25, 27)
# Where `make fonts` unpacks Debian's font packages, relative to the checkout's root; beside
# $CROMWELL_HOME (the Makefile's is .cache/cromwell) too. $CROMWELL_FONTS overrides both.
CHECKOUT_FONTS = Path(".cache") / "fonts" / "root"
FAMILY_SALT = "cromwell-fonts-v1"
HELDOUT_FAMILIES = 2

# Weight, width and variant words a family name can end with (FreeType reports some faces
# as "Go Medium" or "JetBrains Mono NL"): none of them makes a different design.
_STYLE_WORDS = frozenset({
    "thin", "hairline", "extralight", "ultralight", "light", "book", "regular", "normal",
    "medium", "semibold", "demibold", "bold", "extrabold", "ultrabold", "black", "heavy",
    "retina", "condensed", "semi-condensed", "semicondensed", "narrow", "wide", "extended",
    "expanded", "nl", "italic", "oblique",
})
# Designs that ship under more than one family name: a face of one seen in training would
# leak the other into the held-out split.
RELATED_FAMILIES = {
    "Hack": "DejaVu Sans Mono",  # a fork of DejaVu Sans Mono
    "DejaVu LGC Sans Mono": "DejaVu Sans Mono",
    "Bitstream Vera Sans Mono": "DejaVu Sans Mono",  # DejaVu's parent
    "Cousine": "Liberation Mono",  # Liberation Mono 2 is Cousine
    "Anonymous Pro Minus": "Anonymous Pro",
    "Courier Prime Code": "Courier",
    "Courier Prime Sans": "Courier",
    "Courier Prime": "Courier",
    "FreeMono": "Courier",  # Nimbus Mono's, itself a Courier
    "Nimbus Mono PS": "Courier",
    "Nimbus Mono L": "Courier",
    "Courier New": "Courier",
    "Monoisome": "Monoid",
    "Noto Sans Mono": "Noto Mono",
    "Cascadia Mono": "Cascadia Code",  # Cascadia Code without its ligatures
    "Fira Mono": "Fira Code",  # Fira Code is Fira Mono with ligatures
}


@dataclass(frozen=True)
class Font:
    name: str  # the file's stem, e.g. "DejaVuSansMono-Bold": one name per face
    path: str
    family: str = ""  # the design, e.g. "DejaVu Sans Mono" (family_name); the name if unset

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)


def family_name(raw: str) -> str:
    """The design a face's family name belongs to: trailing weight and width words dropped,
    then known derivatives mapped to their parent ("Hack Bold" -> "DejaVu Sans Mono")."""
    words = raw.split()
    while len(words) > 1 and words[-1].lower() in _STYLE_WORDS:
        words.pop()
    name = re.sub(r"\s+", " ", " ".join(words)).strip() or raw
    return RELATED_FAMILIES.get(name, name)


def _matplotlib_fonts() -> list[Path]:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return []
    ttf = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    return sorted(ttf.glob("*Mono*.ttf"))


def font_roots() -> list[Path]:
    """Folders of unpacked font packages that exist: $CROMWELL_FONTS alone when set; else
    `fonts/root` beside $CROMWELL_HOME and `.cache/fonts/root` in the checkout Cromwell runs
    from (the one holding this source, or the one whose `.venv` runs it)."""
    env = os.environ.get("CROMWELL_FONTS")
    if env:
        candidates = [Path(env)]
    else:
        candidates = []
        home = os.environ.get("CROMWELL_HOME")
        if home:
            candidates.append(Path(home).parent / "fonts" / "root")
        for root in (Path(__file__).resolve().parents[2], Path(sys.prefix).resolve().parent):
            if (root / "pyproject.toml").is_file():
                candidates.append(root / CHECKOUT_FONTS)
    roots: list[Path] = []
    for path in candidates:
        if path.is_dir() and path.resolve() not in {r.resolve() for r in roots}:
            roots.append(path)
    return roots


def fonts_under(root: Path) -> list[Path]:
    """Every font file below `root`, sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)


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


# Hairline weights: rare in editors, and a few pixels high in a dim comment colour they all
# but vanish, so a picture would show text the target says is there.
_HAIRLINE = ("thin", "hairline", "extralight", "ultralight")


def _family_of(path: Path) -> str | None:
    """The face's family (family_name), or None for a hairline weight."""
    family, style = ImageFont.truetype(str(path), 20).getname()
    if any(word in (style or "").lower().replace(" ", "") for word in _HAIRLINE):
        return None
    return family_name(family or path.stem)


@functools.lru_cache(maxsize=1)
def available_fonts() -> tuple[Font, ...]:
    """Every usable monospace face on this machine, one per face name: matplotlib's faces
    first (the same ones on every machine, so `[0]` is too), then the rest sorted by name."""
    cached = [p for root in font_roots() for p in fonts_under(root)]
    by_name: dict[str, Font] = {}
    for path in _matplotlib_fonts() + cached + _fontconfig_fonts() + _folder_fonts():
        if path.suffix.lower() not in FONT_SUFFIXES or path.stem in by_name:
            continue
        if path.is_file() and is_monospace(path) and (family := _family_of(path)):
            by_name[path.stem] = Font(path.stem, str(path), family)
    shipped = {p.stem for p in _matplotlib_fonts()}
    return tuple(sorted(by_name.values(), key=lambda f: (f.name not in shipped, f.name)))


def families(fonts: tuple[Font, ...]) -> dict[str, tuple[Font, ...]]:
    """The faces of each family, families and faces in the order of `fonts`."""
    grouped: dict[str, list[Font]] = {}
    for font in fonts:
        grouped.setdefault(font.family, []).append(font)
    return {name: tuple(faces) for name, faces in grouped.items()}


def _rank(name: str) -> str:
    return hashlib.sha256(f"{FAMILY_SALT}\0{name}".encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def _heldout_names(fonts: tuple[Font, ...], heldout_families: int) -> frozenset[str]:
    groups = families(fonts)
    if len(groups) >= 2:
        # Whole families, those whose name hashes lowest: the same ones wherever they exist.
        count = max(1, min(heldout_families, len(groups) - 1))
        held = sorted(groups, key=_rank)[:count]
        return frozenset(f.name for name in held for f in groups[name])
    # A single family (matplotlib's DejaVu alone): hold out one face, so that evaluation
    # differs from training by face and size at least.
    if len(fonts) == 1:
        return frozenset()
    return frozenset({min(fonts, key=lambda f: _rank(f.name)).name})


def split_fonts(fonts: tuple[Font, ...], heldout_families: int = HELDOUT_FAMILIES
                ) -> dict[str, tuple[Font, ...]]:
    """Hold out the `heldout_families` families whose name hashes lowest (never all of them;
    one face when there is a single family, nothing when there is a single face, where the
    held-out split renders that face too)."""
    if not fonts:
        raise ValueError(
            "no monospace font found: install the train extra (matplotlib ships DejaVu Sans "
            "Mono), run `make fonts`, or install a font package such as fonts-dejavu-core"
        )
    heldout = _heldout_names(tuple(fonts), heldout_families)
    return {
        TRAIN: tuple(f for f in fonts if f.name not in heldout),
        HELDOUT: tuple(f for f in fonts if f.name in heldout) or tuple(fonts),
    }


def sizes_for(split: str) -> tuple[int, ...]:
    if split == TRAIN:
        return TRAIN_SIZES
    if split == HELDOUT:
        return HELDOUT_SIZES
    raise ValueError(f"split must be {TRAIN!r} or {HELDOUT!r}, got {split!r}")


@functools.lru_cache(maxsize=256)
def load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)
