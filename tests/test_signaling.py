"""The signaling release under mocks, per stack: chart, options, values, secrets."""

from __future__ import annotations

import json

import pytest

from components.cluster.valkey import group_selector
from components.config_loader import ConfigError, load_stack_config
from tests.harness import stack_raw, with_overrides
from tests.resource_types import RELEASE

SECRET = "kubernetes:core/v1:Secret"


def signaling_release(plan):
    (r,) = [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == "./charts/signaling"]
    return r


def sig_cfg(plan):
    return plan["config"]["signaling"]


def of_signaling(plan, typ):
    """Resources of `typ` under the Signaling component (the monitoring tier has a Namespace and a Secret too)."""
    return [r for r in plan.of_type(typ) if "voip:signaling:Signaling" in r["urn"]]


def test_release_points_at_the_chart_with_safe_options(plan):
    props = signaling_release(plan)["props"]
    assert props["chart"] == "./charts/signaling"
    assert props["name"] == "signaling"
    assert props["namespace"] == sig_cfg(plan)["namespace"]
    assert props["atomic"] is True and props["cleanupOnFail"] is True
    assert props["timeout"] == sig_cfg(plan)["releaseTimeoutSeconds"]
    assert 1 <= props["maxHistory"] <= 20
    assert "repositoryOpts" not in props  # the local chart, never a registry's


def test_values_from_config(plan):
    values = signaling_release(plan)["props"]["values"]
    cfg = sig_cfg(plan)
    hpa = values["autoscaling"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (cfg["replicas"]["min"], cfg["replicas"]["max"])
    assert hpa["targetCPUUtilizationPercentage"] == cfg["targetCpuPercent"]
    assert hpa["targetConnectionsPerPod"] == cfg["connectionsPerPod"]
    assert values["terminationGracePeriodSeconds"] == cfg["terminationGraceSeconds"]
    assert values["image"]["digest"] == (cfg["image"]["digest"] or "")
    if plan["stack"] == "production":
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
        assert values["image"]["digest"].startswith("sha256:")


def test_values_hold_no_secret(plan):
    values = signaling_release(plan)["props"]["values"]
    text = json.dumps(values)
    assert "[secret]" not in text
    for needle in ("redis://", "rediss://", "password", "placeholder-turn-secret"):
        assert needle not in text
    # Only the Secrets' names and keys.
    ns = plan["config"]["signaling"]["namespace"]
    names = {s["props"]["metadata"]["name"] for s in of_signaling(plan, SECRET) if s["props"]["metadata"]["namespace"] == ns}
    assert {v["name"] for v in values["existingSecrets"].values()} == names


def test_secrets_are_pulumi_secrets_in_the_release_namespace(plan):
    # The release's two (the monitoring namespace holds Grafana's admin Secret).
    secrets = of_signaling(plan, SECRET)
    assert len(secrets) == 2
    for s in secrets:
        assert s["props"]["stringData"] == "[secret]"
        assert s["props"]["metadata"]["namespace"] == sig_cfg(plan)["namespace"]


def test_release_waits_for_secrets_and_the_lb_controller(plan):
    rel = signaling_release(plan)
    deps = set(rel["dependsOn"])
    assert {s["urn"] for s in of_signaling(plan, SECRET)} <= deps
    (lbc,) = [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == "aws-load-balancer-controller"]
    assert lbc["urn"] in deps  # TargetGroupBinding CRDs
    (crds,) = [r for r in plan.of_type(RELEASE) if r["props"]["chart"] == "prometheus-operator-crds"]
    assert crds["urn"] in deps  # ServiceMonitor / PrometheusRule CRDs


def test_network_policy_inputs(plan):
    values = signaling_release(plan)["props"]["values"]
    np = values["networkPolicy"]
    # The load balancers' subnets: the ALB's (private when it is internal) and the NLB's (public).
    lbs = [r for r in plan.of_type("aws:lb/loadBalancer:LoadBalancer")]
    subnets = {s for lb in lbs for s in lb["props"].get("subnets") or [m["subnetId"] for m in lb["props"]["subnetMappings"]]}
    assert set(np["loadBalancerCidrs"]) == {plan.by_id(s)["props"]["cidrBlock"] for s in subnets}
    public = {plan.by_id(s)["props"]["cidrBlock"] for s in plan["outputs"]["publicSubnetIds"]}
    assert (set(np["loadBalancerCidrs"]) == public) is (plan["config"]["edge"]["albScheme"] == "internet-facing")
    vpc_cidr = plan["config"]["network"]["cidr"]
    if plan["config"]["cache"]["placement"] == "cluster":
        # The in-cluster Valkey of signaling's group: its Service's selector, no CIDR (tests/test_cache_placement.py).
        group = plan["config"]["signaling"]["redisGroup"]
        assert np["redis"] == {"cidrs": [], "port": 6379, "pods": [{"namespace": "cache", "matchLabels": group_selector(group)}]}
    else:
        assert np["redis"] == {"cidrs": [vpc_cidr], "port": 6379}


def test_namespace_enforces_restricted_pod_security(plan):
    (ns,) = of_signaling(plan, "kubernetes:core/v1:Namespace")
    assert ns["props"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespace_gets_target_group_readiness_gates(plan):
    # Without the label the LB controller injects no readiness gate: a rollout stops old pods
    # before the new ones pass the target groups' health checks (dropped WebSockets).
    (ns,) = of_signaling(plan, "kubernetes:core/v1:Namespace")
    assert ns["props"]["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"


@pytest.mark.parametrize(
    "override, key",
    [
        ({"image": {"repository": "ghcr.io/voip-infra/signaling-server", "digest": None}}, "signaling.image.digest"),
        ({"terminationGraceSeconds": 30, "preStopSleepSeconds": 30}, "signaling.preStopSleepSeconds"),
    ],
)
def test_signaling_config_rules(override, key):
    raw, _ = stack_raw("production")
    with pytest.raises(ConfigError) as err:
        load_stack_config("production", with_overrides(raw, {"voip-infra:signaling": override}))
    assert any(key in line for line in err.value.lines), err.value.lines
