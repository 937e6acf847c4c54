"""Network: subnet carving, NAT strategies, routes, endpoints, flow logs, per stack."""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import json

import pytest

from components.network import SubnetPlan
from tests.harness import STACKS, stack_plan, variant
from tests.resource_types import EIP, LOG_GROUP, NAT, ROUTE

SUBNET = "aws:ec2/subnet:Subnet"
RT = "aws:ec2/routeTable:RouteTable"
RTA = "aws:ec2/routeTableAssociation:RouteTableAssociation"


def _vpc(plan):
    (vpc,) = plan.of_type("aws:ec2/vpc:Vpc")
    return vpc


def _subnets(plan, tier):
    return [s for s in plan.of_type(SUBNET) if s["props"]["tags"]["tier"] == tier]


def _routes_of(plan, route_table_id):
    return [r for r in plan.of_type(ROUTE) if r["props"]["routeTableId"] == route_table_id]


def _route_table_of(plan, subnet):
    (assoc,) = [a for a in plan.of_type(RTA) if a["props"]["subnetId"] == subnet["id"]]
    return plan.by_id(assoc["props"]["routeTableId"])


# -------------------------------------------------------------- carving (pure)


@pytest.mark.parametrize("cidr", ["10.20.0.0/16", "10.0.0.0/18", "172.16.32.0/20"])
@pytest.mark.parametrize("azs", [2, 3, 4])
def test_subnet_plan_is_inside_the_vpc_and_disjoint(cidr, azs):
    vpc = ipaddress.ip_network(cidr)
    plan = SubnetPlan.carve(vpc, azs)
    blocks = [*plan.public, *plan.private, *plan.isolated]
    assert len(blocks) == 3 * azs
    assert all(b.subnet_of(vpc) for b in blocks)
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    # Private subnets host EKS pods (one VPC IP each): they get the big blocks.
    assert all(p.num_addresses >= 8 * q.num_addresses for p, q in zip(plan.private, plan.public))


def test_subnet_plan_is_deterministic_and_stable_when_azs_are_added():
    vpc = ipaddress.ip_network("10.40.0.0/16")
    two, three = SubnetPlan.carve(vpc, 2), SubnetPlan.carve(vpc, 3)
    # Adding an AZ must not move existing subnets (that would replace them).
    assert three.public[:2] == two.public and three.private[:2] == two.private and three.isolated[:2] == two.isolated
    assert [str(s) for s in two.private] == ["10.40.0.0/19", "10.40.32.0/19"]
    assert [str(s) for s in two.public] == ["10.40.128.0/22", "10.40.132.0/22"]
    assert [str(s) for s in two.isolated] == ["10.40.144.0/22", "10.40.148.0/22"]


# ------------------------------------------------------------ per stack (mocks)


def test_vpc_has_dns_and_the_stack_cidr(plan):
    vpc = _vpc(plan)
    assert vpc["props"]["cidrBlock"] == plan["config"]["network"]["cidr"]
    assert vpc["props"]["enableDnsSupport"] is True
    assert vpc["props"]["enableDnsHostnames"] is True


def test_one_subnet_per_tier_per_az_inside_the_vpc(plan):
    vpc_cidr = ipaddress.ip_network(_vpc(plan)["props"]["cidrBlock"])
    azs = plan["config"]["network"]["azs"]
    blocks = []
    for tier in ("public", "private", "isolated"):
        subnets = _subnets(plan, tier)
        assert sorted(s["props"]["availabilityZone"] for s in subnets) == sorted(azs)
        for s in subnets:
            assert s["props"]["vpcId"] == _vpc(plan)["id"]
            block = ipaddress.ip_network(s["props"]["cidrBlock"])
            assert block.subnet_of(vpc_cidr)
            blocks.append(block)
    for i, a in enumerate(blocks):
        assert not any(a.overlaps(b) for b in blocks[i + 1 :])


def test_eks_load_balancer_subnet_tags(plan):
    assert all(s["props"]["tags"].get("kubernetes.io/role/elb") == "1" for s in _subnets(plan, "public"))
    assert all(s["props"]["tags"].get("kubernetes.io/role/internal-elb") == "1" for s in _subnets(plan, "private"))
    assert not any("kubernetes.io/role/elb" in s["props"]["tags"] for s in _subnets(plan, "isolated"))
    assert all(s["props"].get("mapPublicIpOnLaunch") is False for s in _subnets(plan, "public"))


def _without_nas_lan(plan, routes):
    """Routes minus the NAS bridge's: the NAS LAN (migration.nasLanCidr) to the VPN gateway."""
    mig = plan["config"].get("migration")
    vgws = {g["id"] for g in plan.of_type("aws:ec2/vpnGateway:VpnGateway")}
    lan = mig["nasLanCidr"] if mig and mig["enabled"] else None
    return [r for r in routes if not (r["props"].get("destinationCidrBlock") == lan and r["props"].get("gatewayId") in vgws)]


def test_isolated_subnets_have_no_route_to_the_internet(plan):
    for subnet in _subnets(plan, "isolated"):
        rt = _route_table_of(plan, subnet)
        assert _without_nas_lan(plan, _routes_of(plan, rt["id"])) == []  # only the implicit local route
        assert not rt["props"].get("routes")


def test_public_subnets_route_to_the_internet_gateway(plan):
    (igw,) = plan.of_type("aws:ec2/internetGateway:InternetGateway")
    for subnet in _subnets(plan, "public"):
        routes = _routes_of(plan, _route_table_of(plan, subnet)["id"])
        assert [(r["props"]["destinationCidrBlock"], r["props"]["gatewayId"]) for r in routes] == [("0.0.0.0/0", igw["id"])]


def test_private_subnets_route_through_nat_per_strategy(plan):
    strategy = plan["config"]["network"]["natStrategy"]
    nats = plan.of_type(NAT)
    nat_subnet_az = {n["id"]: plan.by_id(n["props"]["subnetId"])["props"]["availabilityZone"] for n in nats}
    for subnet in _subnets(plan, "private"):
        routes = _without_nas_lan(plan, _routes_of(plan, _route_table_of(plan, subnet)["id"]))
        if strategy in ("none", "instance"):  # instance: the NAT instance owns the route (test_nat_instance.py)
            assert routes == []
            continue
        (route,) = routes
        assert route["props"]["destinationCidrBlock"] == "0.0.0.0/0"
        if strategy == "per_az":  # no cross-AZ dependency
            assert nat_subnet_az[route["props"]["natGatewayId"]] == subnet["props"]["availabilityZone"]
        else:
            assert route["props"]["natGatewayId"] == nats[0]["id"]


@pytest.mark.parametrize(
    "stack, strategy, expected",
    [("dev", "instance", 0), ("nas-migration", "instance", 0), ("production", "per_az", 3)],
)
def test_stack_nat_gateway_counts(stack, strategy, expected):
    plan = stack_plan(stack)
    assert plan["config"]["network"]["natStrategy"] == strategy
    nats = plan.of_type(NAT)
    assert len(nats) == expected
    # Each NAT sits in a public subnet with its own EIP.
    eip_ids = {e["id"] for e in plan.of_type(EIP)}
    for nat in nats:
        assert plan.by_id(nat["props"]["subnetId"])["props"]["tags"]["tier"] == "public"
        assert nat["props"]["allocationId"] in eip_ids
    assert len({n["props"]["allocationId"] for n in nats}) == expected


@pytest.mark.parametrize(
    "strategy, azs, nat_count",
    [
        ("none", ["ap-northeast-2a", "ap-northeast-2c"], 0),
        ("per_az", ["ap-northeast-2a", "ap-northeast-2c"], 2),
        ("single", ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"], 1),
    ],
)
def test_nat_strategy_variants(strategy, azs, nat_count):
    # Without NAT the in-VPC CI runner has no way to GitHub (a config error): off here; the
    # database rotation function reaches Secrets Manager through its endpoint.
    runner = {"voip-infra:cluster": {"ciRunner": {"enabled": strategy != "none"}}}
    endpoints = {"interfaceEndpoints": ["secretsmanager"]} if strategy == "none" else {}
    plan = variant("dev", {"voip-infra:network": {"natStrategy": strategy, "azs": azs, **endpoints}, **runner})
    assert len(plan.of_type(NAT)) == nat_count
    nat_eips = [e for e in plan.of_type(EIP) if e["name"].startswith("dev-nat-")]
    assert len(nat_eips) == nat_count
    private_routes = [r for r in plan.of_type(ROUTE) if r["props"].get("natGatewayId")]
    assert len(private_routes) == (0 if strategy == "none" else len(azs))
    assert len(_subnets(plan, "private")) == len(azs)


def test_s3_gateway_endpoint_on_every_route_table(plan):
    (endpoint,) = [e for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e["props"]["vpcEndpointType"] == "Gateway"]
    assert endpoint["props"]["serviceName"] == f"com.amazonaws.{plan['config']['aws:region']}.s3"
    assert sorted(endpoint["props"]["routeTableIds"]) == sorted(rt["id"] for rt in plan.of_type(RT))


def test_interface_endpoints_admit_https_from_the_vpc_only():
    plan = variant(
        "dev",
        {
            "voip-infra:network": {"natStrategy": "none", "interfaceEndpoints": ["ecr.api", "secretsmanager", "sts"]},
            "voip-infra:cluster": {"ciRunner": {"enabled": False}},
        },
    )
    endpoints = [e for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if e["props"]["vpcEndpointType"] == "Interface"]
    assert sorted(e["props"]["serviceName"] for e in endpoints) == [
        "com.amazonaws.ap-northeast-2.ecr.api",
        "com.amazonaws.ap-northeast-2.secretsmanager",
        "com.amazonaws.ap-northeast-2.sts",
    ]
    private_ids = {s["id"] for s in _subnets(plan, "private")}
    for e in endpoints:
        assert set(e["props"]["subnetIds"]) == private_ids
        assert e["props"]["privateDnsEnabled"] is True
        (sg_id,) = e["props"]["securityGroupIds"]
        (rule,) = plan.by_id(sg_id)["props"]["ingress"]
        assert (rule["fromPort"], rule["toPort"], rule["protocol"], rule["cidrBlocks"]) == (443, 443, "tcp", ["10.20.0.0/16"])


FLOW_LOG = "aws:ec2/flowLog:FlowLog"
KMS_KEY = "aws:kms/key:Key"


def _statements(policy: str) -> list[dict]:
    return json.loads(policy)["Statement"]


def _services(statement: dict) -> set[str]:
    principal = statement.get("Principal")
    principal = principal.get("Service") or [] if isinstance(principal, dict) else []
    return {principal} if isinstance(principal, str) else set(principal)


def _admits_delivery_to(statement: dict, object_arn: str) -> bool:
    """Log delivery may use the key for objects of this bucket (a statement scoped to another
    bucket's S3 encryption context, like CloudFront's log bucket, does not count)."""
    if "delivery.logs.amazonaws.com" not in _services(statement):
        return False
    scoped = [p for test in (statement.get("Condition") or {}).values() for k, p in test.items() if k == "kms:EncryptionContext:aws:s3:arn"]
    return all(fnmatch.fnmatchcase(object_arn, p) for p in scoped)


def flow_log_violations(resources: list[dict], region: str = "ap-northeast-2") -> list[str]:
    """Issue 15 item 9: every VPC flow log has a 60 or 600 s aggregation interval and an
    encrypted destination whose customer-managed key admits the writer: CloudWatch Logs with an
    encryption-context condition covering the group, or log delivery for an SSE-KMS bucket that
    also grants log delivery its writes and expires objects."""
    keys = {r["id"]: r for r in resources if r["type"] == KMS_KEY}
    out = []

    def key_statements(arn: str | None, what: str) -> list[dict]:
        key = keys.get(str(arn).rsplit("/", 1)[-1]) if arn else None
        if key is None:
            out.append(f"{what}: not encrypted with a customer-managed key of the stage")
            return []
        return _statements(key["props"]["policy"])

    for flow in (r for r in resources if r["type"] == FLOW_LOG):
        props, name = flow["props"], flow["name"]
        if props.get("maxAggregationInterval") not in (60, 600):
            out.append(f"{name}: maxAggregationInterval {props.get('maxAggregationInterval')} is not 60 or 600")
        dest = props["logDestination"]
        if props["logDestinationType"] == "cloud-watch-logs":
            (group,) = [g for g in resources if g["type"] == LOG_GROUP and dest.endswith(f":log-group:{g['props']['name']}")]
            admits = [
                st
                for st in key_statements(group["props"].get("kmsKeyId"), f"log group {group['props']['name']}")
                if f"logs.{region}.amazonaws.com" in _services(st)
                for test, cond in (st.get("Condition") or {}).items()
                if test in ("ArnEquals", "ArnLike") and fnmatch.fnmatchcase(dest, cond.get("kms:EncryptionContext:aws:logs:arn", "\0"))
            ]
            if group["props"].get("kmsKeyId") and not admits:
                out.append(
                    f"log group {group['props']['name']}: its key does not admit CloudWatch Logs for this group's encryption context"
                )
        else:
            bucket = dest.split(":::", 1)[1].split("/", 1)[0]
            of_bucket = [r for r in resources if r["type"].startswith("aws:s3/") and r["props"].get("bucket") == bucket]
            sse = [
                rule["applyServerSideEncryptionByDefault"]
                for r in of_bucket
                if r["type"].startswith("aws:s3/bucketServerSideEncryptionConfiguration")
                for rule in r["props"]["rules"]
            ]
            kms = [d for d in sse if d["sseAlgorithm"] == "aws:kms"]
            statements = key_statements(kms[0].get("kmsMasterKeyId") if kms else None, f"bucket {bucket}")
            if kms and not any(_admits_delivery_to(st, f"arn:aws:s3:::{bucket}/AWSLogs/x") for st in statements):
                out.append(f"bucket {bucket}: its key does not admit log delivery (delivery.logs.amazonaws.com)")
            policies = [_statements(r["props"]["policy"]) for r in of_bucket if r["type"] == "aws:s3/bucketPolicy:BucketPolicy"]
            if not any("delivery.logs.amazonaws.com" in _services(st) and st["Action"] == "s3:PutObject" for p in policies for st in p):
                out.append(f"bucket {bucket}: no bucket policy lets log delivery write")
            expiry = [
                rule["expiration"]["days"]
                for r in of_bucket
                if r["type"].startswith("aws:s3/bucketLifecycleConfiguration")
                for rule in r["props"]["rules"]
                if rule.get("expiration")
            ]
            if not expiry:
                out.append(f"bucket {bucket}: flow logs never expire")
    return out


def test_flow_logs_are_encrypted_and_configured_on_every_stage(plan):
    net = plan["config"]["network"]
    (flow,) = plan.of_type(FLOW_LOG)
    assert flow["props"]["vpcId"] == _vpc(plan)["id"]
    assert flow["props"]["trafficType"] == net["flowLogsTrafficType"]
    assert flow["props"]["maxAggregationInterval"] == net["flowLogsAggregationSeconds"] == 600
    assert flow["props"]["logDestinationType"] == net["flowLogsDestination"]
    assert flow_log_violations(plan.resources) == []
    # The data key encrypts it either way.
    data_key = next(k for k in plan.of_type(KMS_KEY) if k["name"].endswith("-data-key"))
    if net["flowLogsDestination"] == "cloud-watch-logs":
        (group,) = [g for g in plan.of_type(LOG_GROUP) if g["name"].endswith("vpc-flow-logs")]
        assert group["props"]["retentionInDays"] == net["flowLogsRetentionDays"]
        assert group["props"]["kmsKeyId"].endswith(f"/{data_key['id']}")
        role = next(r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("vpc-flow-logs-role"))
        assert "vpc-flow-logs.amazonaws.com" in role["props"]["assumeRolePolicy"]
        assert "aws:SourceAccount" in role["props"]["assumeRolePolicy"]
        (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["props"]["role"] == role["id"]]
        assert '"Resource": "*"' not in policy["props"]["policy"]
        # Nothing in the flow log's inputs references the inline policy: without the explicit
        # dependency AWS may create the flow log before its role can write (delivery errors).
        assert policy["urn"] in flow["dependsOn"]
    else:
        assert "iamRoleArn" not in flow["props"]  # S3 delivery needs no role
        assert not [g for g in plan.of_type(LOG_GROUP) if g["name"].endswith("vpc-flow-logs")]
        (sse,) = [r for r in plan.resources if r["name"] == f"{plan['stack']}-vpc-flow-logs-sse"]
        assert sse["props"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].endswith(f"/{data_key['id']}")
        (lifecycle,) = [r for r in plan.resources if r["name"] == f"{plan['stack']}-vpc-flow-logs-lifecycle"]
        assert {"days": net["flowLogsRetentionDays"]} in [rule.get("expiration") for rule in lifecycle["props"]["rules"]]
    # Only where the key is asked to: log delivery of this account for an S3 destination.
    sids = {st.get("Sid") for st in _statements(data_key["props"]["policy"])}
    assert ("LogDeliveryOfThisAccount" in sids) == (net["flowLogsDestination"] == "s3")


def test_stages_choose_the_destination_by_volume(plans):
    assert {s: p["config"]["network"]["flowLogsDestination"] for s, p in plans.items()} == {
        "dev": "cloud-watch-logs",
        "nas-migration": "cloud-watch-logs",
        "production": "s3",
    }


def test_the_flow_log_invariant_catches_planted_defects(plans):
    # The seed's CloudWatch group without a key, at 60 s.
    dev = copy.deepcopy(plans["dev"].resources)
    for r in dev:
        if r["type"] == LOG_GROUP and r["name"] == "dev-vpc-flow-logs":
            r["props"].pop("kmsKeyId")
        if r["type"] == FLOW_LOG:
            r["props"]["maxAggregationInterval"] = 300
    assert flow_log_violations(dev) == [
        "dev-vpc-flow-log: maxAggregationInterval 300 is not 60 or 600",
        "log group /voip/dev/vpc-flow-logs: not encrypted with a customer-managed key of the stage",
    ]
    # A key that admits CloudWatch Logs only for another group's encryption context.
    dev = copy.deepcopy(plans["dev"].resources)
    for r in dev:
        if r["type"] == KMS_KEY and r["name"] == "dev-data-key":
            r["props"]["policy"] = r["props"]["policy"].replace("log-group:*", "log-group:/aws/other")
    assert flow_log_violations(dev) == [
        "log group /voip/dev/vpc-flow-logs: its key does not admit CloudWatch Logs for this group's encryption context"
    ]
    # S3: SSE-S3 instead of the data key, no delivery grants, no expiry.
    prod = copy.deepcopy(plans["production"].resources)
    bucket = "production-voip-flow-logs-123456789012"
    for r in prod:
        if r["name"] == "production-vpc-flow-logs-sse":
            r["props"]["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}
        if r["name"] == "production-vpc-flow-logs-policy":
            r["props"]["policy"] = json.dumps({"Statement": _statements(r["props"]["policy"])[:1]})
        if r["name"] == "production-vpc-flow-logs-lifecycle":
            r["props"]["rules"] = [rule for rule in r["props"]["rules"] if not rule.get("expiration")]
    assert flow_log_violations(prod) == [
        f"bucket {bucket}: not encrypted with a customer-managed key of the stage",
        f"bucket {bucket}: no bucket policy lets log delivery write",
        f"bucket {bucket}: flow logs never expire",
    ]
    prod = copy.deepcopy(plans["production"].resources)
    for r in prod:
        if r["type"] == KMS_KEY and r["name"] == "production-data-key":
            r["props"]["policy"] = json.dumps(
                {"Statement": [st for st in _statements(r["props"]["policy"]) if st.get("Sid") != "LogDeliveryOfThisAccount"]}
            )
    assert flow_log_violations(prod) == [f"bucket {bucket}: its key does not admit log delivery (delivery.logs.amazonaws.com)"]


def test_default_security_group_is_stripped(plan):
    (sg,) = plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert sg["props"]["vpcId"] == _vpc(plan)["id"]
    assert sg["props"].get("ingress", []) == [] and sg["props"].get("egress", []) == []


def test_stage_cidrs_never_overlap_each_other_or_the_nas_lan():
    nets = {s: ipaddress.ip_network(stack_plan(s)["config"]["network"]["cidr"]) for s in STACKS}
    for i, a in enumerate(STACKS):
        for b in STACKS[i + 1 :]:
            assert not nets[a].overlaps(nets[b]), (a, b)
    nas = ipaddress.ip_network(stack_plan("nas-migration")["config"]["migration"]["nasLanCidr"])
    assert not any(n.overlaps(nas) for n in nets.values())
    assert not any(n.overlaps(ipaddress.ip_network("192.168.0.0/16")) for n in nets.values())
