"""The external WebSocket check (a scheduled Lambda, components/alerting/ws_canary.py).

Seed 000's postmortem: "we never checked WebSocket connections". Every run opens the public
signaling URL from outside the VPC, completes the WebSocket upgrade and a ping/pong (the
handshake the signaling server documents: it answers every Ping with a Pong; its JSON messages
need a room and a peer), then publishes two CloudWatch metrics:

- `Success` (1 or 0) and `LatencyMs` (upgrade + pong), dimension `Target` = the URL.

A failure is reported as Success=0, never as a Lambda error: the alarm reads the metric, and a
run that does not happen at all (missing data) is treated as a failure by the alarm too.
Bounded: the whole check takes at most TIMEOUT_SECONDS.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException
from websockets.sync.client import connect

METRIC_NAMESPACE = "VoipInfra/WebSocketCheck"


@dataclass
class Result:
    ok: bool
    latency_ms: float
    reason: str


def check(url: str, timeout: float) -> Result:
    """Upgrade to a WebSocket at `url` and exchange one ping/pong, all within `timeout` seconds."""
    start = time.monotonic()

    def elapsed_ms() -> float:
        return round((time.monotonic() - start) * 1000, 1)

    try:
        # No proxy (a Lambda has none), no keepalive pings of our own, a short close.
        with connect(url, open_timeout=timeout, close_timeout=1, ping_interval=None, proxy=None) as ws:
            remaining = max(0.1, timeout - (time.monotonic() - start))
            if not ws.ping().wait(remaining):
                return Result(False, elapsed_ms(), f"no pong within {timeout:g}s")
            return Result(True, elapsed_ms(), "upgrade and ping/pong ok")
    except InvalidStatus as exc:
        return Result(False, elapsed_ms(), f"upgrade refused: HTTP {exc.response.status_code}")
    except TimeoutError:
        return Result(False, elapsed_ms(), f"no answer within {timeout:g}s")
    except (InvalidHandshake, WebSocketException) as exc:
        return Result(False, elapsed_ms(), f"WebSocket handshake failed: {exc}")
    except OSError as exc:
        return Result(False, elapsed_ms(), f"connection failed: {exc}")


def metric_data(url: str, result: Result) -> list[dict]:
    dims = [{"Name": "Target", "Value": url}]
    return [
        {"MetricName": "Success", "Dimensions": dims, "Value": 1.0 if result.ok else 0.0, "Unit": "Count"},
        {"MetricName": "LatencyMs", "Dimensions": dims, "Value": result.latency_ms, "Unit": "Milliseconds"},
    ]


def _put_metrics(namespace: str, data: list[dict]) -> None:
    import boto3  # the Lambda runtime's; imported here so the check runs without it

    boto3.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)


def handler(event: dict, context: object, publish: Callable[[str, list[dict]], None] = _put_metrics) -> dict:
    url = os.environ["TARGET_URL"]
    timeout = float(os.environ.get("TIMEOUT_SECONDS", "10"))
    result = check(url, timeout)
    publish(os.environ.get("METRIC_NAMESPACE", METRIC_NAMESPACE), metric_data(url, result))
    report = {"target": url, "ok": result.ok, "latencyMs": result.latency_ms, "reason": result.reason}
    print(json.dumps(report))  # one JSON line per run in the function's log group
    return report
