"""Lossless pandas views: one row per logged value, and one row per run (the Studio run list)."""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Any, Iterable, Sequence

import pandas as pd

from . import shapes
from .records import Image, Metric, Record, Row


def _utc(us: int | None) -> Any:
    return pd.NaT if us is None else pd.Timestamp(us, unit="us", tz="UTC")


def metric_rows(records: Iterable[Record], name: str | None = None) -> list[dict[str, Any]]:
    """One dict per logged value (the rows of `metrics_frame`), values of their own types."""
    rows: list[dict[str, Any]] = []
    for rec in records:
        kind = type(rec)
        if kind not in (Metric, Row, Image) or (name is not None and rec.name != name):
            continue
        row = {"name": rec.name, "seq": rec.seq, "writer": rec.writer, "step": getattr(rec, "step", None),
               "timestamp": _utc(rec.time)}
        if kind is Metric:
            row.update(kind="list" if rec.from_list else "scalar", value=rec.value)
        elif kind is Row:
            row.update(kind="table", value=None)
            row.update(dict(rec.cells))
        else:
            row.update(kind="file", value=rec.file_name)
        rows.append(row)
    return rows


_STREAMS = (Metric, Row, Image)
_KIND_OF = {False: "scalar", True: "list"}

#: The first columns of `metrics_frame`; table columns follow, sorted.
METRIC_COLUMNS = ["name", "seq", "writer", "step", "timestamp", "kind", "value"]


def metrics_frame(records: Iterable[Record], name: str | None = None) -> pd.DataFrame:
    """Columns name, seq, writer, step, timestamp, kind, value, then one column per table column
    (`writer` tells apart the processes that logged one run: each numbers its own `seq`).

    Built from columns, not one dict per value, and timestamps converted in one call: a million
    points take a fraction of a second more than reading them."""
    selected = [r for r in records if type(r) in _STREAMS and (name is None or r[0] == name)]
    if set(map(type, selected)) == {Metric}:  # scalars only (the long runs): columns in C loops
        names, seqs, values, steps, times, from_list, _, writers = (list(map(itemgetter(i), selected))
                                                                    for i in range(8))
        kinds = list(map(_KIND_OF.__getitem__, from_list))
        cells: dict[str, dict[int, Any]] = {}
    else:
        names, seqs, writers, steps, times, kinds, values, cells = [], [], [], [], [], [], [], {}
        for rec in selected:
            kind = type(rec)
            if kind is Metric:
                kinds.append(_KIND_OF[rec.from_list])
                values.append(rec.value)
                steps.append(rec.step)
            elif kind is Row:
                kinds.append("table")
                values.append(None)
                at = len(names)
                for column, value in rec.cells:
                    cells.setdefault(column, {})[at] = value
                steps.append(None)
            else:
                kinds.append("file")
                values.append(rec.file_name)
                steps.append(rec.step)
            names.append(rec.name)
            seqs.append(rec.seq)
            writers.append(rec.writer)
            times.append(rec.time)
    n = len(names)
    if not n:
        return pd.DataFrame([], columns=METRIC_COLUMNS)
    data: dict[str, Any] = {"name": names, "seq": seqs, "writer": writers, "step": steps, "timestamp": times,
                            "kind": kinds, "value": values}
    for column in sorted(cells, key=lambda c: (c not in data, c)):
        held = cells[column]
        if column in data:  # a table column named like a frame column wins in its rows
            for i, value in held.items():
                data[column][i] = value
        else:
            data[column] = [held.get(i, math.nan) for i in range(n)]  # as pandas fills a missing key
    if "timestamp" not in cells:  # one conversion for the whole column
        data["timestamp"] = pd.to_datetime(pd.array(times, dtype="Int64"), unit="us", utc=True)
    else:
        data["timestamp"] = [_utc(t) if type(t) is int else t for t in times]
    data["value"] = pd.array(values, dtype=object)
    return pd.DataFrame(data, columns=list(data))


def runs_frame(runs: Sequence[Sequence[Record]]) -> pd.DataFrame:
    """One row per run: ids, status, times, tags, last/min/max of every numeric metric."""
    out = []
    for records in runs:
        info = shapes.run_info(records)
        row: dict[str, Any] = {"run_id": info.run_id, "display_name": info.display_name or info.run_id,
                               "parent_id": info.parent_id, "status": info.status,
                               "start_time": _utc(info.start_time), "end_time": _utc(info.end_time)}
        series: dict[str, list[float]] = {}
        for rec in records:
            if type(rec) is Metric and type(rec.value) in (int, float) and not (
                    isinstance(rec.value, float) and math.isnan(rec.value)):
                series.setdefault(rec.name, []).append(rec.value)
        for metric, values in series.items():
            row[f"{metric}.last"] = values[-1]
            row[f"{metric}.min"] = min(values)
            row[f"{metric}.max"] = max(values)
        for key, value in shapes.fold_tags(records).items():
            row[f"tags.{key}"] = value
        out.append(row)
    return pd.DataFrame(out)
