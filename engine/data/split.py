"""The held-out split: a file is held out for evaluation when the hash of its relative path
falls below the held-out fraction.

Deciding by a hash of the path, never by a random draw or the order files are found in, makes
the split the same on every machine, in every run and for every worker, so an evaluator can ask
`is_heldout(path)` and trust that training never saw the file. The salt lets a user draw a
second, independent split without renaming files.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

TRAIN = "train"
HELDOUT = "heldout"
DEFAULT_HELDOUT_FRACTION = 0.02
DEFAULT_SALT = "cromwell-split-v1"


def normalise_relpath(relpath: str) -> str:
    """The form of a relative path that is hashed: forward slashes, no leading './'."""
    text = relpath.replace("\\", "/")
    parts = [p for p in PurePosixPath(text).parts if p not in (".", "")]
    if not parts or text.startswith("/") or ".." in parts:
        raise ValueError(f"split needs a relative path inside its source, got {relpath!r}")
    return "/".join(parts)


def path_fraction(relpath: str, salt: str = DEFAULT_SALT) -> float:
    """A number in [0, 1) that depends only on the salt and the normalised path."""
    key = f"{salt}\0{normalise_relpath(relpath)}".encode()
    digest = hashlib.sha256(key).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_heldout(
    relpath: str, fraction: float = DEFAULT_HELDOUT_FRACTION, salt: str = DEFAULT_SALT
) -> bool:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    return path_fraction(relpath, salt) < fraction


def split_of(
    relpath: str, fraction: float = DEFAULT_HELDOUT_FRACTION, salt: str = DEFAULT_SALT
) -> str:
    return HELDOUT if is_heldout(relpath, fraction, salt) else TRAIN
