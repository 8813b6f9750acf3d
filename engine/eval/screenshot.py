"""Reading code from screenshots: how closely a model's transcript of a held-out picture of code
matches the code shown.

The pictures: windows of standard-library files held out of training by their path
(`split.is_heldout`, the corpus training reads), rendered the way the held-out split renders
(`render.render_example(..., split=HELDOUT)`: faces and sizes training never uses, themes light
and dark). Every draw comes from a generator seeded by the seed and the file's path, so the
same install gives the same pictures on every run.

The model is prompted exactly as training prompts it (`vision.vision_prompt`, encoded without
a BOS as `vision.encode_vision` encodes it) and decodes greedily. Two figures per picture:

- character error rate: Levenshtein distance / target length, clipped at 1.0 (an empty
  transcript scores exactly 1.0; a longer wrong one cannot score worse than saying nothing);
- exact-line rate: the share of the target's non-blank lines that the transcript reproduces
  exactly at the same line number (aligned by position: a dropped line shifts, and fails,
  every line after it; blank lines are free to guess and are not counted).

Both texts are compared as a picture can show them: trailing spaces on a line and trailing
blank lines do not count. The baselines, computed the same way with the same model and prompt:
a blank picture of the same size and background (chance: the vision path runs, so whatever
it learnt about how an answer looks counts, but there is nothing to read), no picture (the
language path alone), and the empty transcript (CER 1.0). Means are over pictures (each
snippet weighs the same).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.train.render import RenderedCode

DEFAULT_TASKS = 24
DEFAULT_SEED = 0
DEFAULT_MAX_SIDE = 256  # small snippets: a few lines, cheap to encode and to transcribe
SALT = "cromwell-eval-screenshot"
# The picture; a blank picture of the same size in its background colour (the fusion path
# runs, so what training taught it about the format of an answer counts, but there is nothing
# to read: the chance level of reading); no picture at all (the language path alone).
MODES = ("image", "blank_image", "no_image")


@dataclass(frozen=True)
class ScreenshotTask:
    task_id: str  # "relpath@k": the picture of that file drawn in round k
    shot: RenderedCode  # the picture, (H, W, 3) uint8, and the code it shows: the target


@dataclass(frozen=True)
class Reading:
    """One transcript and its scores."""

    cer: float  # clipped at 1.0
    cer_unclipped: float  # distance / target length: tells wrong-and-long from wrong-and-short
    exact_lines: float
    tokens: int
    transcript: str


@dataclass
class TaskResult:
    task_id: str
    font: str
    size: int
    theme: str
    tone: str  # "light" or "dark": the theme's background
    target_chars: int
    target_lines: int  # non-blank lines, the exact-line rate's denominator
    readings: dict[str, Reading]  # by mode (MODES)


# ------------------------------------------------------------------------------ metrics


def normalise(text: str) -> str:
    """The text as a picture shows it: no trailing spaces on a line, no trailing blank lines."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_error_rate(transcript: str, target: str, clip: bool = True) -> float:
    """Levenshtein(transcript, target) / len(target), both normalised, clipped to [0, 1]
    unless `clip` is False; an empty target is read perfectly only by an empty transcript."""
    hyp, ref = normalise(transcript), normalise(target)
    if not ref:
        return 0.0 if not hyp else 1.0
    rate = levenshtein(hyp, ref) / len(ref)
    return min(1.0, rate) if clip else rate


def exact_line_rate(transcript: str, target: str) -> float:
    """Share of the target's non-blank lines equal to the transcript's line at the same index
    (trailing spaces ignored); 1.0 for a target with no non-blank line."""
    hyp = normalise(transcript).split("\n")
    ref = normalise(target).split("\n")
    counted = [i for i, line in enumerate(ref) if line.strip()]
    if not counted:
        return 1.0
    hits = sum(1 for i in counted if i < len(hyp) and hyp[i] == ref[i])
    return hits / len(counted)


# ------------------------------------------------------------------------------ the pictures


def _order_key(seed: int, relpath: str) -> str:
    return hashlib.sha256(f"{SALT}\0{seed}\0{relpath}".encode()).hexdigest()


def heldout_tasks(count: int = DEFAULT_TASKS, seed: int = DEFAULT_SEED,
                  max_side: int = DEFAULT_MAX_SIDE) -> list[ScreenshotTask]:
    """`count` held-out pictures, the same ones for the same (count, seed, max_side): one per
    file in a seeded order, then a second round, and so on, until there are enough."""
    try:
        from engine.train.render import render_example
    except ImportError as err:
        raise RuntimeError(f"the screenshot evaluation renders code as training does: it "
                           f"needs the train extra (pip install 'cromwell[train]'): {err}"
                           ) from None
    from engine.train.split import HELDOUT

    if count < 1:
        raise ValueError(f"the screenshot evaluation needs at least one task, got {count}")
    from engine.train.corpus import heldout_stdlib_files

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
            tasks.append(ScreenshotTask(f"{relpath}@{round_}", shot))
            if len(tasks) == count:
                return tasks
    raise ValueError(f"only {len(tasks)} held-out pictures could be drawn, {count} asked")


# ------------------------------------------------------------------------------ the model


def blank_like(image: np.ndarray) -> np.ndarray:
    """A picture of the same size filled with its top-left (background) colour."""
    return np.broadcast_to(image[:1, :1], image.shape).copy()


def _read(model: Any, ids: list[int], image: np.ndarray | None, target: str,
          max_tokens: int) -> Reading:
    pixels = None if image is None else image.astype(np.float32) / 255.0
    out = model.generate_tokens(ids, max_tokens=max_tokens, image=pixels, speculative=False)
    text = model.tokenizer.decode(out, skip_special=True)
    return Reading(char_error_rate(text, target), char_error_rate(text, target, clip=False),
                   exact_line_rate(text, target), len(out), text)


def prompt_ids(tokenizer: Any, shot: RenderedCode) -> list[int]:
    """The prompt's token ids exactly as training feeds them (`vision.encode_vision`: the
    prompt of `vision_prompt`, special tokens parsed, no BOS)."""
    from engine.train.vision import vision_prompt

    return list(tokenizer.encode(vision_prompt(shot).prompt))


def evaluate(model: Any, tasks: list[ScreenshotTask], max_tokens: int) -> Iterator[TaskResult]:
    """Each task read in every mode (MODES): one result per task, in order. A transcript gets
    at most twice the target's tokens (and at most `max_tokens`): past twice the target's
    length the character error rate is 1.0, clipped, whatever follows."""
    from engine.train.render import themes

    dark = set(themes()["dark"])
    if not model.takes_images:
        raise ValueError(f"{model.path} is a text-only {model.architecture!r} model: the "
                         "screenshot evaluation needs a vision model (cromwell)")
    for task in tasks:
        shot, target = task.shot, task.shot.text
        ids = prompt_ids(model.tokenizer, shot)
        budget = min(max_tokens, 2 * len(model.tokenizer.encode(target)) + 8)
        pictures = {"image": shot.image, "blank_image": blank_like(shot.image), "no_image": None}
        ref = normalise(target)
        yield TaskResult(
            task.task_id, shot.style.font_name, shot.style.size, shot.style.theme,
            "dark" if shot.style.theme in dark else "light", len(ref),
            sum(1 for line in ref.split("\n") if line.strip()),
            {mode: _read(model, ids, pictures[mode], target, budget) for mode in MODES})


def _scores(results: list[TaskResult]) -> dict[str, Any]:
    n = len(results)

    def mean(mode: str, key: str) -> float:
        return round(sum(getattr(r.readings[mode], key) for r in results) / n, 4) if n else 0.0

    scores: dict[str, Any] = {"tasks": n}
    for mode in MODES:
        scores[mode] = {"cer": mean(mode, "cer"), "cer_unclipped": mean(mode, "cer_unclipped"),
                        "exact_line_rate": mean(mode, "exact_lines")}
    return scores


def _grouped(results: list[TaskResult], key: str) -> dict[str, Any]:
    groups: dict[str, list[TaskResult]] = defaultdict(list)
    for r in results:
        groups[str(getattr(r, key))].append(r)
    return {name: _scores(rs) for name, rs in sorted(groups.items())}


def summarize(model_name: str, trained_parts: list[str], results: list[TaskResult],
              settings: dict[str, Any], seconds: float) -> dict[str, Any]:
    overall = _scores(results)
    image_cer = overall["image"]["cer"]
    return {
        "benchmark": "screenshot",
        "model": model_name,
        "trained_parts": trained_parts,
        **settings,
        "alignment": "by position",
        **overall,
        "empty": {"cer": 1.0, "cer_unclipped": 1.0, "exact_line_rate": 0.0},
        "cer_gain_over_blank_image": round(overall["blank_image"]["cer"] - image_cer, 4),
        "cer_gain_over_no_image": round(overall["no_image"]["cer"] - image_cer, 4),
        "by_font": _grouped(results, "font"),
        "by_size": _grouped(results, "size"),
        "by_theme": _grouped(results, "theme"),
        "by_tone": _grouped(results, "tone"),
        "seconds": round(seconds, 1),
        "results": [asdict(r) for r in results],
    }


def run_screenshot(path: str | None, limit: int | None, max_tokens: int,
                   threads: int | None = None, seed: int = DEFAULT_SEED,
                   max_side: int = DEFAULT_MAX_SIDE) -> dict[str, Any]:
    import engine.runtime

    tasks = heldout_tasks(limit or DEFAULT_TASKS, seed, max_side)
    model = engine.runtime.load(path, threads=threads)
    t0 = time.perf_counter()
    results = list(evaluate(model, tasks, max_tokens))
    settings = {"seed": seed, "max_side": max_side, "max_tokens": max_tokens}
    return summarize(Path(model.path).name, list(model.trained_parts), results, settings,
                     time.perf_counter() - t0)
