"""`promtool test rules` cases: for every alert the program installs, input series that fire it
and input series that keep it quiet. tests/test_alert_rules.py fails for an alert without a case.

A case is a function of the stage's context (namespaces, thresholds, names, taken from the plan)
returning `Case`. Series are `(series selector, promtool values)` at a 1-minute interval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Series = list[tuple[str, str]]


@dataclass
class Ctx:
    apps_namespace: str
    signaling_namespace: str
    signaling_job: str
    signaling_deployment: str
    signaling_min_replicas: int
    high_connections: int
    high_error_rate: float
    turn_bandwidth_mbps: float
    turn_allocations: int
    cache_namespace: str


@dataclass
class Case:
    fire: Series
    quiet: Series
    labels: dict[str, str]  # of the fired alert, besides alertname and the rule's own labels
    at: str = "20m"
    extra: dict[str, Any] = field(default_factory=dict)


def _sel(name: str, **labels: str) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


APP = "co-talk-api"


def _app(c: Ctx, **extra: str) -> dict[str, str]:
    return {"namespace": c.apps_namespace, "job": APP, **extra}


def _sig(c: Ctx, **extra: str) -> dict[str, str]:
    return {"namespace": c.signaling_namespace, "job": c.signaling_job, **extra}


def _valkey(c: Ctx) -> dict[str, str]:
    return {"namespace": c.cache_namespace, "deployment": "valkey-cache"}


def _turn(**extra: str) -> dict[str, str]:
    return {"job": "turn", "node": "stage-turn-1", "instance": "10.0.0.10:9641", **extra}


def _per_min(per_second: float) -> str:
    """A counter growing at `per_second`, sampled every minute."""
    return f"0+{per_second * 60:g}x40"


def _ratio_case(metric: str) -> Callable[[Ctx], Case]:
    def case(c: Ctx) -> Case:
        ok, bad = _sel(metric, **_app(c, pod="a", outcome="success")), _sel(metric, **_app(c, pod="a", outcome="failure"))
        return Case(
            fire=[(ok, _per_min(20)), (bad, _per_min(1))],  # ~4.8 % fail
            quiet=[(ok, _per_min(20)), (bad, "0x40")],
            labels={"namespace": c.apps_namespace, "job": APP},
        )

    return case


def _buckets(c: Ctx, counts: dict[str, float]) -> Series:
    return [
        (_sel("http_server_requests_seconds_bucket", **_app(c, pod="a", uri="/api/messages", le=le)), _per_min(n))
        for le, n in counts.items()
    ]


CASES: dict[str, Callable[[Ctx], Case]] = {
    # ---- signaling chart (seed 000)
    "HighWebSocketConnections": lambda c: Case(
        fire=[(_sel("websocket_connections", **_sig(c, pod="p1")), f"{c.high_connections + 500}x40")],
        quiet=[(_sel("websocket_connections", **_sig(c, pod="p1")), f"{c.high_connections - 500}x40")],
        labels=_sig(c, pod="p1"),
    ),
    "SignalingServerDown": lambda c: Case(
        fire=[(_sel("up", **_sig(c, pod="p1")), "0x40"), (_sel("up", **_sig(c, pod="p2")), "1x40")],
        quiet=[(_sel("up", **_sig(c, pod="p1")), "1x40")],
        labels=_sig(c, pod="p1"),
    ),
    "SignalingTargetsMissing": lambda c: Case(
        fire=[(_sel("up", **_sig(c, pod="p1")), "0x40")],
        quiet=[(_sel("up", **_sig(c, pod="p1")), "1x40")],
        labels={},  # absent() of an expression (not a bare selector) carries no labels
    ),
    "SignalingNotReady": lambda c: Case(
        fire=[
            (
                _sel("kube_deployment_status_replicas_available", namespace=c.signaling_namespace, deployment=c.signaling_deployment),
                f"{c.signaling_min_replicas - 1}x40",
            )
        ],
        quiet=[
            (
                _sel("kube_deployment_status_replicas_available", namespace=c.signaling_namespace, deployment=c.signaling_deployment),
                f"{c.signaling_min_replicas}x40",
            )
        ],
        labels={"namespace": c.signaling_namespace, "deployment": c.signaling_deployment},
    ),
    "HighErrorRate": lambda c: Case(
        fire=[(_sel("signaling_errors_total", **_sig(c, pod="p1")), _per_min(c.high_error_rate * 2))],
        quiet=[(_sel("signaling_errors_total", **_sig(c, pod="p1")), _per_min(c.high_error_rate / 2))],
        labels={"pod": "p1"},
    ),
    # ---- Spring apps (seed 001)
    "InstanceDown": lambda c: Case(
        fire=[(_sel("up", **_app(c, pod="a")), "0x40"), (_sel("up", **_app(c, pod="b")), "1x40")],
        quiet=[(_sel("up", **_app(c, pod="a")), "1x40")],
        labels=_app(c, pod="a"),
    ),
    "MultipleInstancesDown": lambda c: Case(
        fire=[(_sel("up", **_app(c, pod=p)), "0x40") for p in "ab"] + [(_sel("up", **_app(c, pod="c")), "1x40")],
        quiet=[(_sel("up", **_app(c, pod="a")), "0x40"), (_sel("up", **_app(c, pod="b")), "1x40")],
        labels={"namespace": c.apps_namespace, "job": APP},
    ),
    "HighHttp5xxRate": lambda c: Case(
        fire=[
            (_sel("http_server_requests_seconds_count", **_app(c, pod="a", status="500")), _per_min(10)),
            (_sel("http_server_requests_seconds_count", **_app(c, pod="a", status="200")), _per_min(90)),
        ],
        quiet=[
            (_sel("http_server_requests_seconds_count", **_app(c, pod="a", status="500")), _per_min(1)),
            (_sel("http_server_requests_seconds_count", **_app(c, pod="a", status="200")), _per_min(99)),
        ],
        labels={"namespace": c.apps_namespace, "job": APP},
    ),
    "SlowResponses": lambda c: Case(
        fire=_buckets(c, {"0.5": 5, "1.0": 10, "2.0": 100, "+Inf": 100}),
        quiet=_buckets(c, {"0.5": 98, "1.0": 100, "2.0": 100, "+Inf": 100}),
        labels={"namespace": c.apps_namespace, "job": APP},
    ),
    "HighCpuUsage": lambda c: Case(
        fire=[(_sel("process_cpu_usage", **_app(c, pod="a")), "0.95x40")],
        quiet=[(_sel("process_cpu_usage", **_app(c, pod="a")), "0.5x40")],
        labels=_app(c, pod="a"),
    ),
    "HighMemoryUsage": lambda c: Case(
        # G1: eden reports max -1, the old generation carries the heap's max.
        fire=[
            (_sel("jvm_memory_used_bytes", **_app(c, pod="a", area="heap", id="G1 Eden Space")), "400x40"),
            (_sel("jvm_memory_used_bytes", **_app(c, pod="a", area="heap", id="G1 Old Gen")), "550x40"),
            (_sel("jvm_memory_max_bytes", **_app(c, pod="a", area="heap", id="G1 Eden Space")), "-1x40"),
            (_sel("jvm_memory_max_bytes", **_app(c, pod="a", area="heap", id="G1 Old Gen")), "1000x40"),
        ],
        quiet=[
            (_sel("jvm_memory_used_bytes", **_app(c, pod="a", area="heap", id="G1 Eden Space")), "300x40"),
            (_sel("jvm_memory_used_bytes", **_app(c, pod="a", area="heap", id="G1 Old Gen")), "300x40"),
            (_sel("jvm_memory_max_bytes", **_app(c, pod="a", area="heap", id="G1 Eden Space")), "-1x40"),
            (_sel("jvm_memory_max_bytes", **_app(c, pod="a", area="heap", id="G1 Old Gen")), "1000x40"),
        ],
        labels=_app(c, pod="a"),
    ),
    "DbConnectionPoolExhausted": lambda c: Case(
        fire=[(_sel("hikaricp_connections_pending", **_app(c, pod="a", pool="HikariPool-1")), "3x40")],
        quiet=[(_sel("hikaricp_connections_pending", **_app(c, pod="a", pool="HikariPool-1")), "0x40")],
        labels=_app(c, pod="a", pool="HikariPool-1"),
    ),
    "RedisPublishFailures": _ratio_case("cotalk_redis_publish_total"),
    "WebSocketDeliveryFailures": _ratio_case("cotalk_websocket_delivery_total"),
    "UnevenDelivery": lambda c: Case(
        # a: 30/s, b and c: 5/s (average 13.3/s): a delivers over twice the average.
        fire=[
            (_sel("cotalk_websocket_delivery_total", **_app(c, pod=p, outcome="success")), _per_min(r))
            for p, r in (("a", 30), ("b", 5), ("c", 5))
        ],
        # The same imbalance at night (0.4/s on average) is no alert.
        quiet=[
            (_sel("cotalk_websocket_delivery_total", **_app(c, pod=p, outcome="success")), _per_min(r))
            for p, r in (("a", 1), ("b", 0.1), ("c", 0.1))
        ],
        labels=_app(c, pod="a"),
        at="30m",
    ),
    # ---- TURN nodes (coturn's exporter)
    "TurnExporterDown": lambda c: Case(
        fire=[(_sel("up", **_turn()), "0x40")],
        quiet=[(_sel("up", **_turn()), "1x40")],
        labels=_turn(),
    ),
    "TurnBandwidthHigh": lambda c: Case(
        fire=[
            (_sel("turn_total_traffic_sentb", **_turn()), _per_min((c.turn_bandwidth_mbps + 100) * 1e6 / 8 / 2)),
            (_sel("turn_total_traffic_peer_sentb", **_turn()), _per_min((c.turn_bandwidth_mbps + 100) * 1e6 / 8 / 2)),
        ],
        quiet=[
            (_sel("turn_total_traffic_sentb", **_turn()), _per_min(c.turn_bandwidth_mbps * 1e6 / 8 / 4)),
            (_sel("turn_total_traffic_peer_sentb", **_turn()), _per_min(c.turn_bandwidth_mbps * 1e6 / 8 / 4)),
        ],
        labels={"node": "stage-turn-1"},
    ),
    "TurnSessionsHigh": lambda c: Case(
        fire=[
            (_sel("turn_total_allocations", **_turn(type="UDP")), f"{c.turn_allocations}x40"),
            (_sel("turn_total_allocations", **_turn(type="TCP")), "10x40"),
        ],
        quiet=[(_sel("turn_total_allocations", **_turn(type="UDP")), f"{c.turn_allocations // 2}x40")],
        labels={"node": "stage-turn-1"},
    ),
    # ---- the in-cluster cache (kube-state-metrics; stages with cache.placement cluster)
    "InClusterCacheDown": lambda c: Case(
        # Down since minute 11: 9 minutes at 20m fires; down since minute 17 (a wake-up) does not yet.
        fire=[(_sel("kube_deployment_status_replicas_available", **_valkey(c)), "1x10 0x30")],
        quiet=[(_sel("kube_deployment_status_replicas_available", **_valkey(c)), "1x16 0x24")],
        labels=_valkey(c),
    ),
}
