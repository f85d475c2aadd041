"""Shape-keeping reduction of a long series for drawing: the minimum and the maximum of each pixel
bucket, in order, so a chart of 1,000,000 points is drawn from a few thousand and still shows every
spike (what the line would have looked like at that width). numpy, imported on first use."""

from __future__ import annotations

from typing import Any, Sequence


def minmax(x: Sequence[Any], y: Sequence[Any], buckets: int = 800) -> tuple[list[float], list[float]]:
    """The points of (x, y) to draw at `buckets` pixels wide: sorted by x, non-finite y dropped,
    and beyond 2 * `buckets` points, the lowest and the highest point of each bucket of equal
    count, in x order (at most 2 * `buckets` + 2 points: the first and last are kept too)."""
    if not isinstance(buckets, int) or buckets < 1:
        raise ValueError(f"buckets must be a positive int, got {buckets!r}")
    import numpy as np

    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be two sequences of one length, got {xs.shape} and {ys.shape}")
    keep = np.isfinite(ys) & np.isfinite(xs)
    xs, ys = xs[keep], ys[keep]
    if xs.size > 1 and np.any(xs[1:] < xs[:-1]):
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
    n = xs.size
    if n <= 2 * buckets:
        return xs.tolist(), ys.tolist()
    size = -(-n // buckets)  # ceil: every bucket but the last holds `size` points
    rows = -(-n // size)
    padded = np.full(rows * size, np.nan)
    padded[:n] = ys
    grid = padded.reshape(rows, size)
    base = np.arange(rows) * size
    low = base + np.nanargmin(grid, axis=1)
    high = base + np.nanargmax(grid, axis=1)
    picks = np.unique(np.concatenate([low, high, [0, n - 1]]))
    return xs[picks].tolist(), ys[picks].tolist()


def stats(values: Sequence[Any]) -> tuple[Any, Any, Any] | None:
    """(last, min, max) of the finite numbers among `values`, each the logged value itself (ints
    stay ints), or None when there is none. One numpy pass: a million values in milliseconds."""
    import numpy as np

    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError, OverflowError):  # ints beyond the float range: the slow, exact way
        finite = [v for v in values if type(v) in (int, float) and v - v == 0]
        return (finite[-1], min(finite), max(finite)) if finite else None
    where = np.flatnonzero(np.isfinite(array))
    if where.size == 0:
        return None
    picked = array[where]
    return (values[int(where[-1])], values[int(where[int(picked.argmin())])],
            values[int(where[int(picked.argmax())])])
