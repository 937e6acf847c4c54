"""The ALB behind a CloudFront VPC origin (edge.albScheme, docs/edge.md "The ALB behind a VPC origin").

dev (the default, internal): the ALB in the private subnets with no public address, reached only
through its VPC origin; nas-migration and production (explicitly internet-facing until their
planned move): the custom origin as before. An invariant over every stage ties the three together.
"""

from __future__ import annotations

import copy
import json

import pytest

from components.config_loader import ConfigError, load_stack_config
from components.edge.edge import ORIGIN_HEADER, elb_name
from tests.harness import STACKS, stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import ALB, LISTENER, NODE_GROUP, RULE, TG
from tools import policy as policy_mod

VPC_ORIGIN = "aws:cloudfront/vpcOrigin:VpcOrigin"
DIST = "aws:cloudfront/distribution:Distribution"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def the_alb(resources: list[dict]) -> dict:
    (alb,) = [r for r in resources if r["type"] == ALB and r["props"]["loadBalancerType"] == "application"]
    return alb


def points_at(origin: dict, lb: dict) -> bool:
    """The VPC origin's endpoint ARN is this load balancer's (the mocks' ARN carries its id)."""
    kind = "net" if lb["props"]["loadBalancerType"] == "network" else "app"
    return f":loadbalancer/{kind}/{lb['id']}/" in origin["props"]["vpcOriginEndpointConfig"]["arn"]


def alb_origin(resources: list[dict]) -> dict:
    (dist,) = [r for r in resources if r["type"] == DIST]
    (origin,) = [o for o in dist["props"]["origins"] if o["originId"] == "alb"]
    return origin


def vpc_origin_violations(resources: list[dict]) -> list[str]:
    """Internal ALB <=> exactly one VPC origin for it, and the distribution's ALB origin uses it
    (no custom origin config); an internet-facing ALB has none and is a custom origin."""
    alb, origin = the_alb(resources), alb_origin(resources)
    origins = [r for r in resources if r["type"] == VPC_ORIGIN]
    mine = [o for o in origins if points_at(o, alb)]
    out = [f"{o['name']}: a VPC origin for something other than the ALB" for o in origins if o not in mine]
    if alb["props"]["internal"]:
        if len(mine) != 1:
            return [*out, f"internal ALB {alb['name']}: {len(mine)} VPC origins point at it, need exactly one"]
        if origin.get("vpcOriginConfig", {}).get("vpcOriginId") != mine[0]["id"]:
            out.append("the distribution's ALB origin does not use the ALB's VPC origin")
        if "customOriginConfig" in origin:
            out.append("the distribution reaches an internal ALB as a custom origin (over the internet: unreachable)")
    else:
        out += [f"{o['name']}: a VPC origin for an internet-facing ALB" for o in mine]
        if "vpcOriginConfig" in origin or origin.get("customOriginConfig", {}).get("originProtocolPolicy") != "https-only":
            out.append("an internet-facing ALB must be an https-only custom origin")
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_every_stage_reaches_its_alb_the_way_its_scheme_needs(stack):
    plan = stack_plan(stack)
    assert vpc_origin_violations(plan.resources) == []
    internal = the_alb(plan.resources)["props"]["internal"]
    assert internal is (plan["config"]["edge"]["albScheme"] == "internal")


@pytest.mark.parametrize(
    ("stack", "plant", "finding"),
    [
        ("dev", lambda res: [r for r in res if r["type"] != VPC_ORIGIN], "0 VPC origins point at it"),
        ("dev", lambda res: [*res, *[copy.deepcopy(r) | {"name": "twin"} for r in res if r["type"] == VPC_ORIGIN]], "2 VPC origins"),
        ("dev", lambda res: _origin(res, lambda o: o.pop("vpcOriginConfig")), "does not use the ALB's VPC origin"),
        ("dev", lambda res: _origin(res, lambda o: o.update(customOriginConfig={})), "as a custom origin"),
        ("production", lambda res: _origin(res, lambda o: o.update(vpcOriginConfig={"vpcOriginId": "vo-x"})), "https-only custom origin"),
    ],
)
def test_the_invariant_catches_a_broken_entry(stack, plant, finding):
    resources = plant(copy.deepcopy(stack_plan(stack).resources))
    assert any(finding in v for v in vpc_origin_violations(resources)), vpc_origin_violations(resources)


def _origin(resources: list[dict], edit) -> list[dict]:
    edit(alb_origin(resources))
    return resources


def test_dev_alb_is_internal_in_exactly_the_private_subnets_where_the_nodes_live():
    plan = stack_plan("dev")
    alb = the_alb(plan.resources)["props"]
    assert alb["internal"] is True
    subnets = {r["name"]: r["id"] for r in plan.of_type(SUBNET)}
    private = {i for n, i in subnets.items() if n.startswith("dev-private-")}
    public = {i for n, i in subnets.items() if n.startswith("dev-public-")}
    assert len(private) == len(plan["config"]["network"]["azs"])
    assert set(alb["subnets"]) == private and not set(alb["subnets"]) & public
    # The nodes' subnets, and none of them routes to the internet gateway.
    assert all(set(ng["props"]["subnetIds"]) == private for ng in plan.of_type(NODE_GROUP))
    igw_tables = {r["props"]["routeTableId"] for r in plan.of_type(ROUTE) if r["props"].get("gatewayId", "").startswith("igw-")}
    assert not [a for a in plan.of_type(RTA) if a["props"]["subnetId"] in private and a["props"]["routeTableId"] in igw_tables]


@pytest.mark.parametrize("stack", ["nas-migration", "production"])
def test_live_stages_keep_their_internet_facing_alb_and_custom_origin(stack):
    plan = stack_plan(stack)
    alb = the_alb(plan.resources)["props"]
    public = {r["id"] for r in plan.of_type(SUBNET) if r["name"].startswith(f"{stack}-public-")}
    assert alb["internal"] is False and set(alb["subnets"]) == public
    assert not plan.of_type(VPC_ORIGIN)
    custom = alb_origin(plan.resources)["customOriginConfig"]
    assert custom["originProtocolPolicy"] == "https-only" and custom["originSslProtocols"] == ["TLSv1.2"]
    # Explicit in the stack file, not a default: a changed default must never move a live ALB.
    raw, _ = stack_raw(stack)
    assert json.loads(raw["voip-infra:edge"])["albScheme"] == "internet-facing"
    assert not {"albScheme", "vpcOriginId", "vpcOriginArn"} & set(plan["outputs"])


def test_dev_vpc_origin_is_https_only_tls12_to_its_alb():
    plan = stack_plan("dev")
    alb = the_alb(plan.resources)
    (vo,) = plan.of_type(VPC_ORIGIN)
    cfg = vo["props"]["vpcOriginEndpointConfig"]
    assert points_at(vo, alb) and cfg["name"] == "dev-alb"
    assert (cfg["httpPort"], cfg["httpsPort"], cfg["originProtocolPolicy"]) == (80, 443, "https-only")
    assert cfg["originSslProtocols"] == {"items": ["TLSv1.2"], "quantity": 1}
    # AWS: up to 15 minutes to Deployed; the waits leave room for a slow one.
    assert all(int(vo["props"]["timeouts"][op].removesuffix("m")) >= 20 for op in ("create", "update", "delete"))
    # Created once the HTTPS listener and every rule exist (CloudFront never meets a bare 403 ALB).
    rules = [r["urn"] for r in plan.of_type(RULE)]
    assert set(rules) <= set(vo["dependsOn"]) and any(d.endswith("::dev-alb-https") for d in vo["dependsOn"])
    # The distribution's ALB origin: the VPC origin, the same timeouts, the secret header.
    origin = alb_origin(plan.resources)
    assert origin["vpcOriginConfig"] == {"vpcOriginId": vo["id"], "originReadTimeout": 60, "originKeepaliveTimeout": 60}
    assert "customOriginConfig" not in origin
    assert origin["customHeaders"] == [{"name": ORIGIN_HEADER, "value": "[secret]"}]
    assert plan["outputs"]["albScheme"] == "internal"
    assert (plan["outputs"]["vpcOriginId"], plan["outputs"]["vpcOriginArn"]) == (
        vo["id"],
        f"arn:aws:cloudfront::123456789012:vpcorigin/{vo['id']}",
    )


def test_dev_listener_rules_still_require_the_origin_secret():
    """Defence in depth: inside the VPC anything could reach an internal ALB's listener."""
    plan = stack_plan("dev")
    alb = the_alb(plan.resources)
    (https,) = [r for r in plan.of_type(LISTENER) if r["parent"] == alb["urn"] and r["props"]["port"] == 443]
    assert https["props"]["defaultActions"][0]["fixedResponse"]["statusCode"] == "403"
    rules = [r for r in plan.of_type(RULE) if r["parent"] == https["urn"]]
    assert {r["name"] for r in rules} == {"dev-api-rule", "dev-ws-rule"}
    for rule in rules:
        headers = [c["httpHeader"] for c in rule["props"]["conditions"] if "httpHeader" in c]
        assert headers == [{"httpHeaderName": ORIGIN_HEADER, "values": ["[secret]"]}], rule["name"]


def _alb_tg_names(plan) -> dict[str, str]:
    return {r["name"]: r["props"]["name"] for r in plan.of_type(TG)}


def test_a_scheme_change_gives_the_alb_new_target_groups_and_nothing_else():
    """A target group serves one load balancer: the new ALB (created before the old one goes)
    needs new groups; internet-facing keeps today's names; the NLB's groups never move."""
    today = stack_plan("production")
    moved = variant("production", {"voip-infra:edge": {"albScheme": "internal"}})
    before, after = _alb_tg_names(today), _alb_tg_names(moved)
    assert before.keys() == after.keys() == {"production-api-tg", "production-signaling-tg", "production-turn-tg"}
    assert before["production-api-tg"] != after["production-api-tg"]
    assert {k: before[k] for k in ("production-signaling-tg", "production-turn-tg")} == {
        k: after[k] for k in ("production-signaling-tg", "production-turn-tg")
    }
    # Today's internet-facing name: exactly the hash it had before albScheme existed.
    (vpc,) = today.of_type("aws:ec2/vpc:Vpc")
    assert before["production-api-tg"] == elb_name("production", "api", vpc["id"], "ip", "HTTP", "HTTP1", 8080)

    # During the move the pods admit the new ALB's (private) subnets and still the old one's
    # (public: the NLB's too), so the old path serves until CloudFront has switched.
    def lb_cidrs(plan) -> dict[str, set[str]]:
        releases = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if "networkPolicy" in r["props"].get("values", {})]
        return {r["name"]: set(r["props"]["values"]["networkPolicy"].get("loadBalancerCidrs") or []) for r in releases}

    private = {r["props"]["cidrBlock"] for r in moved.of_type(SUBNET) if r["name"].startswith("production-private-")}
    old, new = lb_cidrs(today), lb_cidrs(moved)
    assert any(old.values()) and old.keys() == new.keys()
    assert all(new[k] == old[k] | private for k in old if old[k]), (old, new)
    # The moved stage is a valid plan: its internal ALB behind a used VPC origin, no violation.
    assert vpc_origin_violations(moved.resources) == []
    assert policy_mod.summarize(dict(moved))[0] == 0
    # dev (internal): both of its ALB groups, the hosts' and ws.<domain>'s, carry the scheme.
    dev = stack_plan("dev")
    (dev_vpc,) = dev.of_type("aws:ec2/vpc:Vpc")
    for label in ("api", "ws"):
        keys = ("dev", label, dev_vpc["id"], "ip", "HTTP", "HTTP1", 8080)
        assert _alb_tg_names(dev)[f"dev-{label}-tg"] == elb_name(*keys, "internal") != elb_name(*keys)


@pytest.mark.parametrize("value", ["private", "Internal", "internet_facing"])
def test_a_bad_scheme_is_a_config_error_naming_the_key_and_the_choices(value):
    raw, _ = stack_raw("dev")
    with pytest.raises(ConfigError) as err:
        load_stack_config("dev", with_overrides(raw, {"voip-infra:edge": {"albScheme": value}}))
    (line,) = [line for line in err.value.lines if "albScheme" in line]
    assert "edge.albScheme" in line and "'internal'" in line and "'internet-facing'" in line, line
