"""The screenshot reader on one editor-sized picture: seconds to read it (the product's entry
point, `read_screenshot`, weights loaded beforehand), its CER, and the resident memory the
reader adds. A held-out file's lines (--lines of them) drawn by the training renderer in a
held-out font with a line-number gutter; figures, never pass/fail.

    .venv/bin/python bench/bench_reader.py [--lines 40] [--size 14] [--threads 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from engine.eval.screenshot_metrics import char_error_rate, exact_line_rate
from engine.eval.screenshot_readers import rss_mib


def picture(lines: int, size: int) -> tuple[np.ndarray, str, str]:
    from engine.data.corpus import heldout_stdlib_files
    from engine.data.fonts import available_fonts, split_fonts
    from engine.data.render import RenderStyle, render_code, theme_split
    from engine.data.split import HELDOUT

    text = dict(heldout_stdlib_files())["filecmp.py"].expandtabs(4)
    kept = [line.rstrip() for line in text.split("\n") if len(line) <= 90]
    window = "\n".join(kept[40:40 + lines]) + "\n"
    font = next(f for f in split_fonts(available_fonts())[HELDOUT] if "Regular" in f.name)
    style = RenderStyle(font_name=font.name, font_path=font.path, size=size,
                        theme=theme_split()[HELDOUT]["dark"][0], line_spacing=1.35, padding=8,
                        line_numbers=True, scale=1.0)
    return np.asarray(render_code(window, style, "filecmp.py")), window, font.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=40, help="lines in the picture")
    parser.add_argument("--size", type=int, default=14, help="font size in pixels")
    parser.add_argument("--threads", type=int, default=2, help="kernel threads")
    parser.add_argument("--rounds", type=int, default=5, help="reads to time")
    args = parser.parse_args()

    # What a server that reads screenshots has loaded anyway (the model runtime), so the
    # memory counted is the reader's own.
    import engine.runtime.gguf_file
    import engine.runtime.model_store  # noqa: F401
    from engine import _native as K
    from engine.reader import read

    K.set_num_threads(args.threads)
    image, text, font = picture(args.lines, args.size)
    import gc

    gc.collect()
    read.release_free_memory()
    before = rss_mib()
    read.default_reader()
    loaded = rss_mib()
    seconds = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        got = read.read_screenshot(image, ".py").text
        seconds.append(time.perf_counter() - t0)
    print(json.dumps({
        "lines": args.lines, "pixels": list(image.shape[:2]), "font": font, "size": args.size,
        "threads": args.threads, "seconds_median": round(statistics.median(seconds), 3),
        "seconds_min": round(min(seconds), 3), "cer": round(char_error_rate(got, text), 4),
        "exact_lines": round(exact_line_rate(got, text), 3),
        "rss_weights_mib": round(loaded - before, 1), "rss_added_mib": round(rss_mib() - before, 1),
        "weights": str(read.weights_path())}))


if __name__ == "__main__":
    main()
