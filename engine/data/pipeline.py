"""The training data, all made offline: the public entry points.

    index = code_corpus(folders=["~/src/project"], stdlib=True)       # dedup + held-out split
    edits = edit_stream(index, seed=0)                                # verified edit examples
    fills = fim_stream(index, seed=0)                                 # fill-in-the-middle
    shots = render_stream(index, seed=0)                              # code screenshots
    mix = mixed_stream(index, {"text": 0.4, "edit": 0.4, "fim": 0.2})  # a curriculum's mix
    loader = ParallelLoader(encoded(edits, tokenizer), num_workers=2)  # two busy cores
    packed = PackedStream(loader, seq_len=1024)     # checkpoint packed.state_dict()
    for ids, mask in batches(packed, batch_size=8): ...
    pics = ParallelLoader(encoded(shots, tokenizer, eos_id), num_workers=2)
    for batch in vision_batches(pics, batch_size=4, seq_len=1024): ...  # pixels, patch_mask

Every stream is an `ExampleStream`: seeded, sharded by (rank, world_size, worker), resumable
from `state_dict()`. The held-out split is by a hash of each file's relative path
(`split.is_heldout`); evaluators read `index.heldout_paths()` or call `is_heldout` directly,
and the render streams' held-out split also switches to fonts and sizes training never uses.

The `make` callables below are small classes rather than closures so that worker processes
can receive them by pickling.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import charts, edit_makers, mockups, render
from .corpus import (
    CorpusIndex,
    FileEntry,
    Source,
    build_index,
    folder_source,
    git_source,
    site_packages_source,
    stdlib_source,
)
from .edit_makers import SYNTHETIC_KINDS, EditExample
from .fim import FIM_MARKERS, FimExample, fim_split
from .gitlog import commit_examples
from .loader import ParallelLoader
from .packing import (
    ChatTokenizer,
    Encoded,
    PackedStream,
    batches,
    encode_edit,
    encode_fim,
    encode_text,
)
from .split import DEFAULT_HELDOUT_FRACTION, DEFAULT_SALT, HELDOUT, TRAIN, is_heldout
from .stream import ExampleStream, Shard
from .vision import EncodedVision, batch_images, encode_vision, vision_batches

__all__ = [
    "HELDOUT", "TRAIN", "CorpusIndex", "EditExample", "Encoded", "EncodedVision", "ExampleStream",
    "FileEntry", "FimExample", "PackedStream", "ParallelLoader", "Shard", "batch_images",
    "batches", "chart_stream", "code_corpus", "commit_stream", "edit_stream", "encoded",
    "fim_stream", "is_heldout", "mixed_stream", "mockup_stream", "render_stream", "text_stream",
    "vision_batches",
]


def code_corpus(
    folders: Sequence[str | Path] = (),
    repos: Sequence[str | Path] = (),
    stdlib: bool = True,
    site_packages: bool = False,
    extensions: Sequence[str] = (".py",),
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    salt: str = DEFAULT_SALT,
    near_dedup: bool = True,
    workers: int = 2,
) -> CorpusIndex:
    """Index code from the standard library, installed packages, folders and git repositories
    (their tracked files), deduplicated, with the held-out split by path hash; `workers`
    processes read and fingerprint the files."""
    sources: list[Source] = []
    if stdlib:
        sources.append(stdlib_source(extensions))
    if site_packages:
        sources.append(site_packages_source(extensions))
    sources += [folder_source(Path(f).expanduser(), extensions=extensions) for f in folders]
    sources += [git_source(Path(r).expanduser(), extensions) for r in repos]
    return build_index(sources, heldout_fraction, salt, near_dedup, workers=workers)


# ------------------------------------------------------------------------------ makers


@dataclass(frozen=True)
class CodeText:
    """A file's text; files longer than `max_chars` are cut at a random line boundary into
    windows of about that size (so one huge file does not fill a whole batch)."""

    max_chars: int | None = None

    def __call__(self, entry: FileEntry, rng: random.Random) -> list[str]:
        text = entry.read()
        if self.max_chars is None or len(text) <= self.max_chars:
            return [text]
        start = rng.randrange(len(text) - self.max_chars + 1)
        start = text.rfind("\n", 0, start) + 1
        end = text.rfind("\n", start, start + self.max_chars) + 1 or start + self.max_chars
        return [text[start:end]]


@dataclass(frozen=True)
class FimMaker:
    """A fill-in-the-middle cut of a window of the file (see `fim`)."""

    max_chars: int | None = 8_000

    def __call__(self, entry: FileEntry, rng: random.Random) -> list[FimExample]:
        window = CodeText(self.max_chars)(entry, rng)[0]
        example = fim_split(entry.relpath, window, rng)
        return [example] if example is not None else []


@dataclass(frozen=True)
class EditMaker:
    kinds: tuple[str, ...] = SYNTHETIC_KINDS
    per_kind: int = 1

    def __call__(self, entry: FileEntry, rng: random.Random) -> list[EditExample]:
        return edit_makers.make_examples(entry.relpath, entry.read(), rng, self.kinds,
                                         self.per_kind)


@dataclass(frozen=True)
class RenderMaker:
    """Screenshots of a file in the fonts and sizes of `style_split`."""

    style_split: str = TRAIN
    per_file: int = 1
    max_side: int = render.MAX_SIDE

    def __post_init__(self) -> None:
        if self.max_side < render.MIN_SIDE:
            raise ValueError(
                f"max_side {self.max_side} is too small: screenshots need at least "
                f"{render.MIN_SIDE} pixels a side to hold a few lines of code in every style"
            )

    def __call__(self, entry: FileEntry, rng: random.Random) -> list[render.RenderedCode]:
        text = entry.read()
        shots = (render.render_example(entry.relpath, text, rng, self.style_split,
                                       self.max_side)
                 for _ in range(self.per_file))
        return [s for s in shots if s is not None]


@dataclass(frozen=True)
class MixMaker:
    """Picks one of several makers for each item, by weight, with the item's own rng: a mix
    of tasks in one stream, so it shards, resumes and parallelises like any other."""

    makers: tuple[tuple[float, object], ...]

    def __call__(self, item, rng: random.Random) -> list:
        weights = [w for w, _ in self.makers]
        maker = rng.choices([m for _, m in self.makers], weights=weights)[0]
        return list(maker(item, rng))  # type: ignore[operator]


@dataclass(frozen=True)
class ChartMaker:
    def __call__(self, index: int, rng: random.Random) -> list[charts.RenderedChart]:
        return [charts.render_chart(rng)]


@dataclass(frozen=True)
class MockupMaker:
    def __call__(self, index: int, rng: random.Random) -> list[mockups.RenderedMockup]:
        return [mockups.render_mockup(rng)]


@dataclass(frozen=True)
class Identity:
    def __call__(self, item, rng: random.Random) -> list:
        return [item]


@dataclass(frozen=True)
class Encode:
    """Wraps a maker: its texts or edit examples, encoded (in the worker, where the CPU is)."""

    maker: object
    tokenizer: ChatTokenizer
    eos_id: int | None = None
    fim_markers: Mapping[str, str] = field(default_factory=lambda: dict(FIM_MARKERS))

    def __call__(self, item, rng: random.Random) -> list[Encoded | EncodedVision]:
        out: list[Encoded | EncodedVision] = []
        for example in self.maker(item, rng):  # type: ignore[operator]
            if isinstance(example, EditExample):
                out.append(encode_edit(example, self.tokenizer))
            elif isinstance(example, FimExample):
                out.append(encode_fim(example, self.tokenizer, self.eos_id, self.fim_markers))
            elif isinstance(example, str):
                out.append(encode_text(example, self.tokenizer, self.eos_id))
            elif hasattr(example, "image"):
                out.append(encode_vision(example, self.tokenizer, self.eos_id))
            else:
                raise TypeError(f"cannot encode a {type(example).__name__}: texts, edit, "
                                "fill-in-the-middle and vision examples only")
        return out


# ------------------------------------------------------------------------------ streams


def _entries(index: CorpusIndex, split: str) -> list[FileEntry]:
    entries = index.split(split)
    if not entries:
        raise ValueError(f"the corpus has no {split} files")
    return entries


def text_stream(
    index: CorpusIndex, split: str = TRAIN, seed: int = 0, shard: Shard | None = None,
    epochs: int | None = 1, max_chars: int | None = 16_000,
) -> ExampleStream:
    """Raw code, one file (or window of one) per example: language-model pre-training text."""
    return ExampleStream(_entries(index, split), CodeText(max_chars), seed, shard, epochs)


def fim_stream(
    index: CorpusIndex, split: str = TRAIN, seed: int = 0, shard: Shard | None = None,
    epochs: int | None = 1, max_chars: int | None = 8_000,
) -> ExampleStream:
    """Fill-in-the-middle examples, one per file (window) per epoch."""
    return ExampleStream(_entries(index, split), FimMaker(max_chars), seed, shard, epochs)


def edit_stream(
    index: CorpusIndex, split: str = TRAIN, seed: int = 0, shard: Shard | None = None,
    epochs: int | None = 1, kinds: Sequence[str] = SYNTHETIC_KINDS, per_kind: int = 1,
) -> ExampleStream:
    """Verified synthetic edit examples, up to `per_kind` of each kind per file."""
    return ExampleStream(_entries(index, split), EditMaker(tuple(kinds), per_kind), seed, shard,
                         epochs)


def commit_stream(
    repo: str | Path, split: str = TRAIN, seed: int = 0, shard: Shard | None = None,
    epochs: int | None = 1, max_commits: int | None = None,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION, salt: str = DEFAULT_SALT,
    context_lines: int | None = 200,
) -> ExampleStream:
    """A repository's real commits as edit examples; a change to a held-out path belongs to
    the held-out split, like the file itself."""
    examples = [
        e for e in commit_examples(repo, max_commits, context_lines=context_lines)
        if (is_heldout(e.path, heldout_fraction, salt)) == (split == HELDOUT)
    ]
    if not examples:
        raise ValueError(f"{str(repo)!r} has no usable commits in the {split} split")
    return ExampleStream(examples, Identity(), seed, shard, epochs)


def render_stream(
    index: CorpusIndex, split: str = TRAIN, seed: int = 0, shard: Shard | None = None,
    epochs: int | None = 1, per_file: int = 1, max_side: int = render.MAX_SIDE,
    style_split: str | None = None,
) -> ExampleStream:
    """Code screenshots of the split's files, in the fonts and sizes of `style_split` (by
    default the same split: held-out files in held-out fonts and sizes). An evaluation can
    also cross them, e.g. training files in unseen fonts, to tell reading from recall."""
    maker = RenderMaker(style_split or split, per_file, max_side)
    return ExampleStream(_entries(index, split), maker, seed, shard, epochs)


MIXABLE = ("text", "fim", "edit")  # the text tasks: pictures batch differently


def mixed_stream(
    index: CorpusIndex, weights: Mapping[str, float], split: str = TRAIN, seed: int = 0,
    shard: Shard | None = None, epochs: int | None = 1,
) -> ExampleStream:
    """Each file (per epoch) becomes the examples of one task drawn by `weights`, e.g.
    {"text": 0.4, "edit": 0.4, "fim": 0.2}: a curriculum's mix as one resumable stream."""
    unknown = sorted(set(weights) - set(MIXABLE))
    if unknown or not weights or any(w < 0 for w in weights.values()) \
            or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be non-negative, not all zero, over {MIXABLE}; "
                         f"got {dict(weights)}")
    makers = {"text": CodeText(16_000), "fim": FimMaker(), "edit": EditMaker()}
    mix = MixMaker(tuple((float(w), makers[k]) for k, w in sorted(weights.items()) if w > 0))
    return ExampleStream(_entries(index, split), mix, seed, shard, epochs)


def chart_stream(count: int, seed: int = 0, shard: Shard | None = None,
                 epochs: int | None = 1) -> ExampleStream:
    """`count` charts per epoch (a different `seed` gives different charts)."""
    return ExampleStream(range(count), ChartMaker(), seed, shard, epochs, shuffle=False)


def mockup_stream(count: int, seed: int = 0, shard: Shard | None = None,
                  epochs: int | None = 1) -> ExampleStream:
    return ExampleStream(range(count), MockupMaker(), seed, shard, epochs, shuffle=False)


def encoded(stream: ExampleStream, tokenizer: ChatTokenizer, eos_id: int | None = None,
            fim_markers: Mapping[str, str] = FIM_MARKERS) -> ExampleStream:
    """The same stream with its examples encoded by `tokenizer` (which must be picklable for
    the multi-process loader): texts, edit and fill-in-the-middle examples as `Encoded`
    (for `PackedStream`; edits in the product's own prompt, rendered by the tokenizer's chat
    template), pictures as `EncodedVision` (for `vision_batches`). `eos_id` ends each text,
    middle and picture's target."""
    maker = Encode(stream.make, tokenizer, eos_id, dict(fim_markers))
    return ExampleStream(stream.items, maker, stream.seed, stream.shard, stream.epochs,
                         stream.shuffle)

