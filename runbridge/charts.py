"""Which metric is drawn how: the studio's rules, as pure functions over a run's records.

One `Chart` per metric name, in first-logged order: a single number is a value; several numbers a
line over their steps (over their index when any point has no step); strings are text; a table
with exactly two numeric columns is a line of the second over the first, any other table a table;
images are images; JSON metrics (`log_confusion_matrix` & co.) are JSON, a confusion matrix drawn
as a heatmap (`json_view`). The viewer's pages, `runbridge report` and `run.plot()` all draw from
these, so the command line, the browser and a notebook agree.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any, Iterable, NamedTuple, Sequence

from .records import Image, Metric, Record, Row
from .reduce import stats

_STREAMS = frozenset((Metric, Row, Image))

VALUE, LINE, TEXT, XY, TABLE, IMAGE, JSON = "value", "line", "text", "xy", "table", "image", "json"
#: Kinds drawn as a line chart (`x`, `y` hold the points).
LINES = (LINE, XY)


class Chart(NamedTuple):
    """How one metric is shown: `kind` is one of VALUE, LINE, TEXT, XY, TABLE, IMAGE, JSON."""

    name: str
    kind: str
    #: LINE: steps (or indexes); XY: the first column's values.
    x: Sequence[Any] = ()
    #: LINE: the values; XY: the second column's values.
    y: Sequence[Any] = ()
    x_label: str = ""
    y_label: str = ""
    #: VALUE: the number; TEXT: the list of values logged.
    value: Any = None
    #: TABLE: column -> values (rows in logging order).
    columns: dict[str, list[Any]] | None = None
    #: IMAGE / JSON: the run file names, in logging order, and their media type.
    files: tuple[str, ...] = ()
    media_type: str = ""
    #: How many values were logged under the name.
    count: int = 0


def is_number(value: Any) -> bool:
    """An int or float a chart can place (bools and non-finite floats are not)."""
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def _numeric(values: Iterable[Any]) -> bool:
    """Only ints, floats and Nones, and at least one number (one pass over the types)."""
    kinds = set(map(type, values))
    return kinds <= {int, float, type(None)} and bool(kinds & {int, float})


def _metric_chart(name: str, recs: list[Metric]) -> Chart:
    values = [r.value for r in recs]
    if not _numeric(values):
        return Chart(name, TEXT, value=values, count=len(values))
    if len(values) == 1:
        return Chart(name, VALUE, value=values[0], count=1)
    steps = [r.step for r in recs]
    if None in steps:
        steps, x_label = list(range(len(values))), "index"
    else:
        x_label = "step"
    return Chart(name, LINE, x=steps, y=values, x_label=x_label, y_label=name, count=len(values))


def _table_chart(name: str, recs: list[Row]) -> Chart:
    columns: dict[str, list[Any]] = {}
    for i, rec in enumerate(recs):
        for column, value in rec.cells:
            columns.setdefault(column, [None] * i).append(value)
        for values in columns.values():
            values.extend([None] * (i + 1 - len(values)))
    if len(columns) == 2 and len(recs) > 1 and all(_numeric(v) for v in columns.values()):
        (x_label, x), (y_label, y) = columns.items()
        return Chart(name, XY, x=x, y=y, x_label=x_label, y_label=y_label, columns=columns, count=len(recs))
    return Chart(name, TABLE, columns=columns, count=len(recs))


def charts(records: Iterable[Record]) -> list[Chart]:
    """One `Chart` per metric name of a run, in first-logged order."""
    series: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        if type(rec) in _STREAMS:
            series[rec[0]].append(rec)  # field 0 is the name of a Metric, Row or Image
    out = []
    for name, recs in series.items():
        kind = type(recs[0])
        if len(set(map(type, recs))) > 1:  # a name holds one kind (checked at the call), unless another tool wrote it
            recs = [r for r in recs if type(r) is kind]
        if kind is Metric:
            out.append(_metric_chart(name, recs))
        elif kind is Row:
            out.append(_table_chart(name, recs))
        else:
            files = tuple(dict.fromkeys(r.file_name for r in recs))
            is_json = recs[-1].media_type == "application/json"
            out.append(Chart(name, JSON if is_json else IMAGE, files=files, media_type=recs[-1].media_type,
                             count=len(recs)))
    return out


def last_numbers(chart: Chart) -> tuple[Any, Any, Any] | None:
    """(last, min, max) of a VALUE or LINE chart's finite numbers, else None (the runs list)."""
    if chart.kind == VALUE and is_number(chart.value):
        return chart.value, chart.value, chart.value
    if chart.kind == LINE:
        return stats(chart.y)
    return None


class JsonView(NamedTuple):
    """A JSON metric as drawn: a heatmap (`labels`, `matrix`) for a confusion matrix, else `text`."""

    kind: str  # "heatmap" or "text"
    labels: tuple[str, ...] = ()
    matrix: tuple[tuple[float, ...], ...] = ()
    text: str = ""


def json_view(data: bytes) -> JsonView:
    """How a JSON metric's file is drawn: azureml's confusion matrix schema
    (``{"schema_type": "confusion_matrix", "data": {"class_labels": [...], "matrix": [[...]]}}``)
    as a heatmap; anything else (accuracy tables, residuals, predictions) as indented JSON text."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return JsonView("text", text=data.decode("utf-8", "replace"))
    body = value.get("data") if isinstance(value, dict) else None
    if isinstance(value, dict) and value.get("schema_type") == "confusion_matrix" and isinstance(body, dict):
        labels, matrix = body.get("class_labels"), body.get("matrix")
        if (isinstance(labels, list) and isinstance(matrix, list) and len(matrix) == len(labels)
                and all(isinstance(r, list) and len(r) == len(labels) and all(is_number(c) for c in r)
                        for r in matrix)):
            return JsonView("heatmap", labels=tuple(str(x) for x in labels),
                            matrix=tuple(tuple(float(c) for c in r) for r in matrix))
    return JsonView("text", text=json.dumps(value, indent=2, ensure_ascii=False))


def by_name(runs: Sequence[tuple[str, Sequence[Chart]]]) -> dict[str, list[tuple[str, Chart]]]:
    """Compare view: metric name -> [(run label, chart)] over several runs, in first-seen order."""
    out: dict[str, list[tuple[str, Chart]]] = {}
    for label, run_charts in runs:
        for chart in run_charts:
            out.setdefault(chart.name, []).append((label, chart))
    return out
