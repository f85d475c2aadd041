"""Direct HTTP to an MLflow server over kept-alive connections: native metric points posted as
JSON (`JsonSender`) and the exact stream's chunks put as artifacts (`ChunkPutter`).

The mirror thread (`runbridge_mlflow.mirror`) sends most of what a run logs; building MLflow's
protobuf entities, then JSON through protobuf, then a `requests` call per 1000 points costs more
CPU than the points themselves, CPU the script's thread competes for. This builds the body of
MLflow's REST call ``POST <uri>/api/2.0/mlflow/runs/log-batch`` directly (keys with `json.dumps`,
finite float values with `repr`, which JSON and the server read back to the same double) and
posts it with `http.client`, reusing the connection.

A batch is posted once, never re-posted: a POST whose answer was lost may have been stored, and
``log-batch`` appends. Before reusing the kept-alive connection the sender checks that the server
has not closed it (an idle socket that reads as ready has been closed by the peer) and opens a new
one if so; a post that still fails raises, and the mirror reconciles the run at its end.

A stream chunk goes the way MLflow's proxied artifact repository sends a file (``PUT
<uri>/api/2.0/mlflow-artifacts/artifacts/<path>``), without its temporary folder, directory walk
and `requests` session: an upload is then one send and one answer, so the writer thread hands the
interpreter lock back and forth with the script twice per chunk, not a dozen times. Only for
runs whose artifact URI is ``mlflow-artifacts:/...`` (proxied by this server); others go through
MLflow's client.

Only for plain http(s) servers MLflow's client would reach without credentials: when any of the
client's auth or TLS settings (``MLFLOW_TRACKING_TOKEN``, ``_USERNAME``, ``_PASSWORD``,
``_INSECURE_TLS``, ``_CLIENT_CERT_PATH``, ``_SERVER_CERT_PATH``, ``_AUTH``) is set, or the URI
holds a user name, `usable` is False and MLflow's client sends everything. A batch holding a
value JSON cannot spell (NaN, ±inf) is not posted (`post` returns those points): the caller
sends them with MLflow's client.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import select
from typing import Any, Sequence
from urllib.parse import quote, urlsplit

AUTH_SETTINGS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_CLIENT_CERT_PATH",
                 "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_AUTH")
ENDPOINT = "/api/2.0/mlflow/runs/log-batch"
ARTIFACTS_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"


def usable(uri: str) -> bool:
    """Whether `uri` is a plain http(s) server this sender may post to (see the module)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    return not any(os.environ.get(name) for name in AUTH_SETTINGS)


def _timeout() -> float:
    try:
        return float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "120"))
    except ValueError:
        return 120.0


class KeptAlive:
    """One kept-alive connection to a server, for one thread of one process (a forked child
    opens its own: the parent's socket is not its to write on); see the module on re-posting."""

    def __init__(self, uri: str):
        parts = urlsplit(uri)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self.base = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None
        self._pid = os.getpid()

    def request(self, method: str, path: str, body: bytes, content_type: str) -> None:
        """Send one request; raises when it fails or the server does not answer 200."""
        if self._pid != os.getpid():  # forked: leave the parent's connection to the parent
            self._conn, self._pid = None, os.getpid()
        if self._conn is not None and _closed_by_peer(self._conn):
            self.close()
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=_timeout())
        try:
            self._conn.request(method, path, body, {"Content-Type": content_type})
            response = self._conn.getresponse()
            text = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.status != 200:
            raise RuntimeError(f"MLflow {method} {path} answered {response.status}: {text[:500]!r}")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class JsonSender(KeptAlive):
    """Posts ``log-batch`` bodies to one server (see the module)."""

    def post(self, run_id: str, metrics: Sequence[Any]) -> list:
        """Log `metrics` (MLflow `Metric`s, at most 1000) to run `run_id`, but for those whose
        value is not a finite number: returned, not sent. Raises when the server refuses or
        cannot be reached."""
        parts = []
        left = []
        dumps = json.dumps
        for m in metrics:
            value = m.value
            if type(value) is not float:
                value = float(value)
            if not math.isfinite(value):
                left.append(m)
                continue
            parts.append('{"key":%s,"value":%s,"timestamp":%d,"step":%d}' % (
                dumps(m.key), repr(value), m.timestamp, m.step))
        if parts:
            body = '{"run_id":%s,"metrics":[%s]}' % (dumps(run_id), ",".join(parts))
            self.request("POST", self.base + ENDPOINT, body.encode("utf-8"), "application/json")
        return left


class ChunkPutter(KeptAlive):
    """Puts files into runs' artifacts proxied by one server (see the module)."""

    def artifact_path(self, artifact_uri: str) -> str | None:
        """The request path of a run's artifact root, or None when this server does not proxy it."""
        parts = urlsplit(artifact_uri)
        segments = parts.path.strip("/").split("/")
        if parts.scheme != "mlflow-artifacts" or parts.netloc or parts.query or parts.fragment or \
                any(s in ("", ".", "..") for s in segments):  # a URI read from the server: untrusted
            return None
        return f"{self.base}{ARTIFACTS_ENDPOINT}/{quote('/'.join(segments))}"

    def put(self, root: str, name: str, data: bytes) -> None:
        """Store `data` as artifact `name` (a relative path of safe names) under `root`."""
        self.request("PUT", f"{root}/{quote(name)}", data, "application/octet-stream")


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """Whether the server closed this idle kept-alive connection: its socket reads as ready (EOF)."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: `request` connects
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)
