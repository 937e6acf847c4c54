"""The migration's dual run (issue 15 item 11): while both sides take traffic the AWS pods use the
NAS Redis over the VPN (one pub/sub bus), through `migration.dualRunRedis` + the secret
`nasRedisPassword`. Invariant over every stage: signaling's Redis egress (NetworkPolicy and the
nodes' security group) stays inside the VPC, except the NAS Redis /32 on its port, and only where the
bridge's VPN exists and the override is set."""

from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any

import pytest

from components.config import DualRunRedis
from components.migration import nas_redis_url
from tests.harness import stack_plan, variant
from tests.test_config import errors_for

NAS_REDIS = "192.168.10.21"
DUAL_RUN = {"voip-infra:migration": {"dualRunRedis": {"host": NAS_REDIS}}, "voip-infra:nasRedisPassword": "nas-redis-secret"}


def dual_run_plan():
    return variant("nas-migration", DUAL_RUN, secret_keys=("voip-infra:nasRedisPassword",))


def _release_values(plan) -> dict[str, Any]:
    (release,) = [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release" and r["name"].endswith("-signaling")]
    values = release["props"]["values"]
    return json.loads(values) if isinstance(values, str) else values


def _node_sg(plan) -> dict[str, Any]:
    (sg,) = [r for r in plan["resources"] if r["type"] == "aws:ec2/securityGroup:SecurityGroup" and r["name"].endswith("-eks-nodes-sg")]
    return sg


def redis_egress_problems(plan) -> list[str]:
    """Redis egress of the signaling pods (NetworkPolicy) and of the nodes (SG, non-HTTPS) that leaves
    the VPC, unless it is exactly the configured NAS Redis of a stage whose bridge is enabled."""
    cfg = plan["config"]
    vpc = ipaddress.ip_network(cfg["network"]["cidr"])
    migration = cfg.get("migration") or {}
    nas = migration.get("dualRunRedis") if migration.get("enabled") else None
    allowed = set()
    if nas is not None:
        allowed = {(f"{nas.get('host') or migration['nasHost']}/32", nas["port"])}
    np = _release_values(plan)["networkPolicy"]["redis"]
    out = {(c, np["port"]) for c in np["cidrs"]}
    out |= {
        (c, e["fromPort"])
        for e in _node_sg(plan)["props"]["egress"]
        for c in e.get("cidrBlocks", [])
        if e["fromPort"] != 443 and c != "0.0.0.0/0"
    }
    return sorted(
        f"{c}:{port} leaves the VPC" for c, port in out if not ipaddress.ip_network(c).subnet_of(vpc) and (c, port) not in allowed
    )


def test_redis_egress_stays_in_the_vpc_without_the_override(plan):
    assert redis_egress_problems(plan) == []
    redis = _release_values(plan)["networkPolicy"]["redis"]
    if plan["config"]["cache"]["placement"] == "cluster":  # pods, not CIDRs: tests/test_cache_placement.py
        assert redis["cidrs"] == [] and [p["namespace"] for p in redis["pods"]] == ["cache"]
    else:
        assert redis == {"cidrs": [plan["config"]["network"]["cidr"]], "port": 6379}


def test_dual_run_points_the_pods_at_the_nas_redis_and_opens_only_that():
    plan = dual_run_plan()
    assert redis_egress_problems(plan) == []
    assert _release_values(plan)["networkPolicy"]["redis"] == {"cidrs": [f"{NAS_REDIS}/32"], "port": 6379}
    nas_egress = [e for e in _node_sg(plan)["props"]["egress"] if e["cidrBlocks"] == [f"{NAS_REDIS}/32"]]
    assert [(e["protocol"], e["fromPort"], e["toPort"]) for e in nas_egress] == [("tcp", 6379, 6379)]
    # REDIS_URL is a secret in the Kubernetes Secret (never in values); the program builds it from the
    # override and the password, with the NAS's database and no TLS (the VPN encrypts the path).
    (secret,) = [s for s in plan.of_type("kubernetes:core/v1:Secret") if s["props"]["metadata"]["name"] == "signaling-redis"]
    assert secret["props"]["stringData"] in ("[secret]", {"url": "[secret]"})
    assert "nas-redis-secret" not in json.dumps(plan)
    redis = DualRunRedis.model_validate({"host": NAS_REDIS})
    assert nas_redis_url(redis, "p@ss/word") == f"redis://:p%40ss%2Fword@{NAS_REDIS}:6379/0"
    assert nas_redis_url(redis.model_copy(update={"tls": True}), "x").startswith("rediss://")
    # Nothing else moved off ElastiCache: the cache tier is still there for the cutover.
    assert plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup")


def test_redis_egress_invariant_catches_planted_defects():
    # NAS egress on a stage without the bridge (production).
    prod = copy.deepcopy(stack_plan("production"))
    release = next(r for r in prod["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release" and r["name"].endswith("-signaling"))
    release["props"]["values"]["networkPolicy"]["redis"]["cidrs"].append("192.168.10.0/24")
    assert redis_egress_problems(prod) == ["192.168.10.0/24:6379 leaves the VPC"]
    # The override set, but the nodes opened the whole NAS LAN on any port.
    plan = copy.deepcopy(dual_run_plan())
    _node_sg(plan)["props"]["egress"].append({"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["192.168.10.0/24"]})
    assert redis_egress_problems(plan) == ["192.168.10.0/24:0 leaves the VPC"]


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            {"voip-infra:migration": {"dualRunRedis": {}}},
            "error: voip-infra:nasRedisPassword: required while migration.dualRunRedis is set",
        ),
        (
            {"voip-infra:migration": {"enabled": False, "dualRunRedis": {}}},
            "error: voip-infra:migration.dualRunRedis: needs migration.enabled: true",
        ),
        (
            {"voip-infra:migration": {"dualRunRedis": {"host": "10.30.1.1"}}, "voip-infra:nasRedisPassword": "x"},
            "error: voip-infra:migration.dualRunRedis.host: 10.30.1.1 is outside nasLanCidr 192.168.10.0/24",
        ),
        (
            {"voip-infra:migration": {"dualRunRedis": {"hots": NAS_REDIS}}, "voip-infra:nasRedisPassword": "x"},
            "error: voip-infra:migration.dualRunRedis.hots: unknown key",
        ),
    ],
)
def test_dual_run_config_errors_name_the_key(overrides, line):
    lines = errors_for(overrides, "nas-migration")
    assert any(x.startswith(line) for x in lines), lines
