"""Validation and conversion of logged values (docs/api.md), done at the call, before any write."""

from __future__ import annotations

import re
import types
import warnings
from typing import Any, Iterable

from .records import Scalar

_SEQUENCE_TYPES = (list, tuple, range, set, frozenset, types.GeneratorType)


#: Steps are stored as 64-bit signed ints by SQLite, MLflow and TensorBoard.
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
SMALL_INT = 2 ** 1000  # below this, an int surely has a float copy (MLflow and TensorBoard plot one)
#: Metric, column, tag and property names: at most this many characters.
MAX_NAME_LENGTH = 1024
#: Run ids are folder names in the file backends: these characters only, at most 255 of them.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,255}")


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def check_text(value: str, argument: str) -> str:
    """A str every backend can store: encodable as UTF-8 (a lone surrogate such as '\\ud800' is not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start:exc.end]
        raise ValueError(f"{argument} contains {bad!r} at position {exc.start}, a lone surrogate that "
                         "cannot be stored as UTF-8 (nothing was logged)") from None
    return value


def check_int(value: int, argument: str) -> int:
    """An int that every backend can hold (exactly, with a float copy for plots)."""
    if -SMALL_INT < value < SMALL_INT:
        return value
    try:
        float(value)
    except OverflowError:
        raise ValueError(f"{argument} is an int too large to store ({value.bit_length()} bits; at most "
                         f"the largest float, about 1.8e308, in magnitude; log it as a str)") from None
    return value


def check_description(description: Any, argument: str = "description") -> str:
    """A metric description: a str (None counts as empty)."""
    if description is None:
        return ""
    if type(description) is not str:
        raise TypeError(f"{argument} must be a str, got {type(description).__name__}")
    return check_text(description, argument) if description else description


def _element_count(value: Any) -> int | None:
    """How many values an array-like holds (numpy, pandas, torch: anything with `shape` and
    `item()`), or None for other objects."""
    if not (hasattr(value, "shape") and callable(getattr(value, "item", None))):
        return None
    size = getattr(value, "size", None)
    if callable(size):  # torch: size() is the shape; numel() the count
        numel = getattr(value, "numel", None)
        return int(numel()) if callable(numel) else None
    if isinstance(size, int):
        return size
    return None


def to_scalar(value: Any, argument: str, list_hint: str = "log_list") -> Scalar:
    """Convert a value to the stored scalar type, or raise a clear error naming `argument`.

    numpy scalars become Python ones (np.int64 stays an int), and so does an array, pandas Series
    or tensor holding one value; longer ones, lists and generators are refused (with a pointer to
    `list_hint`); other objects are stored as their repr, with a warning.
    """
    kind = type(value)
    if kind is float or kind is bool or value is None:
        return value
    if kind is int:
        return check_int(value, argument)
    if kind is str:
        return check_text(value, argument)
    count = _element_count(value)
    if count is not None:  # a numpy array or scalar, a pandas Series, a torch tensor, ...
        if count == 1:
            return to_scalar(value.item(), argument, list_hint)
        raise TypeError(f"{argument} is a {kind.__name__} of {count} values (shape "
                        f"{tuple(getattr(value, 'shape', ()))}), not a scalar; log a sequence with {list_hint}")
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return check_int(int(value), argument)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return check_text(str(value), argument)
    if isinstance(value, _SEQUENCE_TYPES) or type(value).__name__ in ("dict_keys", "dict_values"):
        raise TypeError(f"{argument} is a {kind.__name__}, not a scalar; log a sequence of values with {list_hint}")
    warnings.warn(f"{argument} of type {kind.__name__} is not a scalar; storing its repr", stacklevel=3)
    return check_text(repr(value), argument)


def to_scalar_list(values: Any, argument: str = "value") -> list[Scalar]:
    """An iterable of scalars as a list; any float among the numbers makes every number a float."""
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise TypeError(f"{argument} must be a list (or other iterable) of scalars, got {type(values).__name__}")
    if _is_numpy(values) and getattr(values, "ndim", 1) != 1:
        raise TypeError(f"{argument} must be one-dimensional, got shape {values.shape}")
    out = [to_scalar(v, f"{argument}[{i}]", "log_table") for i, v in enumerate(values)]
    if not out:
        raise ValueError(f"{argument} is empty: log_list needs at least one value (nothing was logged)")
    if any(type(v) is float for v in out):
        out = [float(v) if type(v) is int else v for v in out]  # fits: to_scalar checked each int
    return out


def check_name(name: Any, argument: str = "name") -> str:
    """A metric, tag or property name: a non-empty str of at most `MAX_NAME_LENGTH` characters."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{argument} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{argument} is {len(name)} characters; names have at most {MAX_NAME_LENGTH}")
    return check_text(name, argument)


def check_step(step: Any) -> int | None:
    """A step is None or an int that fits 64 bits signed (numpy ints accepted)."""
    if step is None:
        return None
    if _is_numpy(step) and hasattr(step, "item"):
        step = step.item()
    if type(step) is bool or not isinstance(step, int):
        raise TypeError(f"step must be an int or None, got {type(step).__name__}")
    step = int(step)
    if not INT64_MIN <= step <= INT64_MAX:
        raise ValueError(f"step {step} does not fit a 64-bit signed int ({INT64_MIN} to {INT64_MAX}), "
                         "the step type of every backend (nothing was logged)")
    return step


def check_run_id(run_id: Any, argument: str = "run_id") -> str:
    """A run id chosen by the user: letters, digits, '_', '.', '-', at most 255, not '.' or '..'."""
    if not isinstance(run_id, str):
        raise TypeError(f"{argument} must be a str, got {type(run_id).__name__}")
    if not RUN_ID_PATTERN.fullmatch(run_id) or run_id in (".", ".."):
        shown = run_id if len(run_id) <= 80 else run_id[:80] + "..."
        raise ValueError(f"{argument} {shown!r} is not a valid run id: use 1 to 255 letters, digits, "
                         "'_', '.' or '-' (not '.' or '..'), so it is a safe folder name in every backend")
    return run_id


def tag_value(value: Any, argument: str) -> str | None:
    """A tag or property value: str or None; anything else is converted with str and a warning."""
    if value is None:
        return value
    if type(value) is not str:
        warnings.warn(f"{argument} of type {type(value).__name__} is converted to str", stacklevel=3)
        value = str(value)
    return check_text(value, argument)
