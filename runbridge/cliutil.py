"""Plumbing shared by the `runbridge` commands: one-line errors, the --backend option, the
workspace it names, and plain-text tables."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import click

from .config import split_specs
from .errors import RunbridgeError
from .run import Workspace


def one_line_errors(command: Callable) -> Callable:
    """Turn any error into click's one-line ``Error: ...`` and exit status 1 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # `runbridge metrics ... | head`: the reader has enough
            sys.stderr.close()
            raise SystemExit(0) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's contract is one line per error
            if os.environ.get("RUNBRIDGE_DEBUG"):
                raise
            text = str(exc) if isinstance(exc, (RunbridgeError, LookupError, ValueError)) and str(exc) \
                else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KeyError) and exc.args:
                text = str(exc.args[0])
            raise click.ClickException(" ".join(text.split())) from None

    return wrapper


def backend_option(command: Callable) -> Callable:
    return click.option(
        "--backend", "-b", "backend", multiple=True, metavar="SPEC",
        help="Backend spec(s) to use, e.g. sqlite:.runbridge/runs.db or mlflow:http://127.0.0.1:5000 "
             "(repeat or comma-separate; default: RUNBRIDGE_BACKENDS, runbridge.toml, the default store).",
    )(command)


def specs_of(backend: Sequence[str]) -> list[str] | None:
    specs = [s for item in backend for s in split_specs(item)]
    return specs or None


def open_workspace(backend: Sequence[str]) -> Workspace:
    """The workspace of the --backend specs (else the configured backends)."""
    return Workspace(backends=specs_of(backend))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "None"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
