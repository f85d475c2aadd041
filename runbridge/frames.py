"""Lossless pandas views: one row per logged value, and one row per run (the Studio run list)."""

from __future__ import annotations

import math
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


#: The first columns of `metrics_frame`; table columns follow, sorted.
METRIC_COLUMNS = ["name", "seq", "writer", "step", "timestamp", "kind", "value"]


def metrics_frame(records: Iterable[Record], name: str | None = None) -> pd.DataFrame:
    """Columns name, seq, writer, step, timestamp, kind, value, then one column per table column
    (`writer` tells apart the processes that logged one run: each numbers its own `seq`)."""
    rows = metric_rows(records, name)
    columns = METRIC_COLUMNS
    frame = pd.DataFrame(rows, columns=columns + sorted({c for r in rows for c in r} - set(columns)))
    return frame.astype({"value": object}) if not frame.empty else frame


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
