"""Validation and conversion of logged values (docs/api.md), done at the call, before any write."""

from __future__ import annotations

import types
import warnings
from typing import Any, Iterable

from .records import Scalar

_SEQUENCE_TYPES = (list, tuple, range, set, frozenset, types.GeneratorType)


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def to_scalar(value: Any, argument: str, list_hint: str = "log_list") -> Scalar:
    """Convert a value to the stored scalar type, or raise a clear error naming `argument`.

    numpy scalars become Python ones (np.int64 stays an int); lists and generators are refused
    (with a pointer to `list_hint`); other objects are stored as their repr, with a warning.
    """
    kind = type(value)
    if kind is float or kind is int or kind is str or kind is bool or value is None:
        return value
    if _is_numpy(value):
        if getattr(value, "ndim", 0) == 0 and hasattr(value, "item"):
            return to_scalar(value.item(), argument, list_hint)
        raise TypeError(f"{argument} is a numpy array of shape {getattr(value, 'shape', '?')}; "
                        f"log a sequence with {list_hint}")
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, _SEQUENCE_TYPES) or type(value).__name__ in ("dict_keys", "dict_values"):
        raise TypeError(f"{argument} is a {kind.__name__}, not a scalar; log a sequence of values with {list_hint}")
    warnings.warn(f"{argument} of type {kind.__name__} is not a scalar; storing its repr", stacklevel=3)
    return repr(value)


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
        out = [float(v) if type(v) is int else v for v in out]
    return out


def check_name(name: Any, argument: str = "name") -> str:
    """A metric, tag or property name: a non-empty str."""
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{argument} must not be empty")
    return name


def check_step(step: Any) -> int | None:
    """A step is None or an int (numpy ints accepted)."""
    if step is None:
        return None
    if _is_numpy(step) and hasattr(step, "item"):
        step = step.item()
    if type(step) is bool or not isinstance(step, int):
        raise TypeError(f"step must be an int or None, got {type(step).__name__}")
    return int(step)


def tag_value(value: Any, argument: str) -> str | None:
    """A tag or property value: str or None; anything else is converted with str and a warning."""
    if value is None or type(value) is str:
        return value
    warnings.warn(f"{argument} of type {type(value).__name__} is converted to str", stacklevel=3)
    return str(value)
