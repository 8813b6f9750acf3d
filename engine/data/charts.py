"""Charts for the vision path: a short matplotlib script, generated at random, is executed and
its figure rasterised; the script is the target ("write the code for this chart").

The scripts use matplotlib's object-oriented `Figure` (no pyplot, so no global state is shared
between pictures or threads), and sizes in tenths of an inch at 80 dpi, so every picture's
sides are multiples of 8 pixels.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

DPI = 80  # 0.1 inch = 8 pixels
CHART_KINDS = ("bar", "barh", "line", "scatter", "pie")

_TOPICS = (
    ("Monthly sales", "Month", "Units", ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug")),
    ("Requests per day", "Day", "Requests", ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")),
    ("Build times", "Stage", "Seconds", ("lint", "compile", "test", "package", "deploy")),
    ("Revenue by region", "Region", "USD (k)", ("North", "South", "East", "West")),
    ("Errors by service", "Service", "Errors", ("auth", "api", "db", "cache", "queue", "web")),
    ("Latency", "Percentile", "ms", ("p50", "p75", "p90", "p95", "p99")),
)
_SERIES = ("2023", "2024", "baseline", "model", "cpu", "gpu", "train", "eval")
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:gray",
           "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "steelblue", "darkorange", "seagreen")


@dataclass(frozen=True)
class RenderedChart:
    image: np.ndarray  # (H, W, 3) uint8
    source: str  # the script that drew it: the target
    kind: str


def _values(rng: random.Random, n: int, integers: bool) -> list:
    scale = rng.choice((10, 100, 1000))
    if integers:
        return [rng.randint(1, scale) for _ in range(n)]
    return [round(rng.uniform(0.1, 1.0) * scale, 1) for _ in range(n)]


def chart_source(rng: random.Random, kind: str | None = None) -> tuple[str, str]:
    """(kind, script) for a random chart; the script defines `fig`."""
    kind = kind or rng.choice(CHART_KINDS)
    if kind not in CHART_KINDS:
        raise ValueError(f"unknown chart kind {kind!r}; known: {CHART_KINDS}")
    title, xlabel, ylabel, labels = rng.choice(_TOPICS)
    labels = list(labels[: rng.randint(3, len(labels))])
    width, height = rng.choice(((4.8, 3.2), (5.6, 4.0), (6.4, 4.0), (4.0, 4.0)))
    lines = [
        "from matplotlib.figure import Figure",
        "",
        f"fig = Figure(figsize=({width}, {height}), dpi={DPI})",
        "ax = fig.add_subplot()",
    ]
    integers = rng.random() < 0.5
    if kind in ("bar", "barh"):
        color = rng.choice(_COLORS)
        lines.append(f"ax.{kind}({labels!r}, {_values(rng, len(labels), integers)!r}, "
                     f"color={color!r})")
    elif kind == "line":
        series = rng.sample(_SERIES, rng.randint(1, 3))
        for name in series:
            marker = rng.choice(("o", "s", "^", ""))
            style = f", marker={marker!r}" if marker else ""
            lines.append(f"ax.plot({labels!r}, {_values(rng, len(labels), integers)!r}, "
                         f"label={name!r}{style})")
        if len(series) > 1:
            lines.append("ax.legend()")
    elif kind == "scatter":
        n = rng.randint(5, 12)
        xs, ys = _values(rng, n, integers), _values(rng, n, integers)
        lines.append(f"ax.scatter({xs!r}, {ys!r}, color={rng.choice(_COLORS)!r})")
    else:
        lines.append(f"ax.pie({_values(rng, len(labels), True)!r}, labels={labels!r})")
    lines.append(f"ax.set_title({title!r})")
    if kind != "pie":
        x, y = (ylabel, xlabel) if kind == "barh" else (xlabel, ylabel)
        lines += [f"ax.set_xlabel({x!r})", f"ax.set_ylabel({y!r})"]
        if rng.random() < 0.4:
            lines.append("ax.grid(True, alpha=0.3)")
    return kind, "\n".join(lines) + "\n"


def draw_chart(source: str) -> np.ndarray:
    """Run a chart script (one made by `chart_source`) and rasterise its `fig`."""
    namespace: dict = {}
    exec(compile(source, "<chart>", "exec"), namespace)  # our own generated script
    fig = namespace.get("fig")
    if fig is None:
        raise ValueError("the chart script defines no `fig`")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    return np.array(Image.open(buffer).convert("RGB"), dtype=np.uint8)


def render_chart(rng: random.Random, kind: str | None = None) -> RenderedChart:
    kind, source = chart_source(rng, kind)
    return RenderedChart(draw_chart(source), source, kind)
