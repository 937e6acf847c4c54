"""Invariants the mocks cannot see but AWS enforces, over every stage's plan, each with a planted
instance of the defect it guards against (issue 15):

- security-group texts use EC2's character set (item 1);
- every interface endpoint with private DNS admits every security group whose role calls its
  service, and those groups let 443 out to it (item 4): private DNS answers for the whole VPC,
  so a client the endpoint refuses cannot reach the service at all. "Whose role calls" is derived
  from the plan's IAM: inline and attached policies of roles trusted by EC2 (instance profiles,
  node groups), EKS Pod Identity (pods on the nodes) and DMS (replication instances).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any

from tests.harness import stack_plan
from tools.quotas import refers

# ------------------------------------------------------------------ 1. SG description charset

# EC2 API reference, IpRange / UserIdGroupPair / CreateSecurityGroup: "Up to 255 characters in
# length. Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*".
SG_TEXT = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")
SG_TYPE_PREFIXES = ("aws:ec2/securityGroup", "aws:ec2/defaultSecurityGroup", "aws:vpc/securityGroup")


def _texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every `description` / `name` in a security group's props, nested rules included."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if k in ("description", "name", "namePrefix") and isinstance(v, str):
                yield sub, v
            else:
                yield from _texts(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _texts(v, f"{path}[{i}]")


def sg_text_problems(plan: dict[str, Any]) -> list[str]:
    problems = []
    for r in plan["resources"]:
        if not r["type"].startswith(SG_TYPE_PREFIXES):
            continue
        for path, text in _texts(r["props"], ""):
            if not SG_TEXT.fullmatch(text):
                bad = sorted({c for c in text if not SG_TEXT.fullmatch(c)})
                problems.append(f"{r['name']}.{path}: {text!r} ({len(text)} chars; not allowed: {bad})")
            elif path == "name" and text.startswith("sg-"):
                problems.append(f"{r['name']}.name: {text!r} may not start with sg-")
    return problems


def test_security_group_texts_are_ones_ec2_accepts(plan):
    groups = [r for r in plan.resources if r["type"].startswith(SG_TYPE_PREFIXES)]
    assert len(groups) >= 7  # the scan sees the stage's groups (and, on nas-migration, its rule resources)
    assert sg_text_problems(plan) == []


def test_sg_text_invariant_catches_planted_defects():
    plan = copy.deepcopy(stack_plan("nas-migration"))
    rule = next(r for r in plan["resources"] if r["type"] == "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    rule["props"]["description"] = "PostgreSQL on the stage's RDS"  # the original defect (an apostrophe)
    sg = next(r for r in plan["resources"] if r["type"] == "aws:ec2/securityGroup:SecurityGroup" and r["props"].get("ingress"))
    sg["props"]["ingress"][0]["description"] = "x" * 256  # too long
    problems = sg_text_problems(plan)
    assert len(problems) == 2
    assert problems[0].startswith(f"{sg['name']}.ingress[0].description: ") or problems[1].startswith(
        f"{sg['name']}.ingress[0].description: "
    )
    (apostrophe,) = [p for p in problems if p.startswith(f"{rule['name']}.description: ")]
    assert apostrophe.endswith('not allowed: ["\'"])')


# ------------------------------------------------------------------ 4. interface endpoints with private DNS

# IAM service prefix -> the interface-endpoint services its API calls go to.
ENDPOINT_SERVICES = {
    "secretsmanager": ("secretsmanager",),
    "ssm": ("ssm",),
    "ssmmessages": ("ssmmessages",),
    "ec2messages": ("ec2messages",),
    "kms": ("kms",),
    "logs": ("logs",),
    "sts": ("sts",),
    "ecr": ("ecr.api", "ecr.dkr"),
    "elasticloadbalancing": ("elasticloadbalancing",),
    "eks-auth": ("eks-auth",),
    "ec2": ("ec2",),
    "autoscaling": ("autoscaling",),
    "sns": ("sns",),
}
# AWS managed policies the plan attaches, by the IAM services they call (their published documents).
MANAGED_POLICY_SERVICES = {
    "AmazonSSMManagedInstanceCore": ("ssm", "ssmmessages", "ec2messages"),
    "AmazonEKSWorkerNodePolicy": ("ec2", "eks-auth"),
    "AmazonEC2ContainerRegistryPullOnly": ("ecr",),
    "AmazonEKS_CNI_Policy": ("ec2",),
    "AmazonEBSCSIDriverPolicy": ("ec2",),
}
# Trust principals whose code runs inside the VPC, behind its security groups. Roles of other
# services (eks, vpc-flow-logs, monitoring.rds) are used from the service's own network.
IN_VPC_PRINCIPALS = ("ec2.amazonaws.com", "pods.eks.amazonaws.com", "dms.amazonaws.com")


def _statements(policy: Any) -> list[dict[str, Any]]:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    stmts = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [stmts] if isinstance(stmts, dict) else stmts


def _called_services(statements: list[dict[str, Any]]) -> set[str]:
    """IAM service prefixes a role calls itself. A KMS grant conditioned on kms:ViaService is used
    by that service on the role's behalf (from the service, not from the role's ENI)."""
    out = set()
    for s in statements:
        if s.get("Effect") != "Allow" or "kms:ViaService" in json.dumps(s.get("Condition", {})):
            continue
        actions = s.get("Action", [])
        for a in [actions] if isinstance(actions, str) else actions:
            out.add(a.split(":", 1)[0].lower())
    return out


def _trusts(role: dict[str, Any]) -> set[str]:
    services = set()
    for s in _statements(role["props"].get("assumeRolePolicy", "{}")):
        svc = s.get("Principal", {}).get("Service", [])
        services |= {svc} if isinstance(svc, str) else set(svc)
    # dms.<region>.amazonaws.com is DMS too.
    return {re.sub(r"^dms\.[a-z0-9-]+\.amazonaws\.com$", "dms.amazonaws.com", s) for s in services}


def role_calls(plan: dict[str, Any]) -> dict[str, set[str]]:
    """Role mocked id -> the IAM service prefixes it calls (inline and attached policies)."""
    roles = [r for r in plan["resources"] if r["type"] == "aws:iam/role:Role"]
    calls = {
        r["id"]: _called_services([s for p in r["props"].get("inlinePolicies", []) for s in _statements(p.get("policy", "{}"))])
        for r in roles
    }
    for r in plan["resources"]:
        for role in roles:
            if not refers(r["props"].get("role"), role):
                continue
            if r["type"] == "aws:iam/rolePolicy:RolePolicy":
                calls[role["id"]] |= _called_services(_statements(r["props"]["policy"]))
            elif r["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
                calls[role["id"]] |= set(MANAGED_POLICY_SERVICES.get(r["props"]["policyArn"].rsplit("/", 1)[1], ()))
    return calls


def role_security_groups(plan: dict[str, Any]) -> dict[str, set[str]]:
    """Role mocked id -> the security groups of the ENIs its credentials are used from."""
    res = plan["resources"]

    def of(typ: str) -> list[dict[str, Any]]:
        return [r for r in res if r["type"] == typ]

    templates = {lt["id"]: lt for lt in of("aws:ec2/launchTemplate:LaunchTemplate")}
    node_sgs = {
        sg
        for ng in of("aws:eks/nodeGroup:NodeGroup")
        for sg in templates[ng["props"]["launchTemplate"]["id"]]["props"]["vpcSecurityGroupIds"]
    }
    out: dict[str, set[str]] = {}
    for role in of("aws:iam/role:Role"):
        trusts, sgs = _trusts(role), set()
        if "ec2.amazonaws.com" in trusts:
            profiles = [p for p in of("aws:iam/instanceProfile:InstanceProfile") if refers(p["props"]["role"], role)]
            for holder in [*templates.values(), *of("aws:ec2/instance:Instance")]:
                ip = holder["props"].get("iamInstanceProfile")
                ref = ip.get("arn") or ip.get("name") if isinstance(ip, dict) else ip
                if any(refers(ref, p) for p in profiles):
                    sgs |= set(holder["props"].get("vpcSecurityGroupIds", []))
            for ng in of("aws:eks/nodeGroup:NodeGroup"):
                if refers(ng["props"]["nodeRoleArn"], role):
                    sgs |= set(templates[ng["props"]["launchTemplate"]["id"]]["props"]["vpcSecurityGroupIds"])
        if "pods.eks.amazonaws.com" in trusts:
            sgs |= node_sgs  # pods use their node's ENIs (VPC CNI without security groups for pods)
        if "dms.amazonaws.com" in trusts:
            sgs |= {sg for ri in of("aws:dms/replicationInstance:ReplicationInstance") for sg in ri["props"]["vpcSecurityGroupIds"]}
        out[role["id"]] = sgs
    return out


def _peers_443(plan: dict[str, Any], sg_id: str, direction: str = "ingress") -> tuple[set[str], list[str]]:
    """(peer security groups, peer CIDRs) a group allows on TCP 443 in `direction`, from its inline
    rules and the separate rule resources alike."""

    def covers(rule: dict[str, Any]) -> bool:
        protocol = rule.get("protocol", rule.get("ipProtocol"))
        return protocol in ("-1", "all") or (protocol in ("tcp", "6") and rule.get("fromPort", 0) <= 443 <= rule.get("toPort", 65535))

    vpc_rule = (
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
        if direction == "ingress"
        else "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
    )
    groups, cidrs = set(), []
    for r in plan["resources"]:
        p = r["props"]
        rules: list[dict[str, Any]] = []
        if r["type"] == "aws:ec2/securityGroup:SecurityGroup" and r["id"] == sg_id:
            rules = p.get(direction, [])
        elif r["type"] == "aws:ec2/securityGroupRule:SecurityGroupRule" and p.get("type") == direction and p["securityGroupId"] == sg_id:
            rules = [{**p, "securityGroups": [p["sourceSecurityGroupId"]] if p.get("sourceSecurityGroupId") else []}]
        elif r["type"] == vpc_rule and p["securityGroupId"] == sg_id:
            peer = p.get("referencedSecurityGroupId")
            rules = [{**p, "securityGroups": [peer] if peer else [], "cidrBlocks": [p["cidrIpv4"]] if p.get("cidrIpv4") else []}]
        for rule in rules:
            if covers(rule):
                groups |= set(rule.get("securityGroups", []))
                cidrs += rule.get("cidrBlocks", [])
    return groups, cidrs


def _name(plan: dict[str, Any], rid: str) -> str:
    return next(r["name"] for r in plan["resources"] if r["id"] == rid)


def endpoint_access_problems(plan: dict[str, Any]) -> list[str]:
    vpc = ipaddress.ip_network(plan["config"]["network"]["cidr"])
    calls, role_sgs = role_calls(plan), role_security_groups(plan)
    problems = []
    for ep in plan["resources"]:
        props = ep["props"]
        if (
            ep["type"] != "aws:ec2/vpcEndpoint:VpcEndpoint"
            or props.get("vpcEndpointType") != "Interface"
            or not props.get("privateDnsEnabled")
        ):
            continue
        service = props["serviceName"].split(".", 3)[3]  # com.amazonaws.<region>.<service>
        endpoint_sgs = set(props.get("securityGroupIds", []))
        groups, cidrs = set(), []
        for sg in endpoint_sgs:
            g, c = _peers_443(plan, sg)
            groups, cidrs = groups | g, cidrs + c
        whole_vpc = any(vpc.subnet_of(ipaddress.ip_network(c)) for c in cidrs)
        for role_id, prefixes in calls.items():
            if not any(service in ENDPOINT_SERVICES.get(p, ()) for p in prefixes):
                continue
            for sg in sorted(role_sgs[role_id]):
                if not whole_vpc and sg not in groups:
                    problems.append(f"{ep['name']} ({service}, private DNS) refuses 443 from {sg}, a group of {_name(plan, role_id)}")
                # ... and the caller's group lets it out to the endpoint (groups EKS makes are not in the plan)
                out_groups, out_cidrs = _peers_443(plan, sg, "egress")
                in_plan = any(r["id"] == sg for r in plan["resources"])
                if in_plan and not (out_groups & endpoint_sgs or any(vpc.subnet_of(ipaddress.ip_network(c)) for c in out_cidrs)):
                    problems.append(f"{_name(plan, sg)} of {_name(plan, role_id)} has no egress on 443 to {ep['name']} ({service})")
    return problems


def test_private_dns_endpoints_admit_every_caller_of_their_service(plan):
    assert endpoint_access_problems(plan) == []


def test_callers_are_derived_from_the_plans_iam():
    plan = stack_plan("nas-migration")
    calls, sgs = role_calls(plan), role_security_groups(plan)
    by_name = {r["name"]: r["id"] for r in plan.of_type("aws:iam/role:Role")}
    turn, dms, nodes = (
        by_name["nas-migration-turn-node"],
        by_name["nas-migration-dms-secrets-access"],
        by_name["nas-migration-eks-node-role"],
    )
    assert {"secretsmanager", "ssm", "ssmmessages", "ec2messages"} <= calls[turn]
    assert "secretsmanager" in calls[dms] and "kms" not in calls[dms]  # its kms:Decrypt is via Secrets Manager
    assert {"ecr", "ec2"} <= calls[nodes]
    (turn_lt,) = [lt for lt in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if lt["name"].endswith("-turn-lt")]
    assert sgs[turn] == set(turn_lt["props"]["vpcSecurityGroupIds"])
    assert sgs[dms] == set(plan.of_type("aws:dms/replicationInstance:ReplicationInstance")[0]["props"]["vpcSecurityGroupIds"])


def test_endpoint_invariant_catches_the_dms_only_endpoint():
    """The original defect: the Secrets Manager endpoint (private DNS) admitted DMS only, so the
    TURN nodes' boot script could not fetch the TURN secret and coturn never started."""
    plan = copy.deepcopy(stack_plan("nas-migration"))
    dms_sg = next(r for r in plan.resources if r["name"] == "nas-migration-dms-sg")
    ep_sg = next(r for r in plan.resources if r["name"] == "nas-migration-dms-secrets-endpoint-sg")
    ep_sg["props"]["ingress"] = [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "securityGroups": [dms_sg["id"]]}]
    (turn_lt,) = [lt for lt in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if lt["name"].endswith("-turn-lt")]
    problems = endpoint_access_problems(plan)
    # The apps' pods (co-talk-api reads the database secret) are refused too, from the nodes' groups.
    assert [p for p in problems if "co-talk-api" not in p] == [
        f"nas-migration-dms-secretsmanager-endpoint (secretsmanager, private DNS) refuses 443 from {turn_lt['props']['vpcSecurityGroupIds'][0]}, a group of nas-migration-turn-node"
    ]
    assert any(p.endswith("a group of nas-migration-co-talk-api-role") for p in problems)
    # A caller whose own group cannot reach the endpoint is caught too (TURN without 443 out).
    turn_sg = next(r for r in plan.resources if r["id"] == turn_lt["props"]["vpcSecurityGroupIds"][0])
    turn_sg["props"]["egress"] = [e for e in turn_sg["props"]["egress"] if e["fromPort"] != 443]
    assert [p for p in endpoint_access_problems(plan) if "co-talk-api" not in p][1:] == [
        "nas-migration-turn-sg of nas-migration-turn-node has no egress on 443 to nas-migration-dms-secretsmanager-endpoint (secretsmanager)"
    ]
