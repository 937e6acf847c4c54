"""The one source of every port that crosses a tier boundary, and of the public ingress
allow-list they imply.

The TURN ports are stage config (`turn.*`); the others are fixed by the images and the AWS
services. Every consumer reads them from here: the load balancers and their target groups
(edge), the node security group (cluster), the data stores' security groups (data), the
signaling chart values and its NetworkPolicy, and the policy pack's configuration
(`tools/policy.policy_config` builds `publicIngressAllowList` from the plan's config with
`Ports.of(...).public_ingress()`). A port change is one edit: config for TURN, this file for
the rest. Pure data: no Pulumi import, so tools and the policy runner use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config import APP_HTTP_PORT, APP_MANAGEMENT_PORT, TurnConfig

HTTPS = 443


@dataclass(frozen=True)
class Ports:
    # TURN (config `turn.*`): clients reach the nodes on `turn_listening` (UDP+TCP) and the
    # relay range (UDP); TURNS on `turn_tls` terminates on the NLB and forwards to the nodes'
    # TCP `turn_listening`; Prometheus scrapes `turn_metrics` from the VPC.
    turn_listening: int = 3478
    turn_tls: int = 5349
    turn_relay_min: int = 49152
    turn_relay_max: int = 65535
    turn_metrics: int = 9641
    # The NLB's signaling listener (wss://ws.<domain>).
    signaling_public: int = HTTPS
    # The signaling pods: WebSocket traffic, and /ready + /metrics (the image's ports).
    signaling_http: int = 8080
    signaling_metrics: int = 9090
    # The OpenTelemetry collector's Zipkin receiver (the apps' Brave reporter posts spans there).
    zipkin: int = 9411
    # The Spring apps (charts/co-talk): traffic, and Actuator (ALB health checks, metrics).
    app_http: int = APP_HTTP_PORT
    app_management: int = APP_MANAGEMENT_PORT
    # The data stores (ElastiCache Redis/Valkey, RDS PostgreSQL).
    redis: int = 6379
    postgres: int = 5432

    @classmethod
    def of(cls, turn: TurnConfig) -> Ports:
        return cls(
            turn_listening=turn.listening_port,
            turn_tls=turn.tls_port,
            turn_relay_min=turn.relay_ports.min,
            turn_relay_max=turn.relay_ports.max,
            turn_metrics=turn.metrics_port,
        )

    @classmethod
    def from_plan_config(cls, config: dict[str, Any]) -> Ports:
        """From a plan file's `config` (camelCase, defaulted): the policy runner's view."""
        turn = config.get("turn")
        return cls.of(TurnConfig.model_validate(turn)) if turn else cls()

    @property
    def turn_client_ports(self) -> tuple[int, int]:
        """What in-VPC clients (the signaling pods) open to the TURN nodes."""
        return (self.turn_listening, self.turn_tls)

    def public_ingress(self) -> list[dict[str, Any]]:
        """The ports this design opens to the internet on purpose, in the policy pack's
        `publicIngressAllowList` shape: the TURN nodes (listening port, UDP relay range) and
        the NLB (signaling over TLS, TURNS)."""
        return [
            {"protocol": "udp", "fromPort": self.turn_listening, "toPort": self.turn_listening},
            {"protocol": "tcp", "fromPort": self.turn_listening, "toPort": self.turn_listening},
            {"protocol": "udp", "fromPort": self.turn_relay_min, "toPort": self.turn_relay_max},
            {"protocol": "tcp", "fromPort": self.signaling_public, "toPort": self.signaling_public},
            {"protocol": "tcp", "fromPort": self.turn_tls, "toPort": self.turn_tls},
        ]
