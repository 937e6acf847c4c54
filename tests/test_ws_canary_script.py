"""The external WebSocket check's script (canary/ws_check.py) against real servers started here
on 127.0.0.1: a healthy WebSocket server (the `websockets` package), one that refuses the
upgrade (HTTP 403), and a TCP listener that never answers. Each case is bounded in time."""

from __future__ import annotations

import socket
import threading
import time
from http import HTTPStatus

import pytest
from websockets.sync import server as websockets_server

from canary import ws_check

TIMEOUT = 1.0
SILENT_TIMEOUT = 0.5  # the no-answer case waits this long: kept short


def _serve(**kwargs):
    server = websockets_server.serve(lambda ws: [ws.send(m) for m in ws], "127.0.0.1", 0, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"


@pytest.fixture
def healthy():
    server, url = _serve()
    yield url
    server.shutdown()


@pytest.fixture
def refusing():
    server, url = _serve(process_request=lambda conn, request: conn.respond(HTTPStatus.FORBIDDEN, "no upgrade here\n"))
    yield url
    server.shutdown()


@pytest.fixture
def silent():
    """Accepts TCP connections and never says a word (a hung server or a black-holed LB)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    yield f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


def test_passes_against_a_healthy_server(healthy):
    result = ws_check.check(healthy, TIMEOUT)
    assert result.ok, result.reason
    assert 0 < result.latency_ms < TIMEOUT * 1000


def test_fails_when_the_upgrade_is_refused(refusing):
    result = ws_check.check(refusing, TIMEOUT)
    assert not result.ok
    assert result.reason == "upgrade refused: HTTP 403"


def test_fails_within_its_timeout_when_nothing_answers(silent):
    start = time.monotonic()
    result = ws_check.check(silent, SILENT_TIMEOUT)
    took = time.monotonic() - start
    assert not result.ok
    assert "no answer" in result.reason
    assert SILENT_TIMEOUT <= took < SILENT_TIMEOUT + 0.5, f"the check must be bounded by its timeout, took {took:.2f}s"


def test_fails_when_nothing_listens():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connection refused
    result = ws_check.check(f"ws://127.0.0.1:{port}/", TIMEOUT)
    assert not result.ok and result.reason.startswith("connection failed")


def test_handler_publishes_success_and_latency(healthy, refusing, monkeypatch):
    """What the alarm reads: Success 1/0 and LatencyMs per target, and no exception on failure
    (a Lambda error would be retried and hide the failure from the metric)."""
    sent = []
    monkeypatch.setenv("TIMEOUT_SECONDS", str(TIMEOUT))
    for url, expect in ((healthy, 1.0), (refusing, 0.0)):
        monkeypatch.setenv("TARGET_URL", url)
        report = ws_check.handler({}, None, publish=lambda ns, data: sent.append((ns, data)))
        assert report["ok"] is bool(expect)
        ns, data = sent[-1]
        assert ns == ws_check.METRIC_NAMESPACE
        metrics = {d["MetricName"]: d for d in data}
        assert metrics["Success"]["Value"] == expect
        assert metrics["Success"]["Dimensions"] == [{"Name": "Target", "Value": url}]
        assert metrics["LatencyMs"]["Unit"] == "Milliseconds"
