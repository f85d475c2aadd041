"""The exceptions and warnings runbridge raises; each message names the bad argument."""

from __future__ import annotations


class RunbridgeError(Exception):
    """Base class of runbridge's errors."""


class BackendUnavailableError(RunbridgeError):
    """A backend spec names a backend that is not registered, or whose extra is missing."""


class RunNotFoundError(RunbridgeError, LookupError):
    """No configured backend holds a run with that id."""


class StoreNotFoundError(RunbridgeError):
    """A read found no store at a backend's location (a typo, or nothing written there yet).

    Backends raise it from their read hooks instead of creating the store: a store is created
    only when a run writes to it. The message names the location.
    """


class RunEndedError(RunbridgeError):
    """A metric was logged to a run that has already ended (tags and properties still work)."""


class PropertyChangeError(RunbridgeError, ValueError):
    """Properties are add-only: an existing property cannot take another value."""


class FileExistsInRunError(RunbridgeError, FileExistsError):
    """Run files are write-once: that name was already uploaded."""


class RunFailedError(RunbridgeError):
    """`wait_for_completion(raise_on_error=True)` on a run that did not complete."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}


class BackendFailedWarning(RuntimeWarning):
    """A backend failed and was disabled for a run; the others carry on."""


class SpoolFailedWarning(BackendFailedWarning):
    """The local spool could not keep what a failed backend missed: those records are lost to it."""
