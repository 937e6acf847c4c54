"""TURN nodes under Pulumi's mock runtime: the real program, per stack."""

from __future__ import annotations

import base64
import ipaddress
import json
from collections import Counter

import pytest

from components.turn.turn_config import coturn_range
from tests.resource_types import ALARM, EIP, SG
from tools.mocks import _COMPUTED

INSTANCE = "aws:ec2/instance:Instance"


def turn_cfg(plan):
    return plan["config"]["turn"]


def turn_children(plan, typ):
    comp = next(r for r in plan.resources if r["type"] == "voip:turn:Turn")
    return [r for r in plan.descendants(comp["urn"]) if r["type"] == typ]


def launch_template(plan):
    (lt,) = turn_children(plan, "aws:ec2/launchTemplate:LaunchTemplate")
    return lt


def user_data(plan) -> str:
    return base64.b64decode(launch_template(plan)["props"]["userData"]).decode()


def turn_sg(plan):
    (sg,) = turn_children(plan, SG)
    return sg


def test_node_count_and_az_spread(plan):
    nodes = turn_children(plan, INSTANCE)
    count = turn_cfg(plan)["nodeCount"]
    assert len(nodes) == count
    azs = Counter(plan.by_id(n["props"]["subnetId"])["props"]["availabilityZone"] for n in nodes)
    stage_azs = plan["config"]["network"]["azs"]
    # Round-robin: as many AZs as possible, never two more nodes in one AZ than another.
    assert len(azs) == min(count, len(stage_azs))
    assert max(azs.values()) - min(azs.values()) <= 1
    for n in nodes:
        subnet = plan.by_id(n["props"]["subnetId"])
        assert subnet["props"]["tags"]["tier"] == "public", "TURN nodes live in public subnets"
    if plan["stack"] == "production":
        assert count >= 2 and len(azs) >= 2


def test_each_node_has_its_own_elastic_ip(plan):
    nodes = {n["id"] for n in turn_children(plan, INSTANCE)}
    eips = {e["id"]: e for e in turn_children(plan, EIP)}
    assocs = turn_children(plan, "aws:ec2/eipAssociation:EipAssociation")
    assert {a["props"]["instanceId"] for a in assocs} == nodes
    assert sorted(a["props"]["allocationId"] for a in assocs) == sorted(eips)
    protect = plan["config"]["protectData"]
    assert all(e["protect"] is protect and e["props"]["domain"] == "vpc" for e in eips.values())
    assert len(plan["outputs"]["turnPublicIps"]) == len(nodes)


def _rules(rules):
    out = set()
    for r in rules:
        sources = tuple(r.get("cidrBlocks", [])) + tuple(r.get("securityGroups", []))
        out.add((r["protocol"], r["fromPort"], r["toPort"], sources))
    return out


def test_security_group_rules_exactly(plan):
    cfg, vpc_cidr = turn_cfg(plan), plan["config"]["network"]["cidr"]
    sg = turn_sg(plan)
    port, relay, metrics = cfg["listeningPort"], cfg["relayPorts"], cfg["metricsPort"]
    # TURNS terminates on the NLB, which forwards to TCP 3478: admitted by its SG too (turn.tlsEntry nlb).
    turns = [("tcp", port, port, (plan["outputs"]["nlbSecurityGroupId"],))] if cfg.get("tlsEntry", "nlb") == "nlb" else []
    assert _rules(sg["props"]["ingress"]) == {
        ("udp", port, port, ("0.0.0.0/0",)),
        ("tcp", port, port, ("0.0.0.0/0",)),
        ("udp", relay["min"], relay["max"], ("0.0.0.0/0",)),
        ("tcp", metrics, metrics, (vpc_cidr,)),
        *turns,
    }
    assert _rules(sg["props"]["egress"]) == {("udp", 0, 65535, ("0.0.0.0/0",)), ("tcp", 443, 443, ("0.0.0.0/0",))}
    for rule in sg["props"]["ingress"]:
        assert not rule["fromPort"] <= 22 <= rule["toPort"], "no SSH: Session Manager instead"
        assert rule["protocol"] != "-1"
        if rule["protocol"] == "tcp":
            assert not rule["fromPort"] <= relay["min"] <= rule["toPort"], "the relay range is UDP only"
    # The template puts the nodes in this group and only this one.
    assert launch_template(plan)["props"]["vpcSecurityGroupIds"] == [sg["id"]]
    assert plan.by_id(sg["props"]["vpcId"])["type"] == "aws:ec2/vpc:Vpc"


def test_imdsv2_encrypted_root_no_key_pair(plan):
    lt = launch_template(plan)
    props = lt["props"]
    assert props["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
    assert props["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    if plan["config"]["protectData"]:  # dev relays a few test calls on a t4g
        assert props["instanceType"].split(".")[0].endswith("gn"), "a Graviton network-optimised type"
    assert props["imageId"].startswith("ami-")
    assert "keyName" not in props
    for node in turn_children(plan, INSTANCE):
        assert node["props"]["metadataOptions"]["httpTokens"] == "required"
        assert node["props"]["launchTemplate"]["id"] == lt["id"]
        assert "keyName" not in node["props"] and "associatePublicIpAddress" not in node["props"]


def _mock_secret(stage: str) -> str:
    # tools/mocks.py makes RandomPassword.result deterministic: this is the value the program saw.
    result = _COMPUTED["random:index/randomPassword:RandomPassword"](None, f"{stage}-turn-shared-secret", "", {"length": 48})["result"]
    assert len(result) == 48
    return result


def test_user_data_holds_no_secret_and_fetches_it(plan):
    text = user_data(plan)
    secret = _mock_secret(plan["stack"])
    assert secret not in text and secret[:16] not in text
    assert "static-auth-secret=@TURN_STATIC_AUTH_SECRET@" in text
    assert '--secret-id "$SECRET_ARN"' in text and f"SECRET_ARN={plan['outputs']['turnSecretArn']}" in text
    # The secret reaches Secrets Manager only as a secret value.
    (version,) = turn_children(plan, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version["props"]["secretString"] == "[secret]"
    assert all(secret not in json.dumps(r["props"]) for r in plan.resources)


# ------------------------------------------------------------------ max-bps unit (issue 15 item 13)


def max_bps_violations(conf_text: str, bits_per_second: int) -> list[str]:
    """coturn's `max-bps` counts BYTES per second per session: the rendered value times 8
    must be the configured limit in bits per second (seed 000: 1 Mbps per session)."""
    values = [int(line.split("=", 1)[1]) for line in conf_text.splitlines() if line.startswith("max-bps=")]
    if len(values) != 1:
        return [f"expected one max-bps line, found {len(values)}"]
    if values[0] * 8 != bits_per_second:
        return [f"max-bps={values[0]} lets a session use {values[0] * 8} bit/s, the config says {bits_per_second} bit/s"]
    return []


def test_max_bps_is_bytes_of_the_configured_bits_on_every_stage(plan):
    cfg = turn_cfg(plan)
    assert cfg["maxBitsPerSecond"] == 1_000_000, "seed 000: 1 Mbps per session"
    text = user_data(plan)
    assert max_bps_violations(text, cfg["maxBitsPerSecond"]) == []
    assert "max-bps=125000" in text.splitlines()
    # The planted defect: the seed's `max-bps=1000000 # 1Mbps per user` (8 Mbps in coturn's unit).
    planted = text.replace("max-bps=125000", "max-bps=1000000")
    assert max_bps_violations(planted, cfg["maxBitsPerSecond"]) == [
        "max-bps=1000000 lets a session use 8000000 bit/s, the config says 1000000 bit/s"
    ]


def test_turnserver_conf_in_user_data(plan):
    text = user_data(plan)
    cfg = turn_cfg(plan)
    vpc = plan["config"]["network"]["cidr"]
    realm = cfg["realm"] or f"turn.{plan['config']['edge']['domain']}"
    for line in (
        f"listening-port={cfg['listeningPort']}",
        f"tls-listening-port={cfg['tlsPort']}",
        f"min-port={cfg['relayPorts']['min']}",
        f"max-port={cfg['relayPorts']['max']}",
        "external-ip=@PUBLIC_IPV4@/@PRIVATE_IPV4@",
        "use-auth-secret",
        f"realm={realm}",
        "fingerprint",
        "no-cli",
        "no-multicast-peers",
        "no-tlsv1",
        "no-tlsv1_1",
        f"max-bps={cfg['maxBitsPerSecond'] // 8}",
        f"total-quota={cfg['totalQuota']}",
        f"user-quota={cfg['userQuota']}",
        f"denied-peer-ip={coturn_range(vpc)}",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=127.0.0.0-127.255.255.255",
        "prometheus",
        f"prometheus-port={cfg['metricsPort']}",
    ):
        assert line in text.splitlines(), f"turnserver.conf lacks {line!r}"
    assert "allow-loopback-peers" not in text
    assert "net.core.rmem_max" in text, "socket-buffer sysctls"
    assert ipaddress.ip_network(vpc).overlaps(ipaddress.ip_network("10.0.0.0/8"))


def test_role_reads_exactly_one_secret_and_uses_session_manager(plan):
    (role,) = turn_children(plan, "aws:iam/role:Role")
    trust = json.loads(role["props"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    (attach,) = turn_children(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attach["props"]["policyArn"] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    (inline,) = turn_children(plan, "aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(inline["props"]["policy"])["Statement"]

    def actions(s):
        return [s["Action"]] if isinstance(s["Action"], str) else s["Action"]

    secret_statements = [s for s in statements if any(a.startswith("secretsmanager:") for a in actions(s))]
    assert len(secret_statements) == 1
    assert secret_statements[0]["Action"] == "secretsmanager:GetSecretValue"
    assert secret_statements[0]["Resource"] == plan["outputs"]["turnSecretArn"]
    assert all("*" not in json.dumps(s["Resource"]).replace(":log-stream:*", "") for s in statements)
    # The boot script (set -e) reads the secret's VALUE with this policy at first boot; the launch
    # template only references the secret ARN, so each node must wait for the value and the policy.
    (value,) = turn_children(plan, "aws:secretsmanager/secretVersion:SecretVersion")
    for node in turn_children(plan, INSTANCE):
        assert {value["urn"], inline["urn"], attach["urn"]} <= set(node["dependsOn"]), node["name"]


def test_alarms_bandwidth_and_recovery(plan):
    cfg = turn_cfg(plan)
    topic = plan["outputs"]["alarmTopicArn"]
    region = plan["config"]["aws:region"]
    alarms = turn_children(plan, ALARM)
    for node in turn_children(plan, INSTANCE):
        mine = {a["props"]["metricName"]: a["props"] for a in alarms if a["props"]["dimensions"] == {"InstanceId": node["id"]}}
        net = mine["NetworkOut"]
        per_minute = cfg["nodeBandwidthMbps"] * 1_000_000 / 8 * 60
        assert net["period"] == 60 and net["statistic"] == "Sum"
        assert net["threshold"] == pytest.approx(per_minute * cfg["bandwidthAlarmPercent"] / 100)
        assert topic in net["alarmActions"]
        system = mine["StatusCheckFailed_System"]
        assert f"arn:aws:automate:{region}:ec2:recover" in system["alarmActions"] and topic in system["alarmActions"]
    lt = launch_template(plan)
    assert lt["props"]["monitoring"] == {"enabled": True}, "1-minute metrics for the 60 s alarm period"


def test_ice_servers_output(plan):
    (server,) = plan["outputs"]["turnIceServers"]
    cfg, domain = turn_cfg(plan), plan["config"]["edge"]["domain"]
    port = cfg["listeningPort"]
    # turn.<domain> (multivalue records on the nodes) for UDP and TCP; TURNS through the NLB's
    # name, only where there is a TLS entry (turn.tlsEntry nlb; dev has none).
    turns = {f"turns:turns.{domain}:{cfg['tlsPort']}?transport=tcp"} if cfg.get("tlsEntry", "nlb") == "nlb" else set()
    assert set(server["urls"]) == {
        f"turn:turn.{domain}:{port}?transport=udp",
        f"turn:turn.{domain}:{port}?transport=tcp",
        *turns,
    }
    assert len(plan["outputs"]["turnPublicIps"]) == cfg["nodeCount"]
    assert plan["outputs"]["turnSecretArn"].startswith("arn:aws:secretsmanager:")


@pytest.fixture(scope="module")
def wired():
    """Turn built directly with the inputs the edge provides (NLB SG and target
    group, Route 53 zone), under the same mocks as the plans."""
    from components.config import TurnConfig
    from components.turn.turn import Turn, TurnArgs
    from tests.harness import component_plan, unit_ctx

    def build():
        turn = Turn(
            "wired-turn",
            TurnArgs(
                ctx=unit_ctx("wired", protect=False, alarm_topic_arn="arn:aws:sns:ap-northeast-2:123456789012:alarms"),
                vpc_id="vpc-0123",
                vpc_cidr="10.50.0.0/16",
                subnet_ids=["subnet-a", "subnet-b"],
                azs=["ap-northeast-2a", "ap-northeast-2b"],
                config=TurnConfig.model_validate({"nodeCount": 2}),
                realm="turn.example.com",
                nlb_security_group_id="sg-nlb",
                nlb_target_group_arn="arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/turn/1",
                zone_id="Z0123456789ABC",
                domain="example.com",
            ),
        )
        return {"uris": turn.turn_uris}

    plan, values = component_plan(build, stack="wired")
    return plan, values["uris"][0]


def test_wired_nlb_path_and_dns(wired):
    plan, uris = wired
    (sg,) = plan.of_type(SG)
    nlb_rules = [r for r in sg["props"]["ingress"] if r.get("securityGroups")]
    assert nlb_rules == [
        {"protocol": "tcp", "fromPort": 3478, "toPort": 3478, "securityGroups": ["sg-nlb"], "description": nlb_rules[0]["description"]}
    ]
    nodes = {n["id"] for n in plan.of_type(INSTANCE)}
    attachments = plan.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")
    assert {a["props"]["targetId"] for a in attachments} == nodes
    assert all(a["props"]["port"] == 3478 for a in attachments), "TLS ends on the NLB, which forwards to TCP 3478"
    records = plan.of_type("aws:route53/record:Record")
    checks = {c["id"]: c for c in plan.of_type("aws:route53/healthCheck:HealthCheck")}
    assert len(records) == len(nodes) == len(checks)
    for rec in records:
        p = rec["props"]
        assert p["name"] == "turn.example.com" and p["multivalueAnswerRoutingPolicy"] is True
        check = checks[p["healthCheckId"]]["props"]
        assert check["type"] == "TCP" and check["port"] == 3478 and [check["ipAddress"]] == p["records"]
    assert uris == [
        "turn:turn.example.com:3478?transport=udp",
        "turn:turn.example.com:3478?transport=tcp",
        "turns:turns.example.com:5349?transport=tcp",
    ]
