"""A run's metrics as columns (`RunColumns`, from the `read_metrics` hook) -> what a user reads back,
without a Python object per point: the column form of `shapes.fold`, and the way back to records
for the rare reads that need them (several writers, tables or files beside the scalars).

The rules are those of `shapes.fold` and `records.in_logging_order`: the contract suite checks
that what a backend's `read_metrics` gives folds to what its `read` gives.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

from .records import Metric, Record, RunColumns, RunInfo, in_logging_order
from .shapes import fold

_new_metric = partial(tuple.__new__, Metric)


def as_list(column: Sequence[Any]) -> list[Any]:
    """A column as a list of Python values (an ``array.array`` converted in one C call)."""
    if type(column) is list:
        return column
    return column.tolist() if hasattr(column, "tolist") else list(column)


def columns_to_records(columns: RunColumns) -> list[Record]:
    """The stream records `columns` hold (scalars first, descriptions left out), in logging order."""
    m = columns.metrics
    scalars = list(map(_new_metric, zip(m.name, m.seq, m.value, m.step, m.time, m.from_list,
                                        [""] * len(m.name), m.writer)))
    return in_logging_order(scalars + list(columns.records))


def simple(columns: RunColumns) -> bool:
    """True when the columns alone are the answer: scalars only, from one writer (so their write
    order is their logging order)."""
    writers = columns.metrics.writer
    return not columns.records and (not writers or writers.count(writers[0]) == len(writers))


def fold_columns(run_id: str, columns: RunColumns) -> dict[str, Any]:
    """`shapes.fold` of the run the columns describe: the `get_metrics()` dict."""
    if not simple(columns):
        return fold([RunInfo(run_id, ""), *columns_to_records(columns)])
    m = columns.metrics
    names = m.name
    if not names:
        return {}
    first = names[0]
    values = as_list(m.value)
    if names.count(first) == len(names):  # one metric (the long runs): no per-point work
        return {first: values[0] if len(values) == 1 else values}
    grouped: dict[str, list[Any]] = {}
    for key, value in zip(names, values):
        grouped.setdefault(key, []).append(value)
    return {key: vals[0] if len(vals) == 1 else vals for key, vals in grouped.items()}
