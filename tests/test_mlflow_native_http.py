"""The mirror's JSON sender never posts a batch twice: MLflow's ``log-batch`` appends, so a batch
whose answer was lost is left to the run's reconcile instead of being re-posted, and a kept-alive
connection the server closed while idle is replaced before the post, not after it failed.

The peer is a small HTTP/1.1 server on 127.0.0.1 that behaves like a tracking server's front end
at its edges (closing idle kept-alive connections, dying mid-request), which a real `mlflow
server` does only after its keep-alive timeout."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("mlflow")
from mlflow.entities import Metric  # noqa: E402

from runbridge_mlflow import native_http  # noqa: E402


class _Peer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: str):
        self.behaviour = behaviour  # "close-after-answer" | "drop-without-answer"
        self.bodies: list[dict] = []
        self.ports: list[int] = []  # the client port of each request: one per connection
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the tracking server

    def do_POST(self):  # noqa: N802 - http.server's name
        server: _Peer = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.bodies.append(body)
        server.ports.append(self.client_address[1])
        if server.behaviour == "drop-without-answer":
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        if server.behaviour == "close-after-answer":  # an idle timeout, without saying so
            self.close_connection = True

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def peer(request):
    server = _Peer(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _metrics(n: int, offset: int = 0) -> list[Metric]:
    return [Metric("loss", 0.5 + i, 1_700_000_000_000 + i, offset + i) for i in range(n)]


@pytest.mark.parametrize("peer", ["close-after-answer"], indirect=True)
def test_a_connection_the_server_closed_while_idle_is_replaced_and_no_batch_is_posted_twice(peer):
    sender = native_http.JsonSender(f"http://127.0.0.1:{peer.server_port}")
    for batch in range(3):
        time.sleep(0.05)  # the server's close reaches this side before the next post
        assert sender.post("r1", _metrics(2, offset=10 * batch)) == []
    sender.close()
    steps = [m["step"] for body in peer.bodies for m in body["metrics"]]
    assert steps == [0, 1, 10, 11, 20, 21]  # each batch stored once, in order
    assert peer.bodies[0] == {"run_id": "r1", "metrics": [
        {"key": "loss", "value": 0.5, "timestamp": 1_700_000_000_000, "step": 0},
        {"key": "loss", "value": 1.5, "timestamp": 1_700_000_000_001, "step": 1}]}


@pytest.mark.parametrize("peer", ["drop-without-answer"], indirect=True)
def test_a_post_whose_answer_is_lost_raises_and_is_not_posted_again(peer):
    sender = native_http.JsonSender(f"http://127.0.0.1:{peer.server_port}")
    with pytest.raises((OSError, native_http.http.client.HTTPException)):
        sender.post("r1", _metrics(3))
    sender.close()
    assert len(peer.bodies) == 1  # the server may have stored it: the run's reconcile decides


@pytest.mark.parametrize("peer", ["close-after-answer"], indirect=True)
def test_values_json_cannot_spell_are_returned_for_mlflows_client(peer):
    sender = native_http.JsonSender(f"http://127.0.0.1:{peer.server_port}")
    left = sender.post("r1", [Metric("a", float("nan"), 1, 0), Metric("a", 2, 1, 1),
                              Metric("a", float("-inf"), 1, 2)])
    sender.close()
    assert [(m.value, m.step) for m in left][1:] == [(float("-inf"), 2)] and left[0].step == 0
    assert peer.bodies[0]["metrics"] == [{"key": "a", "value": 2.0, "timestamp": 1, "step": 1}]


@pytest.mark.parametrize("peer", ["keep-alive"], indirect=True)
def test_a_forked_child_opens_its_own_connection_and_the_parents_stays_usable(peer):
    """A data-parallel rank forked from a process that already posted must not write on the
    parent's socket: both processes' posts arrive whole, each once."""
    import os

    sender = native_http.JsonSender(f"http://127.0.0.1:{peer.server_port}")
    assert sender.post("r1", _metrics(1, offset=0)) == []
    pid = os.fork()
    if pid == 0:  # the child: post, then leave at once
        code = 0
        try:
            sender.post("r1", _metrics(1, offset=100))
        except BaseException:  # noqa: BLE001 - reported by the exit code
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sender.post("r1", _metrics(1, offset=200)) == []  # the parent's kept-alive connection
    sender.close()
    steps = [body["metrics"][0]["step"] for body in peer.bodies]
    assert sorted(steps) == [0, 100, 200]
    port = dict(zip(steps, peer.ports))
    assert port[0] == port[200] != port[100]  # the child on a connection of its own
