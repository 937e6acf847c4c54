"""A stage without an NLB (issue 13, dev): signaling through CloudFront (edge.signalingEntry cdn),
TURN without a TLS entry (turn.tlsEntry none), and production still on the NLB. Each property is
a check that returns what is wrong: the real plans give nothing, a planted regression something."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.config import SIGNALING_RULE_PRIORITY
from components.config_loader import load_stack_config
from tests.harness import config_errors, stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import ALARM, LISTENER, RELEASE, RULE, TG
from tests.resource_types import ALB as LB
from tools import policy as policy_mod

RECORD = "aws:route53/record:Record"
DIST = "aws:cloudfront/distribution:Distribution"
CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"


def _of(resources: list[dict], typ: str) -> list[dict]:
    return [r for r in resources if r["type"] == typ]


def _signaling_values(plan) -> dict[str, Any]:
    (rel,) = [r for r in _of(plan["resources"], RELEASE) if r["props"]["chart"] == "./charts/signaling"]
    return rel["props"]["values"]


def _tg(resources: list[dict], arn: str) -> dict | None:
    return next((r for r in _of(resources, TG) if f"targetgroup/{r['props']['name']}/" in arn), None)


def _planted(plan) -> dict:
    return copy.deepcopy(dict(plan))


# ------------------------------------------------------------------------- the checks


def nlb_leftovers(plan) -> list[str]:
    """Everything an NLB brings: the load balancer, its SG, Elastic IPs, target groups of TCP,
    listeners on it, NLB alarms, its access-log grant, the `nlb*` outputs."""
    res = plan["resources"]
    out = [r["name"] for r in _of(res, LB) if r["props"]["loadBalancerType"] == "network"]
    out += [
        r["name"]
        for r in res
        if r["name"].endswith(("-nlb-sg", "-nlb-signaling", "-nlb-turns")) or "-nlb-" in r["name"] and "eip" in r["name"]
    ]
    out += [r["name"] for r in _of(res, TG) if r["props"]["protocol"] in ("TCP", "TLS", "UDP")]
    out += [r["name"] for r in _of(res, ALARM) if r["props"].get("namespace") == "AWS/NetworkELB"]
    out += [r["name"] for r in _of(res, "aws:lb/targetGroupAttachment:TargetGroupAttachment")]
    out += [r["name"] for r in _of(res, "aws:s3/bucketPolicy:BucketPolicy") if "/nlb/AWSLogs/" in r["props"].get("policy", "")]
    out += [k for k in plan["outputs"] if k.startswith("nlb")]
    return out


def ws_record_targets(plan) -> set[tuple[str, str, str]]:
    """(record type, alias zone, alias name) of ws.<domain>."""
    host = f"ws.{plan['config']['edge']['domain']}"
    return {
        (r["props"]["type"], a["zoneId"], a["name"])
        for r in _of(plan["resources"], RECORD)
        if r["props"]["name"] == host
        for a in r["props"]["aliases"]
    }


def cdn_signaling_problems(plan) -> list[str]:
    """ws.<domain> -> CloudFront (alias, /ws* behaviour to the ALB with the Host forwarded) ->
    the ALB rule ws.<domain> /ws* + origin secret -> an ip target group on 8080 that the signaling
    chart binds (values) and nothing else forwards to."""
    res, cfg = plan["resources"], plan["config"]
    host, problems = f"ws.{cfg['edge']['domain']}", []
    (dist,) = _of(res, DIST)
    if host not in dist["props"]["aliases"]:
        problems.append("the distribution does not answer ws.<domain>")
    (ws_behaviour,) = [b for b in dist["props"]["orderedCacheBehaviors"] if b["pathPattern"] == "/ws*"]
    if ws_behaviour["targetOriginId"] != "alb" or ws_behaviour["originRequestPolicyId"] != ALL_VIEWER:
        problems.append("CloudFront's /ws* does not reach the ALB with the viewer's Host")
    (alb,) = [r for r in _of(res, LB) if r["props"]["loadBalancerType"] == "application"]
    https = {r["id"] for r in _of(res, LISTENER) if r["props"]["port"] == 443 and alb["id"] in r["props"]["loadBalancerArn"]}
    rules = [r for r in _of(res, RULE) if any(host in c.get("hostHeader", {}).get("values", []) for c in r["props"]["conditions"])]
    if len(rules) != 1:
        return [*problems, f"{len(rules)} ALB rules answer {host}"]
    rule = rules[0]["props"]
    conditions = {k: v for c in rule["conditions"] for k, v in c.items()}
    if not any(rule["listenerArn"].endswith(i) for i in https) or rule["priority"] != SIGNALING_RULE_PRIORITY:
        problems.append("the ws rule is not on the ALB's HTTPS listener at its priority")
    if (
        conditions.get("pathPattern", {}).get("values") != ["/ws*"]
        or conditions.get("httpHeader", {}).get("httpHeaderName") != "X-Origin-Verify"
    ):
        problems.append(f"the ws rule's conditions are not /ws* + the origin secret: {conditions}")
    (action,) = rule["actions"]
    tg = _tg(res, action["targetGroupArn"])
    if tg is None or (tg["props"]["targetType"], tg["props"]["protocol"], tg["props"]["port"]) != ("ip", "HTTP", 8080):
        problems.append("the ws rule does not forward to an ip HTTP target group on 8080")
    elif (tg["props"]["healthCheck"]["path"], tg["props"]["healthCheck"]["port"]) != ("/ready", "9090"):
        problems.append("the signaling target group does not check /ready on 9090")
    bindings = {lb: b["targetGroupArn"] for lb, b in _signaling_values(plan)["targetGroupBindings"].items() if b["targetGroupArn"]}
    if bindings != {"alb": action["targetGroupArn"]}:
        problems.append(f"the signaling chart binds {bindings}, not the ws target group")
    others = [
        r["name"]
        for r in _of(res, RULE)
        if r is not rules[0] and any(a.get("targetGroupArn") == action["targetGroupArn"] for a in r["props"]["actions"])
    ]
    if others:
        problems.append(f"other rules forward to the signaling pods: {others}")
    return problems


def pod_admitted_groups(plan, port: int) -> set[str]:
    """Security groups the node (= pod ENI) group admits on `port`."""
    node_sg = next(r for r in plan["resources"] if r["name"].endswith("-eks-nodes-sg"))
    return {g for rule in node_sg["props"]["ingress"] if rule["fromPort"] <= port <= rule["toPort"] for g in rule.get("securityGroups", [])}


def turns_urls(plan) -> list[str]:
    """Every `turns:` URL handed out: ICE servers, the signaling chart's TURN URIs, public URLs."""
    urls = [u for s in plan["outputs"]["turnIceServers"] for u in s["urls"]]
    urls += list(_signaling_values(plan)["turn"]["uris"]) + [str(u) for u in plan["outputs"]["publicUrls"].values()]
    return [u for u in urls if u.startswith("turns:")]


# -------------------------------------------------------------------------- the tests


def test_dev_has_no_nlb_and_nothing_that_belongs_to_one():
    dev = stack_plan("dev")
    assert nlb_leftovers(dev) == []
    assert nlb_leftovers(stack_plan("production"))  # the check sees an NLB where there is one
    planted = _planted(dev)
    nlb = next(r for r in stack_plan("production")["resources"] if r["type"] == LB and r["props"]["loadBalancerType"] == "network")
    planted["resources"].append(copy.deepcopy(nlb))
    assert nlb_leftovers(planted) == [nlb["name"]]


def test_ws_resolves_to_cloudfront_in_dev_and_to_the_nlb_in_production():
    dev, prod = stack_plan("dev"), stack_plan("production")
    dist = _of(dev["resources"], DIST)[0]["props"]
    cf = dev["outputs"]["distributionDomainName"]
    # IPv6 is on in dev (its allow-list has an IPv6 range): A and AAAA.
    assert dist["isIpv6Enabled"] is True
    assert ws_record_targets(dev) == {("A", CLOUDFRONT_ZONE, cf), ("AAAA", CLOUDFRONT_ZONE, cf)}
    (nlb,) = [r for r in prod["resources"] if r["type"] == LB and r["props"]["loadBalancerType"] == "network"]
    assert ws_record_targets(prod) == {("A", "ZIBE1TIR4HY56", prod["outputs"]["nlbDnsName"])}
    assert prod["outputs"]["nlbArn"].endswith(nlb["id"].rsplit("/", 1)[-1]) or nlb["id"] in prod["outputs"]["nlbArn"]
    assert dev["outputs"]["publicUrls"]["signaling"] == "wss://ws.dev.voip.example.com/ws"  # matches /ws*
    assert prod["outputs"]["publicUrls"]["signaling"] == "wss://ws.voip.example.com"
    # The record moved from the NLB to the distribution: an alias keeps it one resource (updated in place).
    (a,) = [r for r in _of(dev["resources"], RECORD) if r["name"] == "dev-ws-a"]
    assert a["aliases"] == [
        "urn:pulumi:dev::voip-infra::voip:platform:Platform$voip:edge:Edge$aws:lb/loadBalancer:LoadBalancer$aws:route53/record:Record::dev-ws-a"
    ]
    planted = _planted(dev)
    next(r for r in _of(planted["resources"], RECORD) if r["name"] == "dev-ws-aaaa")["props"]["aliases"][0]["zoneId"] = "ZIBE1TIR4HY56"
    assert ws_record_targets(planted) != ws_record_targets(dev)


def test_dev_signaling_target_group_is_on_the_alb_behind_cloudfront_and_bound_by_the_chart():
    dev = stack_plan("dev")
    assert cdn_signaling_problems(dev) == []
    for plant, expected in (
        (lambda p: _signaling_values(p)["targetGroupBindings"]["alb"].update(targetGroupArn=""), "the signaling chart binds {}"),
        (lambda p: next(r for r in _of(p["resources"], TG) if r["name"] == "dev-ws-tg")["props"].update(targetType="instance"), "ip HTTP"),
        (lambda p: _of(p["resources"], DIST)[0]["props"]["aliases"].remove("ws.dev.voip.example.com"), "does not answer ws"),
        (lambda p: next(r for r in _of(p["resources"], RULE) if r["name"] == "dev-ws-rule")["props"]["conditions"].pop(), "origin secret"),
    ):
        planted = _planted(dev)
        plant(planted)
        assert any(expected in problem for problem in cdn_signaling_problems(planted)), expected


def test_dev_chart_renders_one_binding_to_the_alb_group():
    from tests.test_chart import by_kind, render

    values = copy.deepcopy(_signaling_values(stack_plan("dev")))
    (tgb,) = by_kind(render(values))["TargetGroupBinding"]
    # dev's ALB is internal: its groups are new ones (scheme in their names), so is the binding.
    assert tgb["metadata"]["name"] == "signaling-alb-internal"
    assert tgb["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert tgb["spec"]["targetGroupARN"] == values["targetGroupBindings"]["alb"]["targetGroupArn"]
    assert tgb["spec"]["targetType"] == "ip" and tgb["spec"]["serviceRef"]["port"] == "websocket"


def test_signaling_pods_admit_the_alb_security_group_on_the_http_port():
    dev, prod = stack_plan("dev"), stack_plan("production")
    alb_sg = dev["outputs"]["albSecurityGroupId"]
    for port in (8080, 9090):  # WebSocket and the /ready health check
        assert pod_admitted_groups(dev, port) == {alb_sg}
    # The ALB may reach them (its egress is per target port, into the VPC).
    alb_group = next(r for r in dev["resources"] if r["name"] == "dev-alb-sg")
    assert {8080, 9090} <= {e["fromPort"] for e in alb_group["props"]["egress"]}
    # production: signaling on the NLB, whose SG is admitted beside the ALB's.
    assert pod_admitted_groups(prod, 8080) == {prod["outputs"]["albSecurityGroupId"], prod["outputs"]["nlbSecurityGroupId"]}
    planted = _planted(dev)
    next(r for r in planted["resources"] if r["name"].endswith("-eks-nodes-sg"))["props"]["ingress"][0]["securityGroups"] = ["sg-other"]
    assert pod_admitted_groups(planted, 8080) != {alb_sg}


def test_no_turns_url_without_a_tls_entry():
    dev = stack_plan("dev")
    assert turns_urls(dev) == []
    assert {u.split(":")[0] for s in dev["outputs"]["turnIceServers"] for u in s["urls"]} == {"turn"}
    assert [u.split("?")[1] for u in dev["outputs"]["turnIceServers"][0]["urls"]] == ["transport=udp", "transport=tcp"]
    # No TURNS anywhere: no 5349 listener, no turns.<domain> record.
    assert not [r for r in _of(dev["resources"], LISTENER) if r["props"]["port"] == 5349]
    assert not [r for r in _of(dev["resources"], RECORD) if r["props"]["name"].startswith("turns.")]
    # production hands out TURNS three times: ICE servers, the chart's TURN URIs, publicUrls.turns.
    assert turns_urls(stack_plan("production")) == ["turns:turns.voip.example.com:5349?transport=tcp"] * 3
    planted = _planted(dev)
    _signaling_values(planted)["turn"]["uris"].append("turns:turn.dev.voip.example.com:5349?transport=tcp")
    assert turns_urls(planted)


def _violations(plan) -> list[tuple[str, str]]:
    return [(v.policy, v.urn.rsplit("::", 1)[1]) for v in policy_mod.run(plan)]


def test_policy_pack_passes_on_dev_without_the_waf_exception():
    dev = stack_plan("dev")
    assert not dev["config"]["policy"]["wafExceptions"]
    assert _violations(dev) == []
    # Planted: a TLS 443 entry on an NLB again, without the exception: the rule catches it.
    planted = _planted(dev)
    prod = stack_plan("production")
    nlb = next(r for r in prod["resources"] if r["type"] == LB and r["props"]["loadBalancerType"] == "network")
    listener = next(r for r in prod["resources"] if r["name"] == "production-nlb-signaling")
    planted["resources"] += [copy.deepcopy(nlb), copy.deepcopy(listener)]
    assert ("internet-entry-behind-waf", "production-nlb-signaling") in _violations(planted)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "voip-infra:policy": {
                    "wafExceptions": [{"name": "nlb-signaling", "reason": "signaling on the NLB, no WAF can sit on an NLB"}]
                }
            },
            "policy.wafExceptions.0.name: 'nlb-signaling' excuses an NLB listener this stage does not have (edge.signalingEntry is cdn)",
        ),
        ({"voip-infra:edge": {"nlbStaticIps": False}}, "edge.nlbStaticIps: this stage has no NLB"),
        ({"voip-infra:edge": {"nlbDeletionProtection": True}}, "edge.nlbDeletionProtection: this stage has no NLB"),
        (
            {"voip-infra:edge": {"albHosts": [{"name": "api", "priority": SIGNALING_RULE_PRIORITY, "apex": True}]}},
            "is the ws.<domain> rule's",
        ),
    ],
)
def test_an_nlb_less_stage_refuses_what_only_an_nlb_makes_sense_of(overrides, message):
    lines = config_errors(overrides)
    assert any(message in line for line in lines), lines


def test_nlb_keys_and_the_exception_stay_valid_where_signaling_is_on_the_nlb():
    raw, _ = stack_raw("dev")
    on_nlb = {"voip-infra:edge": {"signalingEntry": "nlb", "nlbStaticIps": False}, "voip-infra:turn": {"tlsEntry": "none"}}
    cfg = load_stack_config("dev", with_overrides(raw, on_nlb))
    assert cfg.nlb_listeners == ("signaling",)
    # The plan's config names both switches, as every other key (what the policy pack reads) ...
    assert cfg.redacted()["edge"]["signalingEntry"] == "nlb" and cfg.redacted()["turn"]["tlsEntry"] == "none"
    # ... and TURNS alone keeps an NLB, so its keys are fine there too.
    only_turns = load_stack_config(
        "dev", with_overrides(raw, {"voip-infra:turn": {"tlsEntry": "nlb"}, "voip-infra:edge": {"nlbStaticIps": False}})
    )
    assert only_turns.nlb_listeners == ("turns",)


@pytest.fixture(scope="module")
def turns_only():
    """dev with TURNS back on the NLB and signaling still through CloudFront: an NLB of one listener."""
    return variant("dev", {"voip-infra:turn": {"tlsEntry": "nlb"}})


def test_an_nlb_for_turns_only_listens_on_5349_and_is_not_admitted_to_the_pods(turns_only):
    plan = turns_only
    (nlb,) = [r for r in plan.of_type(LB) if r["props"]["loadBalancerType"] == "network"]
    listeners = [r for r in plan.of_type(LISTENER) if r["parent"] == nlb["urn"]]
    assert [(r["props"]["port"], r["props"]["protocol"]) for r in listeners] == [(5349, "TLS")]
    sg = plan.by_id(nlb["props"]["securityGroups"][0])
    assert {r["fromPort"] for r in sg["props"]["ingress"]} == {5349}
    assert {r["fromPort"] for r in sg["props"]["egress"]} == {3478}
    assert pod_admitted_groups(plan, 8080) == {plan["outputs"]["albSecurityGroupId"]}
    assert cdn_signaling_problems(plan) == []
    assert {(t, z) for t, z, _ in ws_record_targets(plan)} == {("A", CLOUDFRONT_ZONE), ("AAAA", CLOUDFRONT_ZONE)}
    assert turns_urls(plan) == ["turns:turns.dev.voip.example.com:5349?transport=tcp"] * 3
    assert "nlbSignalingTargetGroupArn" in plan["outputs"] and not plan["outputs"]["nlbSignalingTargetGroupArn"]
    assert _violations(plan) == []
