"""Duplicate detection for code files: exact (content hash), normalised (whitespace-insensitive
hash) and near (MinHash over token shingles, banded LSH, then an estimated-Jaccard check).

Vendored copies of the same module are common across installed packages (six, typing
extensions, test fixtures); training on each copy overweights it and, worse, lets a held-out
file leak into training under another path.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

import numpy as np

EXACT = "exact"
NORMALISED = "normalised"
NEAR = "near"

_TOKEN = re.compile(r"\w+|[^\w\s]")


def exact_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_whitespace(text: str) -> str:
    """Each line with its runs of blanks collapsed and its ends stripped; blank lines dropped.
    Re-indented or re-wrapped copies of a file normalise to the same text."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def normalised_hash(text: str) -> str:
    return exact_hash(normalise_whitespace(text))


def shingles(text: str, size: int = 5) -> set[int]:
    """32-bit hashes of the word-token `size`-grams of `text` (all of it when shorter)."""
    tokens = _TOKEN.findall(text)
    if len(tokens) <= size:
        return {zlib.crc32(" ".join(tokens).encode())} if tokens else set()
    return {
        zlib.crc32("\x1f".join(tokens[i : i + size]).encode())
        for i in range(len(tokens) - size + 1)
    }


class MinHasher:
    """MinHash signatures from `num_perm` multiply-shift hash functions: the high 32 bits of
    (a*x + b) mod 2^64 with random odd a. (A modulus close to the inputs' range would keep the
    order of small inputs and make every signature the minimum of the same few shingles.)"""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        odd = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2)
        self.a = odd + np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.num_perm = num_perm

    def signature(self, hashes: set[int]) -> np.ndarray:
        if not hashes:
            return np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        x = np.fromiter(hashes, dtype=np.uint64, count=len(hashes))
        values = (x[:, None] * self.a[None, :] + self.b[None, :]) >> np.uint64(32)  # wraps mod 2^64
        return values.min(axis=0).astype(np.uint32)


@dataclass(frozen=True)
class Fingerprint:
    exact: str
    normalised: str
    signature: np.ndarray | None  # MinHash, when near-duplicates are looked for


class Deduplicator:
    """Remembers what it has seen; `check_and_add(text)` says why a text is a duplicate
    (`exact`, `normalised`, `near`) or returns None and remembers it.

    Near-duplicates are found by LSH: signatures are cut into `bands` bands, texts sharing a
    band are candidates, and a candidate counts when the fraction of equal signature entries
    (an estimate of the Jaccard similarity of the shingle sets) reaches `threshold`.
    """

    def __init__(
        self,
        near: bool = True,
        threshold: float = 0.85,
        num_perm: int = 128,
        bands: int = 16,
        shingle_size: int = 5,
    ) -> None:
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.near = near
        self.threshold = threshold
        self.bands = bands
        self.rows = num_perm // bands
        self.shingle_size = shingle_size
        self._hasher = MinHasher(num_perm)
        self._exact: set[str] = set()
        self._normalised: set[str] = set()
        self._buckets: dict[tuple[int, bytes], list[int]] = {}
        self._signatures: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._exact)

    def fingerprint(self, text: str) -> Fingerprint:
        """Everything `check` needs to know of a text; computing it is the costly part, so
        it can be done elsewhere (in worker processes) and checked here in order."""
        signature = None
        if self.near:
            signature = self._hasher.signature(shingles(text, self.shingle_size))
        return Fingerprint(exact_hash(text), normalised_hash(text), signature)

    def check(self, text: str) -> str | None:
        return self.check_fingerprint(self.fingerprint(text))

    def check_and_add(self, text: str) -> str | None:
        return self.check_and_add_fingerprint(self.fingerprint(text))

    def check_fingerprint(self, fp: Fingerprint) -> str | None:
        if fp.exact in self._exact:
            return EXACT
        if fp.normalised in self._normalised:
            return NORMALISED
        if self.near and fp.signature is not None:
            for index in self._candidates(fp.signature):
                if np.mean(self._signatures[index] == fp.signature) >= self.threshold:
                    return NEAR
        return None

    def check_and_add_fingerprint(self, fp: Fingerprint) -> str | None:
        reason = self.check_fingerprint(fp)
        if reason is None:
            self._add(fp)
        return reason

    def _band_keys(self, signature: np.ndarray) -> list[tuple[int, bytes]]:
        return [
            (b, signature[b * self.rows : (b + 1) * self.rows].tobytes()) for b in range(self.bands)
        ]

    def _candidates(self, signature: np.ndarray) -> list[int]:
        found: set[int] = set()
        for key in self._band_keys(signature):
            found.update(self._buckets.get(key, ()))
        return sorted(found)

    def _add(self, fp: Fingerprint) -> None:
        self._exact.add(fp.exact)
        self._normalised.add(fp.normalised)
        if fp.signature is not None:
            index = len(self._signatures)
            self._signatures.append(fp.signature)
            for key in self._band_keys(fp.signature):
                self._buckets.setdefault(key, []).append(index)
