"""The AWS quotas a stage's plan needs, counted from the plan, against the AWS defaults.

A first `pulumi up` stops half-way when a create hits a quota (production needs 9 Elastic IPs:
3 NAT, 3 NLB, 3 TURN; a new account has 5). `tools plan` prints the ones a stage must have raised
(Service Quotas code, needed vs default), the README's first-run steps list them, and
tests/test_quotas.py checks every stage against this table with planted overruns.

Defaults and codes: Service Quotas (service code, quota code) and the services' quota pages
(VPC, EC2, ELB, EKS, RDS user guides), checked 2026-11-29. They are per account and region: stages
sharing an account add up on the per-region rows. WAF's web ACL capacity (WCU) is a hard maximum
(5,000; above 1,500 each 500 WCUs are billed extra), not a Service Quotas quota.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Resource = dict[str, Any]
Count = tuple[int, str]  # (needed, where: the resource that needs the most)


@dataclass(frozen=True)
class Quota:
    name: str  # as Service Quotas names it
    service: str  # Service Quotas service code
    code: str | None  # Service Quotas quota code; None: a fixed limit, not requestable
    default: int
    per: str  # what the quota is counted per
    count: Callable[[dict[str, Any]], Count]

    @property
    def adjustable(self) -> bool:
        return self.code is not None


@dataclass(frozen=True)
class Usage:
    quota: Quota
    needed: int
    where: str

    @property
    def over(self) -> bool:
        return self.needed > self.quota.default

    def line(self) -> str:
        q = self.quota
        ident, limit = (f"{q.service} {q.code}", "default") if q.code else (f"{q.service}, not adjustable", "limit")
        return f"{q.name} ({ident}): needs {self.needed}, {limit} {q.default} per {q.per} ({self.where})"


# ------------------------------------------------------------------ plan helpers


def _of(plan: dict[str, Any], *types: str) -> list[Resource]:
    return [r for r in plan["resources"] if r["type"] in types]


def refers(value: Any, r: Resource) -> bool:
    """Whether an id or ARN names resource `r` (its mocked id or its name as a path segment)."""
    if not isinstance(value, str):
        return False
    names = {r.get("id"), r["props"].get("name")} - {None, ""}
    return value in names or bool(names & set(value.replace(":", "/").split("/")))


def _max(items: Iterable[tuple[int, str]], none: str = "none") -> Count:
    return max(items, default=(0, none), key=lambda x: x[0])


def _total(resources: list[Resource], what: str) -> Count:
    return len(resources), what


# ------------------------------------------------------------------ EC2 / VPC


def _eips(plan: dict[str, Any]) -> Count:
    eips = _of(plan, "aws:ec2/eip:Eip")
    # Names are <stage>-<what>-<az or n>-eip: count them by what (nat, nlb, turn).
    kinds = Counter(r["name"].removeprefix(plan["stack"] + "-").split("-")[0] for r in eips)
    return len(eips), ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"


def _nat_per_az(plan: dict[str, Any]) -> Count:
    subnets = {s["id"]: s["props"].get("availabilityZone", "?") for s in _of(plan, "aws:ec2/subnet:Subnet")}
    per_az = Counter(subnets.get(n["props"].get("subnetId"), "?") for n in _of(plan, "aws:ec2/natGateway:NatGateway"))
    return _max(((n, az) for az, n in per_az.items()))


def _interface_endpoints(plan: dict[str, Any]) -> Count:
    per_vpc = Counter(
        e["props"].get("vpcId") for e in _of(plan, "aws:ec2/vpcEndpoint:VpcEndpoint") if e["props"].get("vpcEndpointType") == "Interface"
    )
    return _max((n, "the VPC") for n in per_vpc.values())


# Where security groups are attached to network interfaces: type -> (property path to the list).
_SG_HOLDERS: dict[str, Callable[[Resource], list[str]]] = {
    "aws:ec2/launchTemplate:LaunchTemplate": lambda r: r["props"].get("vpcSecurityGroupIds", []),
    "aws:ec2/instance:Instance": lambda r: r["props"].get("vpcSecurityGroupIds", []),
    "aws:lb/loadBalancer:LoadBalancer": lambda r: r["props"].get("securityGroups", []),
    "aws:rds/instance:Instance": lambda r: r["props"].get("vpcSecurityGroupIds", []),
    "aws:elasticache/replicationGroup:ReplicationGroup": lambda r: r["props"].get("securityGroupIds", []),
    "aws:dms/replicationInstance:ReplicationInstance": lambda r: r["props"].get("vpcSecurityGroupIds", []),
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda r: r["props"].get("securityGroupIds", []),
    # EKS adds its cluster security group to the control plane's ENIs.
    "aws:eks/cluster:Cluster": lambda r: [*r["props"].get("vpcConfig", {}).get("securityGroupIds", []), "cluster security group"],
}


def _sgs_per_eni(plan: dict[str, Any]) -> Count:
    return _max((len(get(r)), r["name"]) for r in plan["resources"] if (get := _SG_HOLDERS.get(r["type"])))


# Weights of AWS-managed prefix lists (VPC user guide, "AWS-managed prefix list weight"), by the
# ids the program resolves in its region: a reference counts as that many rules.
PREFIX_LIST_WEIGHTS = {
    "pl-22a6434b": ("com.amazonaws.global.cloudfront.origin-facing", 55),
}


def _rule_weight(rule: dict[str, Any], family: str) -> int:
    """Rules a (flattened) SG rule entry counts as, for one address family."""
    if family == "ipv6":
        return len(rule.get("ipv6CidrBlocks", []))
    weight = len(rule.get("cidrBlocks", [])) + len(rule.get("securityGroups", [])) + int(bool(rule.get("self")))
    return weight + sum(PREFIX_LIST_WEIGHTS.get(p, ("?", 1))[1] for p in rule.get("prefixListIds", []))


def _sg_rules(plan: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(security group id, direction) -> rule entries, inline and separate rule resources alike."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in plan["resources"]:
        p = r["props"]
        if r["type"] in ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"):
            out.setdefault((r["id"], "ingress"), []).extend(p.get("ingress", []))
            out.setdefault((r["id"], "egress"), []).extend(p.get("egress", []))
        elif r["type"] == "aws:ec2/securityGroupRule:SecurityGroupRule":
            entry = {**p, "securityGroups": [p["sourceSecurityGroupId"]] if p.get("sourceSecurityGroupId") else []}
            out.setdefault((p["securityGroupId"], p["type"]), []).append(entry)
        elif r["type"] in (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        ):
            entry = {
                "cidrBlocks": [p["cidrIpv4"]] if p.get("cidrIpv4") else [],
                "ipv6CidrBlocks": [p["cidrIpv6"]] if p.get("cidrIpv6") else [],
                "securityGroups": [p["referencedSecurityGroupId"]] if p.get("referencedSecurityGroupId") else [],
                "prefixListIds": [p["prefixListId"]] if p.get("prefixListId") else [],
            }
            direction = "ingress" if "Ingress" in r["type"] else "egress"
            out.setdefault((p["securityGroupId"], direction), []).append(entry)
    return out


def _rules_per_sg(plan: dict[str, Any]) -> Count:
    names = {r["id"]: r["name"] for r in plan["resources"]}
    return _max(
        (sum(_rule_weight(rule, family) for rule in rules), f"{names.get(sg, sg)} {direction} {family}")
        for (sg, direction), rules in _sg_rules(plan).items()
        for family in ("ipv4", "ipv6")
    )


# ------------------------------------------------------------------ load balancers


def _lbs(plan: dict[str, Any], kind: str) -> list[Resource]:
    return [
        lb
        for lb in _of(plan, "aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
        if lb["props"].get("loadBalancerType", "application") == kind
    ]


def _listeners(plan: dict[str, Any], lb: Resource) -> list[Resource]:
    return [x for x in _of(plan, "aws:lb/listener:Listener", "aws:alb/listener:Listener") if refers(x["props"].get("loadBalancerArn"), lb)]


def _alb_rules(plan: dict[str, Any], lb: Resource) -> list[Resource]:
    listeners = _listeners(plan, lb)
    return [
        r
        for r in _of(plan, "aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
        if any(refers(r["props"].get("listenerArn"), x) for x in listeners)
    ]


def _forward_targets(actions: list[dict[str, Any]]) -> set[str]:
    out = set()
    for a in actions:
        if a.get("targetGroupArn"):
            out.add(a["targetGroupArn"])
        out |= {tg["arn"] for tg in a.get("forward", {}).get("targetGroups", [])}
    return out


def _per_alb(plan: dict[str, Any], count: Callable[[Resource], int]) -> Count:
    return _max((count(lb), lb["name"]) for lb in _lbs(plan, "application"))


def _alb_target_groups(plan: dict[str, Any], lb: Resource) -> int:
    arns = {t for x in _listeners(plan, lb) for t in _forward_targets(x["props"].get("defaultActions", []))}
    arns |= {t for r in _alb_rules(plan, lb) for t in _forward_targets(r["props"].get("actions", []))}
    return len(arns)


# ------------------------------------------------------------------ WAF capacity (WCUs)

# Published capacities of the AWS managed rule groups the program uses (WAF developer guide,
# "AWS Managed Rules rule groups list").
MANAGED_GROUP_WCUS = {
    "AWSManagedRulesAmazonIpReputationList": 25,
    "AWSManagedRulesCommonRuleSet": 700,
    "AWSManagedRulesKnownBadInputsRuleSet": 200,
    "AWSManagedRulesSQLiRuleSet": 200,
    "AWSManagedRulesAnonymousIpList": 50,
    "AWSManagedRulesAdminProtectionRuleSet": 100,
    "AWSManagedRulesLinuxRuleSet": 200,
}
# Match statements: base WCUs by positional constraint (byte match) or statement (WAF developer
# guide, "Using match rule statements"): +10 per text transformation (NONE is none), +10 for all
# query arguments, a JSON body doubles the base.
_BYTE_MATCH_BASE = {"EXACTLY": 2, "STARTS_WITH": 2, "ENDS_WITH": 2, "CONTAINS": 10, "CONTAINS_WORD": 10}
_MATCH_BASE = {
    "regexMatchStatement": 3,
    "regexPatternSetReferenceStatement": 25,
    "sizeConstraintStatement": 1,
    "sqliMatchStatement": 20,
    "xssMatchStatement": 40,
}


def _inspection(body: dict[str, Any], base: int) -> int:
    field = body.get("fieldToMatch", {})
    base = base * 2 if "jsonBody" in field else base
    extra = 10 if "allQueryArguments" in field else 0
    transforms = [t for t in body.get("textTransformations", []) if t.get("type") != "NONE"]
    return base + extra + 10 * len(transforms)


def statement_wcus(statement: dict[str, Any]) -> int:
    """WCUs of one rule statement (recursively); raises on a statement type it cannot price."""
    ((kind, body),) = statement.items()
    if kind == "managedRuleGroupStatement":  # the group's capacity, plus its scope-down statement
        scope = statement_wcus(body["scopeDownStatement"]) if body.get("scopeDownStatement") else 0
        return MANAGED_GROUP_WCUS[body["name"]] + scope
    if kind in ("ipSetReferenceStatement", "geoMatchStatement", "labelMatchStatement", "asnMatchStatement"):
        forwarded_any = body.get("ipSetForwardedIpConfig", {}).get("position") == "ANY"
        return 1 + (4 if forwarded_any else 0)
    if kind == "byteMatchStatement":
        return _inspection(body, _BYTE_MATCH_BASE[body["positionalConstraint"]])
    if kind in _MATCH_BASE:
        return _inspection(body, _MATCH_BASE[kind])
    if kind == "rateBasedStatement":
        keys = len(body.get("customKeys", [])) if body.get("aggregateKeyType") == "CUSTOM_KEYS" else 0
        scope = statement_wcus(body["scopeDownStatement"]) if body.get("scopeDownStatement") else 0
        return 2 + 30 * keys + scope
    if kind == "notStatement":
        return 1 + statement_wcus(body["statement"])
    if kind in ("andStatement", "orStatement"):
        return 1 + sum(statement_wcus(s) for s in body["statements"])
    raise ValueError(f"no WCU price for a {kind}: add it to tools/quotas.py")


def web_acl_wcus(acl: Resource) -> int:
    rules = acl["props"].get("rules", [])
    rules = json.loads(rules) if isinstance(rules, str) else rules
    return sum(statement_wcus(r["statement"]) for r in rules)


def _wcus(plan: dict[str, Any]) -> Count:
    return _max((web_acl_wcus(a), a["name"]) for a in _of(plan, "aws:wafv2/webAcl:WebAcl"))


# ------------------------------------------------------------------ EKS, RDS


def _node_groups_per_cluster(plan: dict[str, Any]) -> Count:
    per = Counter(ng["props"].get("clusterName") for ng in _of(plan, "aws:eks/nodeGroup:NodeGroup"))
    return _max((n, "the cluster") for n in per.values())


def _nodes_per_group(plan: dict[str, Any]) -> Count:
    return _max((ng["props"]["scalingConfig"]["maxSize"], ng["name"]) for ng in _of(plan, "aws:eks/nodeGroup:NodeGroup"))


def _public_access_cidrs(plan: dict[str, Any]) -> Count:
    return _max(
        (len(c["props"].get("vpcConfig", {}).get("publicAccessCidrs", [])), c["name"]) for c in _of(plan, "aws:eks/cluster:Cluster")
    )


def _read_replicas(plan: dict[str, Any]) -> Count:
    per = Counter(r["props"]["replicateSourceDb"] for r in _of(plan, "aws:rds/instance:Instance") if r["props"].get("replicateSourceDb"))
    return _max((n, "the primary") for n in per.values())


# ------------------------------------------------------------------ the table

QUOTAS: tuple[Quota, ...] = (
    Quota("EC2-VPC Elastic IPs", "ec2", "L-0263D0A3", 5, "region", _eips),
    Quota("VPCs per Region", "vpc", "L-F678F1CE", 5, "region", lambda p: _total(_of(p, "aws:ec2/vpc:Vpc"), "the stage's VPC")),
    Quota(
        "Internet gateways per Region",
        "vpc",
        "L-A4707A72",
        5,
        "region",
        lambda p: _total(_of(p, "aws:ec2/internetGateway:InternetGateway"), "the VPC's"),
    ),
    Quota("NAT gateways per Availability Zone", "vpc", "L-FE5A380F", 5, "AZ", _nat_per_az),
    Quota("Interface VPC endpoints per VPC", "vpc", "L-29B6F2EB", 50, "VPC", _interface_endpoints),
    Quota("Security groups per network interface", "vpc", "L-2AFB9258", 5, "network interface", _sgs_per_eni),
    Quota("Inbound or outbound rules per security group", "vpc", "L-0EA8095F", 60, "security group, direction and family", _rules_per_sg),
    Quota(
        "Application Load Balancers per Region",
        "elasticloadbalancing",
        "L-53DA6B97",
        50,
        "region",
        lambda p: _total(_lbs(p, "application"), "ALBs"),
    ),
    Quota(
        "Network Load Balancers per Region",
        "elasticloadbalancing",
        "L-69A177A2",
        50,
        "region",
        lambda p: _total(_lbs(p, "network"), "NLBs"),
    ),
    Quota(
        "Listeners per Application Load Balancer",
        "elasticloadbalancing",
        "L-B6DF7632",
        50,
        "ALB",
        lambda p: _per_alb(p, lambda lb: len(_listeners(p, lb))),
    ),
    Quota(
        "Rules per Application Load Balancer",
        "elasticloadbalancing",
        "L-7EED9B64",
        100,
        "ALB",
        lambda p: _per_alb(p, lambda lb: len(_alb_rules(p, lb))),
    ),
    Quota(
        "Target Groups per Application Load Balancer",
        "elasticloadbalancing",
        "L-822D1B1B",
        100,
        "ALB",
        lambda p: _per_alb(p, lambda lb: _alb_target_groups(p, lb)),
    ),
    Quota("Web ACL capacity units (WCUs) per web ACL", "wafv2", None, 5000, "web ACL", _wcus),
    Quota("Managed node groups per cluster", "eks", "L-6D54EA21", 30, "cluster", _node_groups_per_cluster),
    Quota("Nodes per managed node group", "eks", "L-BD136A63", 450, "node group", _nodes_per_group),
    Quota("Public endpoint access CIDR ranges per cluster", "eks", "L-93A74D60", 40, "cluster", _public_access_cidrs),
    Quota("Read replicas per primary", "rds", "L-5BC124EF", 15, "primary", _read_replicas),
    Quota("DB instances", "rds", "L-7B6409FD", 40, "region", lambda p: _total(_of(p, "aws:rds/instance:Instance"), "primary + replicas")),
)


def usage(plan: dict[str, Any]) -> list[Usage]:
    out = []
    for q in QUOTAS:
        needed, where = q.count(plan)
        out.append(Usage(q, needed, where))
    return out


def to_raise(plan: dict[str, Any]) -> list[Usage]:
    return [u for u in usage(plan) if u.over]


def render_lines(plan: dict[str, Any]) -> list[str]:
    """`tools plan`'s quota lines: a summary, then one `raise ...` line per quota over its default."""
    used = usage(plan)
    over = [u for u in used if u.over]
    if not over:
        return [f"quotas: all {len(used)} counted quotas fit the AWS defaults"]
    lines = [f"quotas: {len(over)} of {len(used)} counted quotas need more than the AWS default; before the first `pulumi up`:"]
    for u in over:
        verb = "raise" if u.quota.adjustable else "reduce (hard limit)"
        lines.append(f"  {verb} {u.line()}")
    return lines


__all__ = ["QUOTAS", "Quota", "Usage", "refers", "render_lines", "statement_wcus", "to_raise", "usage", "web_acl_wcus"]
