"""SIGTERM in a process that writes a run: unwind, flush, end the run Failed, then die of SIGTERM.

The default action of SIGTERM kills the process at once and leaves its runs Running with the
last buffered points unwritten. The handler installed here instead raises `Terminated` in the
main thread (so `finally` blocks and ``with run:`` see it, and no lock the handler would need is
held); interpreter exit then writes everything buffered, marks the runs this process started
Failed ("killed by SIGTERM"; an attached run is only flushed: the submitting process ends it), and
re-sends SIGTERM with the default action so the exit status stays "killed by SIGTERM".

Installed only from the main thread of a process that writes a run, only over the default
handler (a handler the script installed is kept), and never in multiprocessing children (a pool
worker with a Python handler can miss a signal that lands just before it blocks on the pool's
queue lock, which hangs `Pool.terminate()`).
"""

from __future__ import annotations

import os
import signal
import threading

_INSTALLED = False
_received: int | None = None


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (not an `Exception`: code
    that catches errors does not swallow it)."""


def _handler(signum: int, _frame: object) -> None:
    global _received
    _received = signum
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not cut the exit flush short
    raise Terminated(f"killed by {signal.Signals(signum).name}")


def install_sigterm() -> None:
    """Install the SIGTERM handler if this process and its current handler allow it."""
    global _INSTALLED
    if _INSTALLED or not hasattr(signal, "SIGTERM"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _handler)
    except (ValueError, OSError):  # not the main interpreter
        return
    _INSTALLED = True


def _note(signum: int, _frame: object) -> None:
    global _received
    _received = signum


def exiting() -> None:
    """The exit flush has begun: a SIGTERM from now on is noted (and acted on after it), not raised."""
    if _INSTALLED and signal.getsignal(signal.SIGTERM) is _handler:
        try:
            signal.signal(signal.SIGTERM, _note)
        except ValueError:  # exit hook run outside the main thread (a multiprocessing finalizer)
            pass


def received() -> int | None:
    """The signal that is ending this process, if any."""
    return _received


def exit_as_signalled() -> None:
    """After the exit flush: die of the signal received, with its default action."""
    if _received is None:
        return
    signal.signal(_received, signal.SIG_DFL)
    os.kill(os.getpid(), _received)


def _after_fork_in_child() -> None:
    global _INSTALLED, _received
    _received = None
    _INSTALLED = False
    if signal.getsignal(signal.SIGTERM) is _handler:  # a forked child's runs are not this one's
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
