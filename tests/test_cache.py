"""ElastiCache: one replication group per named use, TLS + AUTH, isolation, HA, protection."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from components.config import CacheConfig
from components.config_loader import load_stack_config
from components.data.cache import connection_url
from tests.harness import STACKS, component_plan, config_errors, stack_plan, stack_raw, unit_ctx, unit_placement
from tests.resource_types import RG
from tests.test_database import (
    assert_isolated,
    assert_sg_admits_exactly,
    assert_sg_admits_only_the_nodes,
    data_key_arn,
    node_security_group_id,
    vpc_id,
)

# The stages whose cache is ElastiCache; the in-cluster placement (dev) has none of these
# resources, which tests/test_cache_placement.py asserts.
ELASTICACHE_STACKS = [s for s in STACKS if load_stack_config(s, stack_raw(s)[0]).cache.placement == "elasticache"]


@pytest.fixture(scope="module", params=ELASTICACHE_STACKS)
def plan(request):
    return stack_plan(request.param)


def groups(plan) -> dict[str, dict[str, Any]]:
    stage = plan["stack"]
    return {r["props"]["replicationGroupId"].removeprefix(f"{stage}-"): r for r in plan.of_type(RG)}


def test_one_replication_group_per_configured_use(plan):
    assert set(groups(plan)) == set(plan["config"]["cache"]["groups"])


def test_tls_required_encrypted_at_rest_and_auth_token_secret(plan):
    cfg = plan["config"]["cache"]
    tokens = {r["name"]: r for r in plan.of_type("random:index/randomPassword:RandomPassword")}
    for rg in groups(plan).values():
        p = rg["props"]
        assert p["transitEncryptionEnabled"] is True and p["transitEncryptionMode"] == "required"
        assert p["atRestEncryptionEnabled"] is True and p["kmsKeyId"] == data_key_arn(plan)
        assert p["authToken"] == "[secret]"
        assert (p["engine"], p["engineVersion"]) == (cfg["engine"], cfg["engineVersion"])
        assert p["port"] == 6379 and p["clusterMode"] == "disabled"
        token = tokens[f"{rg['props']['replicationGroupId']}-auth-token"]["props"]
        # Per-group token, URL-safe, within ElastiCache's 16..128.
        assert token["special"] is False and 32 <= token["length"] <= 128


def test_failover_and_multi_az_follow_the_replica_count(plan):
    cfg = plan["config"]["cache"]["groups"]
    azs = plan["config"]["network"]["azs"]
    for name, rg in groups(plan).items():
        p = rg["props"]
        replicas = cfg[name]["replicas"]
        assert p["numCacheClusters"] == replicas + 1
        assert p["automaticFailoverEnabled"] is (replicas >= 1)
        assert p["multiAzEnabled"] is (replicas >= 1)
        assert p["nodeType"] == cfg[name]["nodeType"]
        nodes_azs = p["preferredCacheClusterAzs"]
        assert len(nodes_azs) == replicas + 1 and len(set(nodes_azs)) == min(replicas + 1, len(azs))


def test_production_every_group_is_highly_available_and_protected(plans):
    rgs = plans["production"].of_type(RG)
    assert len(rgs) >= 1  # one group for every use today; pubsub, streams split out by config (tools/targets/production.yaml)
    for rg in rgs:
        p = rg["props"]
        assert p["transitEncryptionEnabled"] and p["atRestEncryptionEnabled"]
        assert p["automaticFailoverEnabled"] is True and p["multiAzEnabled"] is True
        assert p["numCacheClusters"] >= 2
        assert rg["protect"] is True
        assert p["applyImmediately"] is False


def test_protection_and_snapshots_per_stage(plan):
    cfg = plan["config"]["cache"]
    for rg in groups(plan).values():
        p = rg["props"]
        assert p["snapshotRetentionLimit"] == cfg["snapshotRetentionDays"]
        assert p["maintenanceWindow"] == cfg["maintenanceWindow"]
        if plan["config"]["protectData"]:
            assert rg["protect"] is True
            assert p["snapshotRetentionLimit"] >= 1
            assert p["finalSnapshotIdentifier"] == f"{p['replicationGroupId']}-final"
        else:
            assert rg["protect"] is False and "finalSnapshotIdentifier" not in p


def test_cache_sits_in_isolated_subnets_only(plan):
    (group,) = plan.of_type("aws:elasticache/subnetGroup:SubnetGroup")
    assert all(rg["props"]["subnetGroupName"] == group["props"]["name"] for rg in plan.of_type(RG))
    assert_isolated(plan, group["props"]["subnetIds"])


def test_cache_security_group_admits_6379_only_from_the_node_sg(plan):
    sg_ids = {tuple(rg["props"]["securityGroupIds"]) for rg in plan.of_type(RG)}
    ((sg_id,),) = sg_ids
    assert_sg_admits_only_the_nodes(plan.by_id(sg_id), vpc_id(plan), 6379, node_security_group_id(plan))


def test_slow_log_goes_to_an_encrypted_log_group(plan):
    logs = {g["props"]["name"]: g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for rg in groups(plan).values():
        (delivery,) = rg["props"]["logDeliveryConfigurations"]
        assert (delivery["logType"], delivery["destinationType"]) == ("slow-log", "cloudwatch-logs")
        group = logs[delivery["destination"]]
        assert group["props"]["retentionInDays"] == plan["config"]["cache"]["logRetentionDays"]
        assert group["props"]["kmsKeyId"] == data_key_arn(plan)


def test_each_group_has_its_eviction_policy(plan):
    cfg = plan["config"]["cache"]
    params = {p["props"]["name"]: p for p in plan.of_type("aws:elasticache/parameterGroup:ParameterGroup")}
    for name, rg in groups(plan).items():
        pg = params[rg["props"]["parameterGroupName"]]["props"]
        assert pg["family"] == CacheConfig.model_validate(cfg).parameter_family
        assert pg["parameters"] == [{"name": "maxmemory-policy", "value": cfg["groups"][name]["maxmemoryPolicy"]}]
    if "pubsub" in cfg["groups"]:
        assert cfg["groups"]["pubsub"]["maxmemoryPolicy"] == "noeviction"  # messages are never evicted silently


def test_memory_alarms_on_every_node_go_to_the_topic(plan):
    topic = plan["outputs"]["alarmTopicArn"]
    alarms = [
        a["props"] for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a["props"].get("namespace") == "AWS/ElastiCache"
    ]
    memory = {a["dimensions"]["CacheClusterId"] for a in alarms if a["metricName"] == "DatabaseMemoryUsagePercentage"}
    expected = {
        f"{rg['props']['replicationGroupId']}-{n:03d}" for rg in plan.of_type(RG) for n in range(1, rg["props"]["numCacheClusters"] + 1)
    }
    assert memory == expected
    assert all(a["alarmActions"] == [topic] for a in alarms)
    # ElastiCache's own events go to the unencrypted events topic (it cannot publish to SSE topics).
    assert all(rg["props"]["notificationTopicArn"] == plan["outputs"]["cacheEventsTopicArn"] for rg in plan.of_type(RG))


def test_outputs_expose_endpoints_and_secret_urls(plan):
    out = plan["outputs"]
    assert set(out["cacheEndpoints"]) == set(plan["config"]["cache"]["groups"])
    for name, host in out["cacheEndpoints"].items():
        assert host.startswith(f"master.{plan['stack']}-{name}.")
    assert out["cacheUrls"] == "[secret]"


def test_connection_urls_are_secret_and_ready_to_use():
    from components.data.cache import Cache, CacheArgs

    cfg = CacheConfig.model_validate({"groups": {"pubsub": {"replicas": 1}}})

    def build():
        cache = Cache(
            "unit-cache",
            CacheArgs(ctx=unit_ctx(), placement=unit_placement(), allowed_security_group_ids=["sg-eksnodes"], config=cfg),
        )
        return {"url": cache.connection_urls["pubsub"], "token": cache.auth_tokens["pubsub"], "host": cache.primary_endpoints["pubsub"]}

    plan, values = component_plan(build)
    (sg,) = plan.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert_sg_admits_exactly(sg, 6379, ["sg-eksnodes"])
    token = ("mock" + hashlib.sha256(b"unit-pubsub-auth-token").hexdigest())[:64]
    assert values["token"] == (token, True)
    assert values["url"] == (f"rediss://:{token}@master.unit-pubsub.abc123.apn2.cache.amazonaws.com:6379", True)
    assert values["host"][1] is False


def test_connection_url_quotes_the_token():
    assert connection_url("a/b@c", "h") == "rediss://:a%2Fb%40c@h:6379"


@pytest.mark.parametrize(
    "override, message",
    [
        ({"engine": "redis", "engineVersion": "8.0"}, "error: voip-infra:cache.engineVersion: redis 8.0 is not offered by ElastiCache"),
        (
            {"engine": "valkey", "engineVersion": "7.1"},
            "error: voip-infra:cache.engineVersion: valkey 7.1 is not offered by ElastiCache; allowed for valkey: 7.2, 8.0, 8.1, 8.2",
        ),
        ({"engine": "valkey", "engineVersion": "8.3"}, "error: voip-infra:cache.engineVersion: valkey 8.3 is not offered"),
        ({"groups": {"a-very-long-group-name": {}}}, "error: voip-infra:cache.groups.a-very-long-group-name:"),
    ],
)
def test_config_rejects_what_elasticache_cannot_build(override, message):
    lines = config_errors({"voip-infra:cache": override})
    assert any(line.startswith(message) for line in lines), lines


def test_valkey_8_uses_the_valkey8_family():
    assert CacheConfig.model_validate({"engine": "valkey", "engineVersion": "8.0"}).parameter_family == "valkey8"
