"""Reading code from screenshots: how closely the product's reader transcribes a picture of
code, against a peer reading the same pixels.

Readers (columns of the report; engine/eval/screenshot_readers.py):
- reader: `engine.reader.read.read_screenshot` on the picture's uint8 pixels, the file type's
  suffix, the shipped or `$CROMWELL_READER` weights (their training step is reported);
- tesseract: `tesseract IMAGE - --psm 6` on the same pixels as PNG; left out, with a note, where
  tesseract is not installed;
- with --model-modes, the vision-language model too, greedy, prompted as training prompts it:
  with the picture, a blank picture (chance) and no picture (the language path alone)
  (engine/eval/screenshot_model.py). Off by default: slow, and the default model's vision
  gates are closed.

Pictures (engine/eval/screenshot_pictures.py): held-out renders (held-out files, faces, sizes;
light and dark themes; the same on every run), or a folder of real screenshots, each with the
exact text it shows and optional metadata to group by.

Scores (engine/eval/screenshot_metrics.py), per picture, then means over pictures (each picture
weighs the same): character error rate (Levenshtein / target length, clipped at 1.0; an empty
transcript scores 1.0) and exact-line rate (non-blank target lines reproduced exactly, aligned
by position). Indentation is relative: a cropped window cannot show where column 0 is when no
line of it starts there, so the target and every transcript are dedented (`textwrap.dedent`)
before scoring; trailing spaces and trailing blank lines do not count either. Time: wall
seconds per picture, mean and 95th percentile. Memory: the RSS the reader's weights and reading
add to this process; tesseract's peak RSS per process.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.eval.screenshot_metrics import (
    char_error_rate,
    exact_line_rate,
    levenshtein,
    normalise,
)
from engine.eval.screenshot_model import MODES, blank_like, prompt_ids
from engine.eval.screenshot_pictures import (
    DEFAULT_MAX_SIDE,
    DEFAULT_SEED,
    DEFAULT_TASKS,
    READ_MAX_SIDE,
    FolderPicture,
    Picture,
    ScreenshotTask,
    folder_pictures,
    heldout_tasks,
)

__all__ = [
    "DEFAULT_MAX_SIDE", "DEFAULT_SEED", "DEFAULT_TASKS", "MODES", "READ_MAX_SIDE",
    "READERS", "ALIGNMENT", "FolderPicture", "Reading", "ScreenshotTask", "TaskResult",
    "blank_like", "char_error_rate", "exact_line_rate", "folder_pictures", "heldout_tasks",
    "levenshtein", "normalise", "prompt_ids", "report_lines", "run_screenshot", "score",
    "summarize",
]

READERS = ("reader", "tesseract")
ALIGNMENT = ("by position; indentation relative: target and transcripts dedented "
             "(textwrap.dedent) before scoring, since a cropped picture cannot show column 0")
HELDOUT_GROUPS = ("font", "size", "theme", "tone")


@dataclass(frozen=True)
class Reading:
    """One transcript and its scores."""

    cer: float  # clipped at 1.0
    cer_unclipped: float  # distance / target length: tells wrong-and-long from wrong-and-short
    exact_lines: float
    seconds: float
    transcript: str
    tokens: int | None = None  # model modes only


@dataclass
class TaskResult:
    task_id: str
    meta: dict[str, str]  # what the picture is grouped by: font, theme, ...
    target_chars: int
    target_lines: int  # non-blank lines, the exact-line rate's denominator
    readings: dict[str, Reading]  # by mode


def score(transcript: str, target: str, seconds: float, tokens: int | None = None) -> Reading:
    return Reading(char_error_rate(transcript, target),
                   char_error_rate(transcript, target, clip=False),
                   exact_line_rate(transcript, target), seconds, transcript, tokens)


# ------------------------------------------------------------------------------ the report


def _mode_scores(results: list[TaskResult], mode: str) -> dict[str, float]:
    readings = [r.readings[mode] for r in results if mode in r.readings]
    if not readings:
        return {}
    seconds = np.array([x.seconds for x in readings])

    def mean(key: str) -> float:
        return round(float(np.mean([getattr(x, key) for x in readings])), 4)

    return {"cer": mean("cer"), "cer_unclipped": mean("cer_unclipped"),
            "exact_line_rate": mean("exact_lines"),
            "seconds_mean": round(float(seconds.mean()), 3),
            "seconds_p95": round(float(np.percentile(seconds, 95)), 3)}


def _scores(results: list[TaskResult], modes: list[str]) -> dict[str, Any]:
    return {"tasks": len(results), **{mode: _mode_scores(results, mode) for mode in modes}}


def _grouped(results: list[TaskResult], key: str, modes: list[str]) -> dict[str, Any]:
    groups: dict[str, list[TaskResult]] = defaultdict(list)
    for r in results:
        groups[r.meta.get(key, "-")].append(r)
    return {name: _scores(rs, modes) for name, rs in sorted(groups.items())}


def summarize(results: list[TaskResult], modes: list[str], groups: list[str],
              settings: dict[str, Any], info: dict[str, dict[str, Any]],
              left_out: dict[str, str], seconds: float) -> dict[str, Any]:
    """The report: settings, then per mode its means (and `info`: weights, versions, memory),
    then the same means per group of pictures, then every picture's readings."""
    overall = _scores(results, modes)
    report: dict[str, Any] = {"benchmark": "screenshot", **settings, "alignment": ALIGNMENT,
                              "modes": modes, "left_out": left_out, "tasks": len(results)}
    for mode in modes:
        report[mode] = {**overall[mode], **info.get(mode, {})}
    report["empty"] = {"cer": 1.0, "cer_unclipped": 1.0, "exact_line_rate": 0.0}
    if "image" in modes:
        for baseline in ("blank_image", "no_image"):
            report[f"cer_gain_over_{baseline}"] = round(
                report[baseline]["cer"] - report["image"]["cer"], 4)
    report["groups"] = groups
    for key in groups:
        report[f"by_{key}"] = _grouped(results, key, modes)
    report["seconds"] = round(seconds, 1)
    report["results"] = [asdict(r) for r in results]
    return report


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text: a line per picture, the readers side by side, the groups."""
    modes: list[str] = report["modes"]
    lines = []
    for r in report["results"]:
        cells = ", ".join(f"{m} CER {r['readings'][m]['cer']:.3f} lines "
                          f"{r['readings'][m]['exact_lines']:.2f}" for m in modes)
        lines.append(f"{r['task_id']} ({r['target_lines']} lines): {cells}")
    lines.append("")
    lines.append(f"{'mode':<12} {'pictures':>8} {'CER':>7} {'exact lines':>12} "
                 f"{'s/picture':>10} {'p95 s':>8}")
    for m in modes:
        s = report[m]
        lines.append(f"{m:<12} {report['tasks']:>8} {s['cer']:>7.3f} {s['exact_line_rate']:>12.3f} "
                     f"{s['seconds_mean']:>10.3f} {s['seconds_p95']:>8.3f}")
    if "reader" in modes:
        r = report["reader"]
        lines.append(f"reader: weights {r['weights']} (step {r['step']}), loaded in "
                     f"{r['load_seconds']} s, adds {r['rss_added_mib']} MiB RSS")
    if "tesseract" in modes:
        t = report["tesseract"]
        lines.append(f"tesseract: {t['version']} ({t['args']}), peak RSS {t['peak_rss_mib']} MiB "
                     "per process")
    for mode, why in report["left_out"].items():
        lines.append(f"{mode}: left out: {why}")
    lines.append(f"alignment: {report['alignment']}")
    for key in report["groups"]:
        for name, g in report[f"by_{key}"].items():
            cells = ", ".join(f"{m} {g[m]['cer']:.3f}" for m in modes)
            lines.append(f"{key} {name}: {g['tasks']} pictures, CER {cells}")
    return lines


# ------------------------------------------------------------------------------ the run


def _readers() -> tuple[list[Any], dict[str, str]]:
    """The readers that can run here, and why each of the others cannot."""
    from engine.eval.screenshot_readers import CodeReader, Tesseract, Unavailable

    readers: list[Any] = []
    left_out: dict[str, str] = {}
    for make in (CodeReader, Tesseract):
        try:
            readers.append(make())
        except Unavailable as err:
            left_out[make.name] = str(err)
    return readers, left_out


def run_screenshot(limit: int | None = None, seed: int = DEFAULT_SEED,
                   max_side: int = READ_MAX_SIDE, pictures: str | Path | None = None,
                   model_modes: bool = False, model_path: str | None = None,
                   max_tokens: int = 256, threads: int | None = None) -> dict[str, Any]:
    """Held-out renders (or the folder `pictures`) read by the reader and tesseract (those that
    can run here) and, with `model_modes`, by the vision-language model; the report."""
    model = None
    if model_modes:
        if pictures is not None:
            raise ValueError("the model modes read held-out renders only (sized as the model "
                             "was trained), not a folder of screenshots")
        import engine.runtime
        from engine.eval.screenshot_model import check_vision

        model = engine.runtime.load(model_path, threads=threads)  # fails before any reading
        check_vision(model)
    tasks: list[Picture]
    if pictures is not None:
        tasks = list(folder_pictures(pictures, limit))
        groups = sorted({k for t in tasks for k in t.meta})
        settings: dict[str, Any] = {"pictures": str(pictures)}
    else:
        tasks = list(heldout_tasks(limit or DEFAULT_TASKS, seed, max_side))
        groups = list(HELDOUT_GROUPS)
        settings = {"pictures": "held-out renders", "seed": seed, "max_side": max_side}
    chosen, left_out = _readers()
    if not chosen and model is None:
        raise RuntimeError("nothing to read the screenshots with: "
                           + "; ".join(left_out.values()))
    t0 = time.perf_counter()
    readings: list[dict[str, Reading]] = [{} for _ in tasks]
    info: dict[str, dict[str, Any]] = {}
    for reader in chosen:
        transcripts = reader.read_all([(t.image, t.suffix) for t in tasks])
        for task, slot, got in zip(tasks, readings, transcripts, strict=True):
            slot[reader.name] = score(got.text, task.text, got.seconds)
        info[reader.name] = reader.info
    modes = [r.name for r in chosen]
    if model is not None:
        from engine.eval.screenshot_model import model_readings

        for task, slot in zip(tasks, readings, strict=True):
            assert isinstance(task, ScreenshotTask)
            for mode, got in model_readings(model, task, max_tokens).items():
                slot[mode] = score(got.text, task.text, got.seconds, got.tokens)
        modes += list(MODES)
        settings.update(model=Path(model.path).name, trained_parts=list(model.trained_parts),
                        max_tokens=max_tokens)
    results = []
    for task, slot in zip(tasks, readings, strict=True):
        ref = normalise(task.text)
        results.append(TaskResult(task.task_id, dict(task.meta), len(ref),
                                  sum(1 for line in ref.split("\n") if line.strip()), slot))
    return summarize(results, modes, groups, settings, info, left_out,
                     time.perf_counter() - t0)
