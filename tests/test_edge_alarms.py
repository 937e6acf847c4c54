"""Edge alarms under mocks: ALB/NLB alarms in the stage region, CloudFront/WAF alarms in
us-east-1 with their own encrypted topic, thresholds from `edge.alarms`."""

from __future__ import annotations

import json

import pytest

from components.config_loader import ConfigError, load_stack_config
from tests.harness import stack_raw, variant, with_overrides
from tests.resource_types import ALARM, KEY, LISTENER, RULE, TG, TOPIC

COMPONENT = "voip:edge:EdgeAlarms"
LB = "aws:lb/loadBalancer:LoadBalancer"
PROVIDER = "pulumi:providers:aws"
ACCOUNT = "123456789012"  # the mocks' account


def edge_alarms(plan) -> list[dict]:
    (component,) = plan.of_type(COMPONENT)
    return [r for r in plan.descendants(component["urn"]) if r["type"] == ALARM]


def alarm(plan, metric: str) -> dict:
    (a,) = [a for a in edge_alarms(plan) if a["props"]["metricName"] == metric]
    return a


def region_of(plan, resource: dict) -> str:
    return plan.by_urn(resource["provider"])["props"]["region"]


def east_provider(plan) -> dict:
    (p,) = [r for r in plan.of_type(PROVIDER) if r["props"].get("region") == "us-east-1"]
    return p


def topic_arn(plan, topic: dict) -> str:
    return f"arn:aws:sns:{region_of(plan, topic)}:{ACCOUNT}:{topic['props']['name']}"


def physical_name(r: dict) -> str:
    # Named resources carry `name`; autonamed ones get their mocked id as the physical name.
    return r["props"].get("name", r["id"])


def lb_of_suffix(plan, suffix: str) -> dict:
    kind, name, _ = suffix.split("/")
    (lb,) = [r for r in plan.of_type(LB) if physical_name(r) == name]
    assert kind == ("net" if lb["props"]["loadBalancerType"] == "network" else "app")
    return lb


def tg_of_suffix(plan, suffix: str) -> dict:
    prefix, name, _ = suffix.split("/")
    assert prefix == "targetgroup"
    (tg,) = [r for r in plan.of_type(TG) if physical_name(r) == name]
    return tg


def load_balancer_of(plan, tg: dict) -> dict:
    """The load balancer whose listener (default action or rule) forwards to `tg`."""
    ref = f"targetgroup/{physical_name(tg)}/"
    listeners = {r["urn"]: r for r in plan.of_type(LISTENER)}
    via = [lst for lst in listeners.values() if any(ref in str(a.get("targetGroupArn", "")) for a in lst["props"]["defaultActions"])]
    for rule in plan.of_type(RULE):
        if any(ref in str(a.get("targetGroupArn", "")) for a in rule["props"]["actions"]):
            via += [lst for lst in listeners.values() if lst["props"].get("protocol") == "HTTPS" and rule["parent"] == lst["urn"]]
    lbs = {lst["props"]["loadBalancerArn"] for lst in via}
    assert len(lbs) == 1, (tg["name"], lbs)
    (arn,) = lbs
    kind, name = arn.split("loadbalancer/")[1].split("/")[:2]
    (lb,) = [r for r in plan.of_type(LB) if physical_name(r) == name]
    return lb


# ------------------------------------------------------------------ target groups


def test_every_target_group_has_an_unhealthy_host_alarm_with_its_own_dimensions(plan):
    unhealthy = [a for a in edge_alarms(plan) if a["props"]["metricName"] == "UnHealthyHostCount"]
    by_tg = {}
    for a in unhealthy:
        dims = a["props"]["dimensions"]
        assert set(dims) == {"TargetGroup", "LoadBalancer"}
        tg = tg_of_suffix(plan, dims["TargetGroup"])
        assert tg["urn"] not in by_tg, f"two alarms on {tg['name']}"
        by_tg[tg["urn"]] = a
        # The LoadBalancer dimension is the load balancer that really serves this group.
        lb = lb_of_suffix(plan, dims["LoadBalancer"])
        assert lb["urn"] == load_balancer_of(plan, tg)["urn"]
        expected_ns = "AWS/NetworkELB" if lb["props"]["loadBalancerType"] == "network" else "AWS/ApplicationELB"
        assert a["props"]["namespace"] == expected_ns
        assert a["props"]["threshold"] == 0 and a["props"]["comparisonOperator"] == "GreaterThanThreshold"
        assert a["props"]["statistic"] == "Maximum"
        assert region_of(plan, a) == plan["config"]["aws:region"]
    # Every target group of the stage (ALB hosts, signaling on the NLB or the ALB, NLB turn) is covered.
    assert set(by_tg) == {tg["urn"] for tg in plan.of_type(TG)}
    assert len(by_tg) == len(plan["config"]["edge"]["albHosts"]) + entry_groups(plan)


def entry_groups(plan) -> int:
    """Target groups besides the ALB hosts': signaling's (on the NLB or the ALB) and TURNS's (NLB)."""
    return 1 + (plan["config"]["turn"].get("tlsEntry", "nlb") == "nlb")


def test_alb_error_and_latency_alarms_watch_the_alb(plan):
    (alb,) = [r for r in plan.of_type(LB) if r["props"]["loadBalancerType"] == "application"]
    for metric in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "TargetResponseTime"):
        props = alarm(plan, metric)["props"]
        assert props["namespace"] == "AWS/ApplicationELB"
        assert lb_of_suffix(plan, props["dimensions"]["LoadBalancer"])["urn"] == alb["urn"]
        assert set(props["dimensions"]) == {"LoadBalancer"}
    for metric in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"):
        props = alarm(plan, metric)["props"]
        assert (props["statistic"], props["period"], props["treatMissingData"]) == ("Sum", 300, "notBreaching")
    p99 = alarm(plan, "TargetResponseTime")["props"]
    assert p99["extendedStatistic"] == "p99" and "statistic" not in p99


# ------------------------------------------------------------------ us-east-1


def test_cloudfront_and_waf_alarms_live_in_us_east_1_with_the_us_east_1_topic(plan):
    east = east_provider(plan)
    (component,) = plan.of_type(COMPONENT)
    (topic,) = [t for t in plan.descendants(component["urn"]) if t["type"] == TOPIC]
    assert topic["provider"] == east["urn"]
    assert plan["outputs"]["globalAlarmTopicArn"] == topic_arn(plan, topic)
    assert topic_arn(plan, topic).startswith("arn:aws:sns:us-east-1:")

    cdn = alarm(plan, "5xxErrorRate")
    (dist,) = plan.of_type("aws:cloudfront/distribution:Distribution")
    assert cdn["props"]["namespace"] == "AWS/CloudFront"
    assert cdn["props"]["dimensions"] == {"DistributionId": dist["id"], "Region": "Global"}
    assert cdn["props"]["statistic"] == "Average"

    waf = alarm(plan, "BlockedRequests")
    (acl,) = plan.of_type("aws:wafv2/webAcl:WebAcl")
    assert waf["props"]["namespace"] == "AWS/WAFV2"
    # CLOUDFRONT scope: WebACL + Rule=ALL, no Region dimension. The name is also the ACL's metric name.
    assert waf["props"]["dimensions"] == {"WebACL": acl["props"]["name"], "Rule": "ALL"}
    assert acl["props"]["visibilityConfig"]["metricName"] == acl["props"]["name"]
    assert acl["props"]["scope"] == "CLOUDFRONT" and acl["provider"] == east["urn"]

    for a in (cdn, waf):
        assert a["provider"] == east["urn"]
        assert a["props"]["alarmActions"] == [topic_arn(plan, topic)] == a["props"]["okActions"]


def test_every_alarm_notifies_a_topic_of_the_stage_in_its_own_region(plan):
    stage = plan["stack"]
    topics = {topic_arn(plan, t): t for t in plan.of_type(TOPIC)}
    alarms = edge_alarms(plan)
    assert len(alarms) == 3 + len(plan["config"]["edge"]["albHosts"]) + entry_groups(plan) + 2
    for a in alarms:
        assert a["props"]["name"].startswith(f"{stage}-")
        actions = a["props"]["alarmActions"]
        assert actions and a["props"]["okActions"] == actions, a["name"]
        for arn in actions:
            topic = topics[arn]  # KeyError: not a topic of this plan
            assert topic["props"]["name"].startswith(f"{stage}-voip-alarms")
            # An alarm can only notify a topic in its own region.
            assert topic["provider"] == a["provider"], a["name"]


def test_us_east_1_topic_is_encrypted_with_a_key_cloudwatch_may_use(plan):
    east = east_provider(plan)
    (component,) = plan.of_type(COMPONENT)
    (key,) = [k for k in plan.descendants(component["urn"]) if k["type"] == KEY]
    (topic,) = [t for t in plan.descendants(component["urn"]) if t["type"] == TOPIC]
    assert key["provider"] == east["urn"]
    assert topic["props"]["kmsMasterKeyId"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key['id']}"
    assert key["props"]["enableKeyRotation"] is True
    assert key["protect"] == plan["config"]["protectData"]
    statements = json.loads(key["props"]["policy"])["Statement"]
    (cloudwatch,) = [s for s in statements if "cloudwatch.amazonaws.com" in s["Principal"].get("Service", [])]
    assert cloudwatch["Effect"] == "Allow"
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    # No other service principal may use the key.
    services = [s for s in statements if "Service" in s["Principal"]]
    assert services == [cloudwatch]


# ------------------------------------------------------------------ config


CUSTOM = {
    "enabled": True,
    "alb5xxPer5Min": 7,
    "target5xxPer5Min": 11,
    "targetP99Seconds": 0.75,
    "cloudfront5xxPercent": 2.5,
    "wafBlockedPer5Min": 1234,
}


def test_thresholds_come_from_config():
    plan = variant("dev", {"voip-infra:edge": {"alarms": CUSTOM}})
    expected = {
        "HTTPCode_ELB_5XX_Count": 7,
        "HTTPCode_Target_5XX_Count": 11,
        "TargetResponseTime": 0.75,
        "5xxErrorRate": 2.5,
        "BlockedRequests": 1234,
    }
    for metric, threshold in expected.items():
        assert alarm(plan, metric)["props"]["threshold"] == threshold, metric


def test_disabled_means_no_alarm_topic_or_key():
    plan = variant("dev", {"voip-infra:edge": {"alarms": {"enabled": False}}})
    assert plan.of_type(COMPONENT) == []
    assert plan["outputs"].get("globalAlarmTopicArn") is None
    assert not [t for t in plan.of_type(TOPIC) if "global" in t["props"]["name"]]
    assert all(
        a["props"].get("namespace") not in ("AWS/ApplicationELB", "AWS/NetworkELB", "AWS/CloudFront", "AWS/WAFV2")
        for a in plan.of_type(ALARM)
    )


@pytest.mark.parametrize(
    "alarms, path, why",
    [
        ({"alb5xxPer5Min": 0}, "alb5xxPer5Min", "greater than or equal to 1"),
        ({"cloudfront5xxPercent": 150}, "cloudfront5xxPercent", "less than or equal to 100"),
        ({"targetP99Seconds": 0}, "targetP99Seconds", "greater than 0"),
        ({"wafBlockedPer5Min": "many"}, "wafBlockedPer5Min", "integer"),
        ({"alb5XxPer5Min": 3}, "alb5XxPer5Min", "unknown key"),
    ],
)
def test_bad_thresholds_name_their_key(alarms, path, why):
    raw, _ = stack_raw("dev")
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", with_overrides(raw, {"voip-infra:edge": {"alarms": alarms}}))
    lines = [line for line in info.value.lines if line.startswith(f"error: voip-infra:edge.alarms.{path}: ")]
    assert lines and any(why in line for line in lines), info.value.lines
