"""Records -> what a user reads back (pure functions; the only place these rules live).

`fold` gives the azureml `get_metrics()` shapes (docs/metrics-shapes.md): one stored value comes back bare,
several as a list; tables come back as a dict of columns, a single row unwrapped to a dict of
scalars; images and JSON metrics as a ``runbridge://<run id>/<file>`` locator.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from .records import RESERVED_PREFIX, File, Image, Metric, Property, Record, Row, RunInfo, RunSummary, Tag

LOCATOR_SCHEME = "runbridge://"


def locator(run_id: str, file_name: str) -> str:
    """The string `get_metrics` returns for an image or JSON metric."""
    return f"{LOCATOR_SCHEME}{run_id}/{file_name}"


def _bare_or_list(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def fold(records: Iterable[Record]) -> dict[str, Any]:
    """The `get_metrics()` dict of one run, in first-logged order of names."""
    run_id = ""
    scalars: dict[str, list[Any]] = {}
    tables: dict[str, dict[str, list[Any]]] = {}
    table_rows: dict[str, int] = {}
    files: dict[str, str] = {}
    order: dict[str, None] = {}
    for rec in records:
        kind = type(rec)
        if kind is Metric:
            scalars.setdefault(rec.name, []).append(rec.value)
            order.setdefault(rec.name)
        elif kind is Row:
            columns = tables.setdefault(rec.name, {})
            for column, value in rec.cells:
                columns.setdefault(column, []).append(value)
            table_rows[rec.name] = table_rows.get(rec.name, 0) + 1
            order.setdefault(rec.name)
        elif kind is Image:
            if rec.name not in files:
                files[rec.name] = rec.file_name
            order.setdefault(rec.name)
        elif kind is RunInfo:
            run_id = rec.run_id
    out: dict[str, Any] = {}
    for name in order:
        if name in scalars:
            out[name] = _bare_or_list(scalars[name])
        elif name in tables:
            columns = tables[name]
            if table_rows[name] == 1:
                out[name] = {c: v[0] for c, v in columns.items()}
            else:
                out[name] = columns
        else:
            out[name] = locator(run_id, files[name])
    return out


def fold_tags(records: Iterable[Record], include_reserved: bool = False) -> dict[str, str | None]:
    """The run's current tags: the last set per key, minus removed ones."""
    tags: dict[str, str | None] = {}
    for rec in records:
        if type(rec) is Tag:
            if rec.removed:
                tags.pop(rec.key, None)
            else:
                tags[rec.key] = rec.value
    if not include_reserved:
        tags = {k: v for k, v in tags.items() if not k.startswith(RESERVED_PREFIX)}
    return tags


def fold_properties(records: Iterable[Record]) -> dict[str, str | None]:
    """The run's properties (add-only: the first value per key)."""
    props: dict[str, str | None] = {}
    for rec in records:
        if type(rec) is Property and rec.key not in props:
            props[rec.key] = rec.value
    return {k: v for k, v in props.items() if not k.startswith(RESERVED_PREFIX)}


def file_names(records: Iterable[Record]) -> list[str]:
    """Every user-visible run file (uploads, outputs, images, JSON metrics), sorted."""
    names = set()
    for rec in records:
        if type(rec) is File:
            names.add(rec.name)
        elif type(rec) is Image:
            names.add(rec.file_name)
    return sorted(n for n in names if not n.startswith(RESERVED_PREFIX))


def run_info(records: Iterable[Record]) -> RunInfo | None:
    """The `RunInfo` a `read` returned (the first one)."""
    for rec in records:
        if type(rec) is RunInfo:
            return rec
    return None


def metric_trios(records: Iterable[Record]) -> dict[str, tuple[Any, Any, Any]]:
    """``(last, min, max)`` of each metric's int and float values (NaN and bools left out), in
    the records' order: the numbers of a run list."""
    series: dict[str, list[Any]] = {}
    for rec in records:
        if type(rec) is Metric and type(rec.value) in (int, float) and not (
                type(rec.value) is float and math.isnan(rec.value)):
            series.setdefault(rec.name, []).append(rec.value)
    return {name: (values[-1], min(values), max(values)) for name, values in series.items()}


def summarize(records: Sequence[Record]) -> RunSummary:
    """The `RunSummary` of a run's records (as `read` gives them, in logging order)."""
    return RunSummary(run_info(records), fold_tags(records, include_reserved=True), fold_properties(records),
                      metric_trios(records))
