"""The metric half of `Run` (a mixin of `runbridge.run.Run`): scalars, lists, table rows and
tables, images and JSON metrics, and reading them back in the azureml shapes
(docs/metrics-shapes.md).

Every call is validated and converted here, before anything is written; the run core then
numbers it and queues it (scalars and rows through the bounded buffer, images at once).
"""

from __future__ import annotations

import json
import os
import time
from time import time_ns as _time_ns
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from . import shapes
from .buffer import WriteBuffer
from .columns import fold_columns
from .media import image_from_path, image_from_plot, is_plot, safe_name
from .records import RUNNING, Row, now_us
from .runcore import SCALAR, TABLE, NameState, RunCore
from .values import (INT64_MAX, INT64_MIN, SMALL_INT, check_description, check_name, check_step, check_text,
                     to_scalar, to_scalar_list)

if TYPE_CHECKING:
    import pandas


class RunMetrics:
    """Logging and reading metrics; `Run` sets the attributes below (`_bind`)."""

    _core: RunCore
    #: The core's state that `log` touches on every call, bound so the hot path stays inline.
    _names: dict[str, NameState]
    _buffer: WriteBuffer

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a scalar; repeating a name appends (the metric becomes a vector)."""
        kind = type(value)
        if kind is not float and (kind is not int or not -SMALL_INT < value < SMALL_INT):
            value = to_scalar(value, "value")
        state = self._names.get(name) if type(name) is str else None
        if state is None:
            check_name(name)
        if step is not None and (type(step) is not int or not INT64_MIN <= step <= INT64_MAX):
            step = check_step(step)
        if type(description) is not str or description:
            description = check_description(description)
        core = self._core
        if core.info.status != RUNNING:
            core.check_open()
        if state is None or state.kind is not SCALAR:
            seq = core.claim(name, SCALAR)
        else:
            seq = state.next_seq
            state.next_seq = seq + 1
        self._buffer.add_scalar((name, seq, value, step, _time_ns() // 1000, False, description, core.writer))

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log every value of an iterable under one name (repeated calls concatenate)."""
        check_name(name)
        values = to_scalar_list(value)
        description = check_description(description)
        self._core.check_open()
        seq = self._core.claim(name, SCALAR, len(values))
        t, writer = now_us(), self._core.writer
        self._buffer.add([(name, seq + i, v, None, t, True, description, writer) for i, v in enumerate(values)])

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one table row; one column per keyword argument."""
        check_name(name)
        if not kwargs:
            raise ValueError(f"log_row({name!r}) needs at least one column, as keyword arguments")
        cells = tuple((check_name(column, "column name"), to_scalar(v, f"column {column!r}", "log_table"))
                      for column, v in kwargs.items())
        description = check_description(description)
        self._core.check_open()
        seq = self._core.claim(name, TABLE, 1, frozenset(kwargs))
        self._buffer.add([Row(name, seq, cells, now_us(), False, description or "", self._core.writer)])

    def log_table(self, name: str, value: dict[str, Any], description: str = "") -> None:
        """Log a dict of equal-length columns (a bare scalar counts as one row)."""
        check_name(name)
        if not isinstance(value, dict):
            raise TypeError(f"value must be a dict of columns, got {type(value).__name__}")
        if not value:
            raise ValueError(f"value is an empty dict: log_table({name!r}) needs at least one column")
        columns: dict[str, list] = {}
        for column, cells in value.items():
            check_name(column, "value column name")
            if isinstance(cells, (str, bytes)) or not isinstance(cells, Iterable) or \
                    (type(cells).__module__ == "numpy" and getattr(cells, "ndim", 1) == 0):
                columns[column] = [to_scalar(cells, f"value[{column!r}]", "log_table")]
            else:
                columns[column] = [to_scalar(c, f"value[{column!r}][{i}]", "log_table") for i, c in enumerate(cells)]
        lengths = {c: len(v) for c, v in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"value columns of log_table({name!r}) have unequal lengths: {lengths}")
        n_rows = next(iter(lengths.values()))
        if n_rows == 0:
            raise ValueError(f"value columns of log_table({name!r}) are empty: no rows to log")
        description = check_description(description)
        self._core.check_open()
        seq = self._core.claim(name, TABLE, n_rows, frozenset(columns))
        t = now_us()
        self._buffer.add([Row(name, seq + i, tuple((c, columns[c][i]) for c in columns), t, True, description,
                              self._core.writer) for i in range(n_rows)])

    def log_image(self, name: str, path: str | os.PathLike | None = None, plot: Any = None,
                  description: str = "") -> None:
        """Log a PNG/JPEG file (`path`) or a matplotlib figure / axes / `pyplot` (`plot`) as a run
        file. A plot given positionally (``log_image("ROC", plt)``, as azureml allowed) is a plot."""
        check_name(name)
        if plot is None and path is not None and not isinstance(path, (str, os.PathLike)):
            if not is_plot(path):
                raise TypeError(f"path must be a file path (str or os.PathLike), or give a matplotlib Figure, "
                                f"Axes or pyplot as plot; got {type(path).__name__}")
            path, plot = None, path
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path or plot, "
                             f"got {'both' if path is not None else 'neither'}")
        description = check_description(description)
        if path is not None:
            data, media_type = image_from_path(path)
            given = Path(path)
            file_name = safe_name(given.as_posix() if not given.is_absolute() and ".." not in given.parts
                                  else given.name, "path")
        else:
            data, media_type = image_from_plot(plot), "image/png"
            file_name = safe_name(f"{name}_{int(time.time())}.png", "name")
        self._core.add_file_metric(name, file_name, data, media_type, description)

    def _log_json(self, name: str, value: Any, description: str) -> None:
        check_name(name)
        description = check_description(description)
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"value of {name!r} is not valid JSON: {exc}") from None
            data = check_text(value, "value").encode("utf-8")
        elif isinstance(value, (dict, list)):
            try:
                data = json.dumps(value, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"value of {name!r} cannot be stored as JSON: {exc}") from None
        else:
            raise TypeError(f"value must be a dict or a JSON string, got {type(value).__name__}")
        self._core.add_file_metric(name, safe_name(name), data, "application/json", description)

    def log_confusion_matrix(self, name: str, value: Any, description: str = "") -> None:
        """Store a confusion matrix (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        """Store an accuracy table (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    def log_residuals(self, name: str, value: Any, description: str = "") -> None:
        """Store residuals (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    def log_predictions(self, name: str, value: Any, description: str = "") -> None:
        """Store predictions (dict or JSON string) as a JSON run file named `name`."""
        self._log_json(name, value, description)

    # -- reading ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything buffered to the backends now."""
        self._buffer.flush()

    def get_metrics(self, name: str | None = None, recursive: bool = False, **_ignored: Any) -> dict[str, Any]:
        """The logged metrics in the azureml shapes (docs/metrics-shapes.md); `recursive` keys them by run id."""
        if recursive:
            out = {}
            for run in [self, *self.get_children(recursive=True)]:
                metrics = run.get_metrics(name=name)
                if metrics:
                    out[run.id] = metrics
            return out
        columns = self._core.read_metrics(name)
        if columns is not None:
            return fold_columns(self._core.id, columns)
        folded = shapes.fold(self._core.read_records())
        if name is not None:
            return {name: folded[name]} if name in folded else {}
        return folded

    def get_metrics_frame(self, name: str | None = None) -> "pandas.DataFrame":
        """A lossless DataFrame: one row per logged value (name, step, timestamp, value, columns)."""
        from .frames import columns_frame, metrics_frame

        columns = self._core.read_metrics(name)
        if columns is not None:
            return columns_frame(columns)
        return metrics_frame(self._core.read_records(), name)
