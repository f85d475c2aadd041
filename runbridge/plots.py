"""matplotlib figures of metrics, by the same rules as the viewer (`runbridge.charts`): what
`run.plot()`, `experiment.plot()` and `runbridge plot` return or write. matplotlib is imported on
first use, and figures are made without pyplot (no global state, safe in a server or a thread)."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import charts as rules
from .reduce import minmax

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Points a line is drawn from at most (min/max per bucket, `runbridge.reduce`).
BUCKETS = 2000
#: The formats `save` writes, by file suffix.
FORMATS = (".png", ".svg")

Loader = Callable[[str], "bytes | None"]


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def draw(ax: "Axes", chart: rules.Chart, load: Loader | None = None, label: str | None = None) -> None:
    """Draw one metric on `ax` by its kind; `load(file_name)` gives an image or JSON file's bytes."""
    if chart.kind in rules.LINES:
        x, y = minmax(chart.x, chart.y, BUCKETS)
        ax.plot(x, y, label=label, linewidth=1)
        ax.set_xlabel(chart.x_label)
        ax.set_ylabel(chart.y_label)
        return
    ax.set_axis_off()
    if chart.kind == rules.VALUE:
        ax.text(0.5, 0.5, _fmt(chart.value), ha="center", va="center", fontsize=20)
    elif chart.kind == rules.TEXT:
        ax.text(0.02, 0.98, "\n".join(_fmt(v) for v in chart.value[-12:]), ha="left", va="top", family="monospace")
    elif chart.kind == rules.TABLE:
        columns = list(chart.columns or {})
        cells = [[_fmt(chart.columns[c][i]) for c in columns] for i in range(min(chart.count, 20))]
        if cells:
            ax.table(cellText=cells, colLabels=columns, loc="upper center")
    else:
        data = load(chart.files[-1]) if load is not None and chart.files else None
        if data is None:
            ax.text(0.5, 0.5, chart.files[-1] if chart.files else "", ha="center", va="center")
        elif chart.kind == rules.IMAGE:
            import matplotlib.image

            ax.imshow(matplotlib.image.imread(io.BytesIO(data)))
        else:
            view = rules.json_view(data)
            if view.kind == "heatmap":
                ax.set_axis_on()
                ax.imshow(view.matrix, cmap="Blues")
                ticks = range(len(view.labels))
                ax.set_xticks(ticks, view.labels)
                ax.set_yticks(ticks, view.labels)
                ax.set_xlabel("predicted")
                ax.set_ylabel("true")
                for i, row in enumerate(view.matrix):
                    for j, cell in enumerate(row):
                        ax.text(j, i, _fmt(cell), ha="center", va="center")
            else:
                ax.text(0.02, 0.98, view.text[:2000], ha="left", va="top", family="monospace", fontsize=7)


def _figure(n: int) -> tuple["Figure", list["Axes"]]:
    from matplotlib.figure import Figure

    cols = 1 if n == 1 else 2
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(6.4 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes


def run_figure(run_charts: Sequence[rules.Chart], load: Loader | None = None) -> "Figure":
    """One panel per metric of a run."""
    fig, axes = _figure(len(run_charts) or 1)
    for ax, chart in zip(axes, run_charts):
        ax.set_title(chart.name)
        draw(ax, chart, load)
    return fig


def compare_figure(name: str, runs: Sequence[tuple[str, rules.Chart]]) -> "Figure":
    """One metric over several runs: a line per run, or a bar per run for single values."""
    fig, (ax,) = _figure(1)
    ax.set_title(name)
    lines = [(label, c) for label, c in runs if c.kind in rules.LINES]
    values = [(label, c.value) for label, c in runs if c.kind == rules.VALUE]
    for label, chart in lines:
        draw(ax, chart, label=label)
    if values and not lines:
        ax.bar([label for label, _ in values], [v for _, v in values])
    if lines:
        ax.legend(fontsize=8)
    return fig


def check_output(path: str) -> str:
    """The output file's suffix, or ValueError naming the argument (before anything is drawn)."""
    suffix = "." + str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else ""
    if suffix not in FORMATS:
        raise ValueError(f"output must end in {' or '.join(FORMATS)}, got {str(path)!r}")
    return suffix
