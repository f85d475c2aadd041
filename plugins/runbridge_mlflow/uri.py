"""Tracking URIs, checked without importing MLflow (``import mlflow`` alone takes seconds): where a
local store lives, whether MLflow knows the URI's scheme, and whether an http server answers.

Kept free of MLflow so that a spec with a typo or a server that is down is reported at once.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib import metadata
from pathlib import Path

from runbridge.errors import RunbridgeError
from runbridge.hookspecs import StoreLocation

#: Schemes MLflow's tracking store registry knows (besides plugins registered under the entry
#: point group below): a plain path, file stores, tracking servers, SQL databases (with an
#: optional driver, ``postgresql+psycopg``) and Databricks.
KNOWN_SCHEMES = ("", "file", "http", "https", "sqlite", "postgresql", "mysql", "mssql",
                 "databricks", "databricks-uc", "uc")
PLUGIN_GROUP = "mlflow.tracking_store"
#: An http tracking server is probed (GET /health) at most this often before a call, so a server
#: that went away fails the call in a second instead of after MLflow's retries.
#: ``RUNBRIDGE_MLFLOW_PROBE_INTERVAL`` (seconds, read when the backend opens) overrides it.
PROBE_EVERY_S = 5.0
PROBE_INTERVAL_ENV = "RUNBRIDGE_MLFLOW_PROBE_INTERVAL"
#: MLflow's HTTP client retries a failing request for minutes by default (7 retries, backoff factor
#: 2, 120 s timeout). For an http tracking URI these bounds apply instead, so a server that dies
#: mid-run is given up within seconds (and its calls spooled); a value the user set is kept.
#: They are environment variables, so they also apply to the script's own MLflow calls.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
#: Seconds to wait for a TCP (and TLS) connection to a tracking server before calling it unreachable.
CONNECT_TIMEOUT_S = 2.0
#: Seconds a server that accepted the connection may take to answer ``/health`` (busy, not dead).
ANSWER_TIMEOUT_S = 10.0


class MlflowUnreachableError(RunbridgeError, ConnectionError):
    """The MLflow tracking server does not answer."""


def scheme_of(uri: str) -> str:
    """The scheme MLflow picks a store by: '' for a plain path (a Windows drive letter too), the
    database type for ``postgresql+psycopg://``, the bare word for ``databricks``."""
    if uri in ("databricks", "databricks-uc", "uc"):
        return uri
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    if len(scheme) == 1 and scheme.isalpha():
        return ""
    return scheme.split("+", 1)[0]


def check_scheme(uri: str) -> None:
    """Refuse a tracking URI whose scheme neither MLflow nor an installed MLflow plugin handles,
    naming the spec (MLflow itself would blame its model registry)."""
    scheme = scheme_of(uri)
    if scheme in KNOWN_SCHEMES:
        return
    plugins = {ep.name for ep in metadata.entry_points(group=PLUGIN_GROUP)}
    if scheme in plugins:
        return
    known = ", ".join(s for s in (*KNOWN_SCHEMES, *sorted(plugins)) if s)
    raise RunbridgeError(f"unknown tracking URI scheme {scheme!r} in backend spec 'mlflow:{uri}': MLflow "
                         f"takes {known}, or a folder path (e.g. 'mlflow:http://127.0.0.1:5000')")


def is_http(uri: str) -> bool:
    """True for a tracking server's URI."""
    return uri.lower().startswith(("http://", "https://"))


def probe(uri: str, answer_timeout: float = ANSWER_TIMEOUT_S) -> None:
    """Raise `MlflowUnreachableError`, naming the URI, unless the server at `uri` answers
    ``GET <uri>/health`` (any HTTP status counts: it answered). A refused or silent connection
    fails within `CONNECT_TIMEOUT_S`; a server that accepted may take `answer_timeout`."""
    url = urllib.parse.urlsplit(uri.rstrip("/") + "/health")
    try:
        if urllib.request.getproxies() and not urllib.request.proxy_bypass(url.hostname or ""):
            _probe_by_urllib(url.geturl(), answer_timeout)  # through the proxy, as MLflow goes
        else:
            _probe_direct(url, answer_timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MlflowUnreachableError(
            f"MLflow tracking server {uri} is unreachable ({reason}); "
            f"start it or fix the backend spec 'mlflow:{uri}'") from None


def _probe_direct(url: urllib.parse.SplitResult, answer_timeout: float) -> None:
    secure = url.scheme.lower() == "https"
    kind = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    conn = kind(url.hostname or "", url.port or (443 if secure else 80), timeout=CONNECT_TIMEOUT_S)
    try:
        conn.connect()
        conn.sock.settimeout(answer_timeout)
        conn.request("GET", url.path or "/health")
        conn.getresponse().read()
    finally:
        conn.close()


def _probe_by_urllib(url: str, answer_timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=answer_timeout):
            pass
    except urllib.error.HTTPError:
        pass  # it answered


def bound_http_retries() -> None:
    """Apply `HTTP_BOUNDS` where the user set nothing (for an http tracking URI)."""
    for name, value in HTTP_BOUNDS.items():
        os.environ.setdefault(name, value)


def probe_interval() -> float:
    """Seconds between two probes of an http tracking server: the environment's, else the default."""
    raw = os.environ.get(PROBE_INTERVAL_ENV, "").strip()
    if not raw:
        return PROBE_EVERY_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise RunbridgeError(f"{PROBE_INTERVAL_ENV}={raw!r} is not a number of seconds >= 0 (e.g. 5)")
    return seconds


class Prober:
    """Probes one server at most every `every_s` seconds (a failed probe is always repeated)."""

    def __init__(self, uri: str, every_s: float):
        self.uri = uri
        self.every_s = every_s
        self._answered_at = -1e9

    def check(self, force: bool = False) -> None:
        """Probe unless the server answered less than `every_s` seconds ago (or `force`)."""
        now = time.monotonic()
        if not force and now - self._answered_at < self.every_s:
            return
        try:
            timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "") or ANSWER_TIMEOUT_S)
        except ValueError:
            timeout = ANSWER_TIMEOUT_S
        probe(self.uri, min(timeout, ANSWER_TIMEOUT_S))
        self._answered_at = now


def store_location(location: str, base: str) -> StoreLocation:
    """A tracking URI with a local store made absolute: ``sqlite:///rel.db`` becomes
    ``sqlite:////abs/rel.db`` (owning the database, its journals and the ``mlartifacts`` folder
    beside it), ``file:rel`` / a bare path becomes ``file:///abs/rel`` / ``/abs/rel`` (owning that
    folder); servers and other schemes are kept as written."""
    root = Path(base)
    scheme, sep, rest = location.partition(":")
    if sep and scheme.lower() == "sqlite" and rest.startswith("///") and ":memory:" not in rest:
        path = rest[3:]
        db = (root / path).resolve() if not path.startswith("/") else Path(path)
        return StoreLocation(f"sqlite:///{db}", (*(f"{db}{s}" for s in ("", "-journal", "-wal", "-shm")),
                                                 str(db.parent / "mlartifacts")))
    if sep and scheme.lower() == "file":
        path = rest[2:] if rest.startswith("//") else rest
        folder = (root / Path(path).expanduser()).resolve()
        return StoreLocation(folder.as_uri(), (str(folder),))
    if not sep and (location.startswith((".", "~", "/")) or "/" in location):  # a bare file-store path
        folder = (root / Path(location).expanduser()).resolve()
        return StoreLocation(str(folder), (str(folder),))
    return StoreLocation(location)
