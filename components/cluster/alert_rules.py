"""Prometheus alert rules owned by the monitoring side (seed 001's list for the Spring apps,
and the TURN nodes' rules on coturn's real exporter metrics). Pure data: the Alerting
component installs them as one PrometheusRule; tests run them through `promtool`.

Metric names:
- Spring Boot / Micrometer (`/actuator/prometheus`): `up` (the scrape), `http_server_requests_seconds_*`,
  `process_cpu_usage`, `jvm_memory_used_bytes` / `jvm_memory_max_bytes`, `hikaricp_connections_pending`.
- The apps' own metrics follow the naming contract of docs/monitoring.md (`cotalk_*`, outcome tag).
- coturn 4.6.3's exporter (src/apps/relay/prom_server.c, vendored list in tests/fixtures):
  `turn_total_allocations{type}` (gauge, current allocations) and the byte counters
  `turn_total_traffic_sentb` / `turn_total_traffic_peer_sentb` (added when a session ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The apps' releases (cross-helper contract): the ServiceMonitor makes their job label the release name.
APP_RELEASES = ("co-talk-api", "co-talk-admin")
TURN_JOB = "turn"

# The naming contract of the apps' custom metrics (Micrometer name -> Prometheus name). The
# outcome tag is `success` or `failure`. docs/monitoring.md documents the same table.
CUSTOM_METRICS = {
    "cotalk.messages.sent": "cotalk_messages_sent_total",
    "cotalk.messages.received": "cotalk_messages_received_total",
    "cotalk.logins": "cotalk_logins_total",
    "cotalk.websocket.connections": "cotalk_websocket_connections",
    "cotalk.redis.publish": "cotalk_redis_publish_total",
    "cotalk.redis.delivery": "cotalk_redis_delivery_total",
    "cotalk.websocket.delivery": "cotalk_websocket_delivery_total",
}


@dataclass(frozen=True)
class AppThresholds:
    """Seed 001 names the rules and severities, not thresholds: these are the team's defaults."""

    error_ratio: float = 0.05  # 5xx share of requests
    p95_seconds: float = 1.0  # slow responses
    cpu_ratio: float = 0.8  # process_cpu_usage
    heap_ratio: float = 0.9  # heap used / max
    failure_ratio: float = 0.01  # Redis publish / WebSocket delivery failures
    imbalance_factor: float = 2.0  # one instance delivers > 2x the average of its release
    imbalance_min_rate: float = 1.0  # ... with at least 1 delivery/s on average (quiet nights do not count)


def _rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def app_rule_groups(namespace: str, releases: Sequence[str] = APP_RELEASES, t: AppThresholds = AppThresholds()) -> list[dict[str, Any]]:
    """Seed 001's alerts for the Spring apps, one set over every release (job label)."""
    jobs = "|".join(releases)
    sel = f'namespace="{namespace}",job=~"{jobs}"'
    by = "namespace, job"

    def ratio(metric: str) -> str:
        failed = f'sum by ({by}) (rate({metric}{{{sel},outcome="failure"}}[5m]))'
        return f"{failed} / sum by ({by}) (rate({metric}{{{sel}}}[5m])) > {t.failure_ratio}"

    delivered = f'sum by ({by}, pod) (rate(cotalk_websocket_delivery_total{{{sel},outcome="success"}}[10m]))'
    rules = [
        _rule(
            "InstanceDown",
            f"up{{{sel}}} == 0",
            "1m",
            "warning",
            "An app instance does not answer its metrics scrape",
            "{{ $labels.job }} {{ $labels.pod }} is down",
        ),
        _rule(
            "MultipleInstancesDown",
            f"count by ({by}) (up{{{sel}}} == 0) >= 2",
            "1m",
            "critical",
            "Several instances of one app are down",
            "{{ $value }} instances of {{ $labels.job }} are down",
        ),
        _rule(
            "HighHttp5xxRate",
            f'sum by ({by}) (rate(http_server_requests_seconds_count{{{sel},status=~"5.."}}[5m]))'
            f" / sum by ({by}) (rate(http_server_requests_seconds_count{{{sel}}}[5m])) > {t.error_ratio}",
            "5m",
            "critical",
            "High share of 5xx responses",
            "{{ $labels.job }}: {{ $value | humanizePercentage }} of requests fail with 5xx",
        ),
        _rule(
            "SlowResponses",
            f"histogram_quantile(0.95, sum by ({by}, le) (rate(http_server_requests_seconds_bucket{{{sel}}}[5m]))) > {t.p95_seconds}",
            "10m",
            "warning",
            "Slow HTTP responses (p95)",
            "{{ $labels.job }}: p95 response time {{ $value | humanizeDuration }}",
        ),
        _rule(
            "HighCpuUsage",
            f"max by ({by}, pod) (process_cpu_usage{{{sel}}}) > {t.cpu_ratio}",
            "10m",
            "warning",
            "An app instance uses most of its CPU",
            "{{ $labels.pod }}: CPU {{ $value | humanizePercentage }}",
        ),
        _rule(
            "HighMemoryUsage",
            # G1's eden and survivor pools report max -1: the old generation's max is the heap's.
            f'sum by ({by}, pod) (jvm_memory_used_bytes{{{sel},area="heap"}})'
            f' / sum by ({by}, pod) (jvm_memory_max_bytes{{{sel},area="heap"}} > 0) > {t.heap_ratio}',
            "10m",
            "warning",
            "An app instance's heap is nearly full",
            "{{ $labels.pod }}: heap {{ $value | humanizePercentage }}",
        ),
        _rule(
            "DbConnectionPoolExhausted",
            f"max by ({by}, pod, pool) (hikaricp_connections_pending{{{sel}}}) > 0",
            "2m",
            "critical",
            "Requests wait for a database connection",
            "{{ $labels.pod }} pool {{ $labels.pool }}: {{ $value }} threads waiting for a connection",
        ),
        _rule(
            "RedisPublishFailures",
            ratio("cotalk_redis_publish_total"),
            "5m",
            "critical",
            "Redis publishes fail",
            "{{ $labels.job }}: {{ $value | humanizePercentage }} of Redis publishes fail",
        ),
        _rule(
            "WebSocketDeliveryFailures",
            ratio("cotalk_websocket_delivery_total"),
            "5m",
            "critical",
            "WebSocket message deliveries fail",
            "{{ $labels.job }}: {{ $value | humanizePercentage }} of WebSocket deliveries fail",
        ),
        _rule(
            "UnevenDelivery",
            f"{delivered} > ignoring(pod) group_left()"
            f" ({t.imbalance_factor} * avg by ({by}) ({delivered}) and avg by ({by}) ({delivered}) > {t.imbalance_min_rate})",
            "15m",
            "warning",
            "Message delivery is uneven across instances",
            "{{ $labels.pod }} delivers {{ $value }} messages/s, over twice its release's average",
        ),
    ]
    return [{"name": "co-talk-apps", "interval": "30s", "rules": rules}]


def turn_rule_groups(bandwidth_mbps: float, allocations: int, job: str = TURN_JOB) -> list[dict[str, Any]]:
    """The TURN nodes (seed 000's TurnBandwidthHigh / TurnSessionsHigh) on coturn's metrics.

    coturn adds a session's bytes to its counters when the session ends, so the bandwidth rule
    sees long calls late; the CloudWatch NetworkOut alarm of each node is the live signal."""
    sel = f'job="{job}"'
    sent = f"rate(turn_total_traffic_sentb{{{sel}}}[5m]) + rate(turn_total_traffic_peer_sentb{{{sel}}}[5m])"
    return [
        {
            "name": "turn",
            "interval": "30s",
            "rules": [
                _rule(
                    "TurnExporterDown",
                    f"up{{{sel}}} == 0",
                    "2m",
                    "warning",
                    "A TURN node's exporter does not answer",
                    "{{ $labels.node }} ({{ $labels.instance }}) is not scraped",
                ),
                _rule(
                    "TurnBandwidthHigh",
                    f"sum by (node) ({sent}) * 8 / 1e6 > {bandwidth_mbps:g}",
                    "5m",
                    "warning",
                    "TURN bandwidth usage high",
                    "{{ $labels.node }} relays {{ $value }} Mbps",
                ),
                _rule(
                    "TurnSessionsHigh",
                    f"sum by (node) (turn_total_allocations{{{sel}}}) > {allocations}",
                    "5m",
                    "warning",
                    "Too many TURN allocations on a node",
                    "{{ $value }} allocations on {{ $labels.node }}",
                ),
            ],
        }
    ]


def cache_rule_groups(namespace: str) -> list[dict[str, Any]]:
    """The in-cluster Valkey (cache.placement cluster) on kube-state-metrics: a group's only pod
    is not ready (ElastiCache groups have CloudWatch alarms instead). 5 minutes: a wake-up's node
    start and image pull stay quiet."""
    return [
        {
            "name": "in-cluster-cache",
            "interval": "30s",
            "rules": [
                _rule(
                    "InClusterCacheDown",
                    f'kube_deployment_status_replicas_available{{namespace="{namespace}",deployment=~"valkey-.+"}} < 1',
                    "5m",
                    "critical",
                    "An in-cluster cache group has no ready Valkey pod",
                    "{{ $labels.deployment }} in {{ $labels.namespace }}: REDIS_URL of signaling and the apps points at nothing",
                ),
            ],
        }
    ]
