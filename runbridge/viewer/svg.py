"""Chart geometry for inline SVG: data scaled into a view box, as plain numbers. The templates
draw the `<svg>` from these (no JavaScript, no library from the network), so a page or a
report shows its charts offline; long series arrive reduced (`runbridge.reduce.minmax`)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

from ..charts import Chart
from ..reduce import minmax

WIDTH, HEIGHT = 640, 260
#: Left, right, top, bottom margins of the plot area inside the view box.
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 36
#: Colors of the lines of a chart, in order (the runs of a compare chart).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


class Line(NamedTuple):
    label: str
    color: str
    points: str  # "x,y x,y ..." in view-box units
    count: int   # the points drawn


class Tick(NamedTuple):
    pos: float
    text: str


class LinePlot(NamedTuple):
    width: int
    height: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_label: str
    y_label: str
    box: tuple[float, float, float, float]  # left, top, right, bottom of the plot area


def _ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """Round values between low and high, about `count` of them (whole numbers only if `whole`)."""
    if high <= low:
        return [low]
    raw = max((high - low) / count, 1.0 if whole else 0.0)
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


#: Points one chart is drawn from at most, over all its lines (a compare chart of 100 runs).
MAX_POINTS = 20_000


def line_plot(series: Sequence[tuple[str, Chart]], width: int = WIDTH, height: int = HEIGHT) -> LinePlot:
    """A line per (label, chart) of kind LINE or XY, all on one pair of axes: each reduced to the
    min and max per pixel of the plot area, or fewer buckets when many lines share the chart."""
    buckets = max(16, min(width - LEFT - RIGHT, MAX_POINTS // (2 * max(1, len(series)))))
    reduced = [(label, *minmax(chart.x, chart.y, buckets)) for label, chart in series]
    xs = [v for _, x, _ in reduced for v in (x[:1] + x[-1:])]
    ys = [v for _, _, y in reduced for v in ((min(y), max(y)) if y else ())]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - abs(y0 or 1) * 0.1, y1 + abs(y1 or 1) * 0.1
    right, bottom = width - RIGHT, height - BOTTOM
    whole_x = all(float(v).is_integer() for _, x, _ in reduced for v in x[:50])

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (right - LEFT)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - TOP)

    lines = [Line(label, PALETTE[i % len(PALETTE)], " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, y)),
                  len(x)) for i, (label, x, y) in enumerate(reduced)]
    first = series[0][1] if series else None
    return LinePlot(width, height, lines,
                    [Tick(px(t), _label(t)) for t in _ticks(x0, x1, whole=whole_x)],
                    [Tick(py(t), _label(t)) for t in _ticks(y0, y1)],
                    first.x_label if first else "", first.y_label if first else "",
                    (LEFT, TOP, right, bottom))


class Cell(NamedTuple):
    x: float
    y: float
    size: float
    fill: str
    text: str
    dark: bool


class Heatmap(NamedTuple):
    width: int
    height: int
    cells: list[Cell]
    labels: list[Tick]  # class labels, at each row's / column's center
    margin: int


def heatmap(labels: Sequence[str], matrix: Sequence[Sequence[float]], cell: int = 48) -> Heatmap:
    """A confusion matrix: rows are the true class, columns the predicted, darker for more."""
    margin = 90
    peak = max((v for row in matrix for v in row), default=0) or 1
    cells = []
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            share = max(0.0, value / peak)
            shade = int(247 - share * 200)
            cells.append(Cell(margin + j * cell, margin + i * cell, cell, f"rgb({shade},{shade},255)",
                              f"{value:g}", share > 0.6))
    side = margin + cell * len(labels) + 8
    return Heatmap(side, side, cells, [Tick(margin + (k + 0.5) * cell, str(t)) for k, t in enumerate(labels)],
                   margin)


def number(value: Any) -> str:
    """A value as the pages print it (floats to 6 significant digits)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
