"""The NAS-to-AWS bridge (components/migration.py): VPN, DMS, MinIO copy path, weighted DNS."""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.config_loader import ConfigError, load_stack_config
from tests.harness import stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import DMS_INSTANCE, ROLE, ROUTE, ROUTE_TABLE, SG

STACK = "nas-migration"
NAS_LAN = "192.168.10.0/24"
NAS_PUBLIC_IP = "211.234.10.50"
NAS_HOST = "192.168.10.20"
CUTOVER = "app.migration.voip.example.com"

MIGRATION = "voip:migration:Migration"
VPN = "aws:ec2/vpnConnection:VpnConnection"
VGW = "aws:ec2/vpnGateway:VpnGateway"
CGW = "aws:ec2/customerGateway:CustomerGateway"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ENDPOINT = "aws:dms/endpoint:Endpoint"
TASK = "aws:dms/replicationTask:ReplicationTask"
RECORD = "aws:route53/record:Record"
BRIDGE_OUTPUTS = {"vpnConnectionId", "vpnTunnelIps", "dmsReplicationTaskArn", "minioMirrorSecretArn", "cutoverName"}
# Variant: the NAS speaks BGP, the account already has the DMS roles, the network has a Secrets Manager endpoint.
BGP_VARIANT = {
    "voip-infra:migration": {"nasBgpAsn": 65010, "dms": {"createServiceRoles": False}},
    "voip-infra:network": {"interfaceEndpoints": ["secretsmanager"]},
}


@pytest.fixture(scope="module")
def mig():
    return stack_plan(STACK)


def one(plan, typ, name):
    matches = [r for r in plan.of_type(typ) if r["name"] == name]
    assert len(matches) == 1, (typ, name, [r["name"] for r in plan.of_type(typ)])
    return matches[0]


def policy(resource, key="policy"):
    return json.loads(resource["props"][key])


# ------------------------------------------------------------------ where it exists


def test_only_nas_migration_has_the_bridge(plan):
    has = plan["stack"] == STACK
    assert bool(plan.of_type(MIGRATION)) == has
    assert bool(plan.of_type(VPN)) == has and bool(plan.of_type(DMS_INSTANCE)) == has
    assert BRIDGE_OUTPUTS <= set(plan["outputs"]) if has else not BRIDGE_OUTPUTS & set(plan["outputs"])
    aliases = plan.of_type("aws:cloudfront/distribution:Distribution")[0]["props"]["aliases"]
    assert (CUTOVER in aliases) == has


def test_a_disabled_bridge_builds_nothing_and_needs_no_password():
    plan = variant(STACK, {"voip-infra:migration": {"enabled": False}, "voip-infra:dmsSourcePassword": None})
    assert not plan.of_type(MIGRATION) and not plan.of_type(VPN) and not plan.of_type(DMS_INSTANCE)
    assert not BRIDGE_OUTPUTS & set(plan["outputs"])
    assert CUTOVER not in plan.of_type("aws:cloudfront/distribution:Distribution")[0]["props"]["aliases"]
    assert not [r for r in plan.of_type(RECORD) if r["props"]["name"] == CUTOVER]


def test_missing_source_password_is_a_clean_config_error():
    raw, _ = stack_raw(STACK)
    with pytest.raises(ConfigError) as err:
        load_stack_config(STACK, with_overrides(raw, {"voip-infra:dmsSourcePassword": None}))
    assert [line for line in err.value.lines if line.startswith("error: voip-infra:dmsSourcePassword: required")], err.value.lines


def test_cutover_host_may_not_take_an_alb_host():
    raw, _ = stack_raw(STACK)
    with pytest.raises(ConfigError) as err:
        load_stack_config(STACK, with_overrides(raw, {"voip-infra:migration": {"cutoverHost": "api"}}))
    assert any(line.startswith("error: voip-infra:migration.cutoverHost: 'api' is an ALB host") for line in err.value.lines)


# ------------------------------------------------------------------ VPN


def test_nas_lan_is_routed_to_the_vgw_from_private_and_isolated_tables_only(mig):
    vgw = mig.of_type(VGW)[0]
    assert vgw["props"]["vpcId"] == mig.of_type("aws:ec2/vpc:Vpc")[0]["id"]
    tables = {t["id"]: t["name"] for t in mig.of_type(ROUTE_TABLE)}
    to_nas = {r["props"]["routeTableId"] for r in mig.of_type(ROUTE) if r["props"].get("destinationCidrBlock") == NAS_LAN}
    assert all(r["props"]["gatewayId"] == vgw["id"] for r in mig.of_type(ROUTE) if r["props"].get("destinationCidrBlock") == NAS_LAN)
    assert sorted(tables[t] for t in to_nas) == sorted(n for n in tables.values() if "-private-" in n or "-isolated-" in n)
    isolated = next(t for t, n in tables.items() if "-isolated-" in n)
    assert not [
        r for r in mig.of_type(ROUTE) if r["props"]["routeTableId"] == isolated and r["props"]["destinationCidrBlock"] == "0.0.0.0/0"
    ]
    # static routes, no propagation: a BGP peer can never push a default route into the isolated tier
    assert not mig.of_type("aws:ec2/vpnGatewayRoutePropagation:VpnGatewayRoutePropagation")


def test_static_vpn_to_the_nas_public_ip(mig):
    cgw = mig.of_type(CGW)[0]["props"]
    assert cgw["ipAddress"] == NAS_PUBLIC_IP and cgw["bgpAsn"] == "65000" and cgw["type"] == "ipsec.1"
    vpn = mig.of_type(VPN)[0]
    assert vpn["props"]["staticRoutesOnly"] is True
    assert vpn["props"]["localIpv4NetworkCidr"] == NAS_LAN and vpn["props"]["remoteIpv4NetworkCidr"] == "10.30.0.0/16"
    routes = mig.of_type("aws:ec2/vpnConnectionRoute:VpnConnectionRoute")
    assert [(r["props"]["destinationCidrBlock"], r["props"]["vpnConnectionId"]) for r in routes] == [(NAS_LAN, vpn["id"])]


@pytest.mark.parametrize("tunnel", ["tunnel1", "tunnel2"])
def test_tunnels_use_modern_crypto_and_log_to_an_encrypted_group(mig, tunnel):
    p = mig.of_type(VPN)[0]["props"]
    assert p[f"{tunnel}IkeVersions"] == ["ikev2"]
    for phase in ("phase1", "phase2"):
        assert set(p[f"{tunnel}{phase.capitalize()}EncryptionAlgorithms"]) <= {"AES256", "AES256-GCM-16"}
        assert all(a.startswith("SHA2-") for a in p[f"{tunnel}{phase.capitalize()}IntegrityAlgorithms"])
        assert min(p[f"{tunnel}{phase.capitalize()}DhGroupNumbers"]) >= 14
    logs = p[f"{tunnel}LogOptions"]["cloudwatchLogOptions"]
    assert logs["logEnabled"] is True
    group = next(g for g in mig.of_type("aws:cloudwatch/logGroup:LogGroup") if g["name"].endswith("-vpn-logs"))
    assert logs["logGroupArn"].endswith(":log-group:" + group["props"]["name"])
    assert group["props"]["retentionInDays"] == 365 and group["props"]["kmsKeyId"] == mig["outputs"]["dataKeyArn"]


def test_psks_and_the_device_configuration_stay_secret(mig):
    props = mig.of_type(VPN)[0]["props"]
    # AWS generates the keys; the program never passes one in clear.
    assert props.get("tunnel1PresharedKey") in (None, "[secret]") and props.get("tunnel2PresharedKey") in (None, "[secret]")
    assert mig["outputs"]["vpnCustomerGatewayConfiguration"] == "[secret]"
    assert len(mig["outputs"]["vpnTunnelIps"]) == 2


def test_each_tunnel_down_alarms_to_the_stage_topic(mig):
    vpn = mig.of_type(VPN)[0]
    alarms = [a for a in mig.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a["props"].get("namespace") == "AWS/VPN"]
    assert sorted(a["props"]["dimensions"]["TunnelIpAddress"] for a in alarms) == sorted(mig["outputs"]["vpnTunnelIps"])
    for a in alarms:
        p = a["props"]
        assert p["metricName"] == "TunnelState" and p["dimensions"]["VpnId"] == vpn["id"]
        assert p["comparisonOperator"] == "LessThanThreshold" and p["threshold"] == 1
        assert p["alarmActions"] == [mig["outputs"]["alarmTopicArn"]]


# ------------------------------------------------------------------ DMS


def test_dms_security_group_admits_nothing_and_reaches_only_nas_rds_and_secrets(mig):
    dms_sg = one(mig, SG, "nas-migration-dms-sg")
    assert not dms_sg["props"].get("ingress")
    assert not [
        r for r in mig.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r["props"]["securityGroupId"] == dms_sg["id"]
    ]
    rds_sg = mig.by_id(mig.of_type("aws:rds/instance:Instance")[0]["props"]["vpcSecurityGroupIds"][0])
    endpoint_sg = one(mig, SG, "nas-migration-dms-secrets-endpoint-sg")
    egress = {
        (
            r["props"]["ipProtocol"],
            r["props"]["fromPort"],
            r["props"]["toPort"],
            r["props"].get("cidrIpv4") or mig.by_id(r["props"]["referencedSecurityGroupId"])["name"],
        )
        for r in mig.of_type(EGRESS)
        if r["props"]["securityGroupId"] == dms_sg["id"]
    }
    assert egress == {("tcp", 5432, 5432, f"{NAS_HOST}/32"), ("tcp", 5432, 5432, rds_sg["name"]), ("tcp", 443, 443, endpoint_sg["name"])}
    # ... and the database admits it on 5432 (beside the nodes)
    assert any(dms_sg["id"] in rule["securityGroups"] and rule["fromPort"] == 5432 for rule in rds_sg["props"]["ingress"])
    # the Secrets Manager endpoint (private DNS: every client of the VPC lands there) answers the VPC
    assert [(i["fromPort"], i["cidrBlocks"]) for i in endpoint_sg["props"]["ingress"]] == [(443, [mig["config"]["network"]["cidr"]])]
    assert not endpoint_sg["props"].get("egress")


def test_replication_instance_is_private_encrypted_multi_az_and_pinned(mig):
    inst = mig.of_type(DMS_INSTANCE)[0]
    p = inst["props"]
    assert p["publiclyAccessible"] is False and p["kmsKeyArn"] == mig["outputs"]["dataKeyArn"]
    # nas-migration protects data but runs the bridge Single-AZ on purpose (migration.dms.multiAz: false;
    # unset, it follows protectData)
    assert mig["config"]["migration"]["dms"]["multiAz"] is False and p["multiAz"] is False
    assert p["engineVersion"] == "3.6.1" and p["autoMinorVersionUpgrade"] is True
    assert p["replicationInstanceClass"] == "dms.t3.medium"
    group = next(g for g in mig.of_type("aws:dms/replicationSubnetGroup:ReplicationSubnetGroup"))
    assert group["props"]["replicationSubnetGroupId"] == p["replicationSubnetGroupId"]
    assert sorted(group["props"]["subnetIds"]) == sorted(mig["outputs"]["privateSubnetIds"])
    # the account-wide roles exist before DMS uses them
    roles = {r["props"].get("name"): r for r in mig.of_type(ROLE)}
    assert {"dms-vpc-role", "dms-cloudwatch-logs-role"} <= set(roles)
    attachments = [a for a in mig.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a["props"]["role"].startswith("dms-")]
    assert {a["urn"] for a in attachments} <= set(inst["dependsOn"])
    assert not inst["protect"]  # not data


def test_endpoints_read_credentials_from_secrets_never_arguments(mig):
    endpoints = {r["props"]["endpointType"]: r["props"] for r in mig.of_type(ENDPOINT)}
    assert set(endpoints) == {"source", "target"}
    role = one(mig, ROLE, "nas-migration-dms-secrets-access")
    for p in endpoints.values():
        assert not {"password", "username", "serverName"} & set(p)
        assert p["sslMode"] == "require" and p["engineName"] == "postgres"
        assert p["secretsManagerAccessRoleArn"] == f"arn:aws:iam::123456789012:role/{role['props']['name']}"
    source = one(mig, "aws:secretsmanager/secret:Secret", "nas-migration-dms-source-secret")
    assert endpoints["source"]["secretsManagerArn"].startswith(
        f"arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:{source['props']['name']}"
    )
    assert endpoints["target"]["secretsManagerArn"] == mig["outputs"]["dbMasterSecretArn"]
    assert endpoints["source"]["postgresSettings"]["captureDdls"] is False  # a read user on the NAS
    assert "session_replication_role = replica" in endpoints["target"]["postgresSettings"]["afterConnectScript"]
    # the access role reads exactly these two secrets and decrypts with the data key only
    stmts = {s["Sid"]: s for s in policy(one(mig, "aws:iam/rolePolicy:RolePolicy", "nas-migration-dms-secrets-access-policy"))["Statement"]}
    assert sorted(stmts["ReadEndpointSecrets"]["Resource"]) == sorted(e["secretsManagerArn"] for e in endpoints.values())
    assert stmts["ReadEndpointSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert stmts["DecryptThem"]["Action"] == "kms:Decrypt" and stmts["DecryptThem"]["Resource"] == mig["outputs"]["dataKeyArn"]
    trust = policy(role, "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "dms.ap-northeast-2.amazonaws.com"}


def test_source_secret_is_write_only_encrypted_and_protected(mig):
    secret = one(mig, "aws:secretsmanager/secret:Secret", "nas-migration-dms-source-secret")
    assert secret["protect"] and secret["props"]["kmsKeyId"] == mig["outputs"]["dataKeyArn"]
    version = one(mig, "aws:secretsmanager/secretVersion:SecretVersion", "nas-migration-dms-source-secret-value")
    assert version["props"]["secretStringWo"] == "[secret]" and "secretString" not in version["props"]
    assert version["props"]["secretStringWoVersion"] == 1
    assert "offline-placeholder" not in json.dumps(mig)


def test_task_is_full_load_and_cdc_validated_logged_and_not_started(mig):
    task = mig.of_type(TASK)[0]["props"]
    assert task["migrationType"] == "full-load-and-cdc" and task["startReplicationTask"] is False
    rules = json.loads(task["tableMappings"])["rules"]
    assert [(r["rule-action"], r["object-locator"]) for r in rules] == [("include", {"schema-name": "public", "table-name": "%"})]
    settings = json.loads(task["replicationTaskSettings"])
    assert settings["ValidationSettings"]["EnableValidation"] is True and settings["Logging"]["EnableLogging"] is True
    endpoints = {r["props"]["endpointType"]: r for r in mig.of_type(ENDPOINT)}
    assert task["sourceEndpointArn"].endswith(endpoints["source"]["id"].upper())
    assert task["targetEndpointArn"].endswith(endpoints["target"]["id"].upper())
    assert mig["outputs"]["dmsReplicationTaskArn"].endswith(mig.of_type(TASK)[0]["id"].upper())
    subs = {s["props"]["sourceType"]: s["props"] for s in mig.of_type("aws:dms/eventSubscription:EventSubscription")}
    assert set(subs) == {"replication-instance", "replication-task"}
    assert all("failure" in s["eventCategories"] and s["snsTopicArn"] == mig["outputs"]["alarmTopicArn"] for s in subs.values())


# ------------------------------------------------------------------ MinIO -> S3


def test_minio_mirror_user_may_only_list_and_put_into_the_file_bucket_from_the_nas(mig):
    user = one(mig, "aws:iam/user:User", "nas-migration-minio-mirror")
    assert user["props"]["name"] == "nas-migration-minio-mirror"
    bucket = mig["outputs"]["filesBucketArn"]
    user_policies = mig.of_type("aws:iam/userPolicy:UserPolicy")
    assert len(user_policies) == 1 and user_policies[0]["props"]["user"] == user["props"]["name"]
    assert not [a for a in mig.of_type("aws:iam/userPolicyAttachment:UserPolicyAttachment")]
    stmts = policy(user_policies[0])["Statement"]
    grants = {(s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]), json.dumps(s["Resource"])) for s in stmts}
    assert grants == {
        ("s3:ListBucket", json.dumps(bucket)),
        ("s3:PutObject", json.dumps(f"{bucket}/files/*")),  # under the prefix CloudFront serves
        (("kms:GenerateDataKey", "kms:Decrypt"), json.dumps(mig["outputs"]["dataKeyArn"])),
    }
    s3 = [s for s in stmts if isinstance(s["Action"], str) and s["Action"].startswith("s3:")]
    for s in s3:  # the S3 calls come from the NAS
        assert s["Effect"] == "Allow" and s["Condition"] == {"IpAddress": {"aws:SourceIp": [f"{NAS_PUBLIC_IP}/32"]}}
    # KMS is called by S3 from S3's addresses: through S3 and for this bucket only, never by source IP.
    (kms,) = [s for s in stmts if s not in s3]
    assert kms["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.ap-northeast-2.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/*"]},
    }
    secret = one(mig, "aws:secretsmanager/secret:Secret", "nas-migration-minio-mirror-secret")
    assert secret["protect"] and mig["outputs"]["minioMirrorSecretArn"].startswith(
        secret["props"]["name"].join(["arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:", ""])
    )
    value = one(mig, "aws:secretsmanager/secretVersion:SecretVersion", "nas-migration-minio-mirror-secret-value")
    assert value["props"]["secretString"] == "[secret]"


# ------------------------------------------------------------------ weighted DNS


def test_cutover_name_is_two_weighted_records_nas_health_checked_aws_to_cloudfront(mig):
    records = {r["props"].get("setIdentifier"): r["props"] for r in mig.of_type(RECORD) if r["props"]["name"] == CUTOVER}
    assert set(records) == {"nas", "aws"}
    zone = mig["outputs"]["zoneId"]
    assert all(r["type"] == "A" and r["zoneId"] == zone for r in records.values())
    nas, aws_ = records["nas"], records["aws"]
    assert nas["records"] == [NAS_PUBLIC_IP] and nas["weightedRoutingPolicies"] == [{"weight": 90}]
    assert aws_["weightedRoutingPolicies"] == [{"weight": 10}]
    assert aws_["aliases"][0]["name"] == mig["outputs"]["distributionDomainName"]
    check = mig.by_id(nas["healthCheckId"])["props"]
    assert check["type"] == "HTTPS" and check["ipAddress"] == NAS_PUBLIC_IP and check["fqdn"] == CUTOVER and check["enableSni"] is True
    assert mig["outputs"]["cutoverName"] == CUTOVER and mig["outputs"]["cutoverWeights"] == {"nas": 90, "aws": 10}


def test_cloudfront_and_the_alb_answer_the_cutover_name(mig):
    assert CUTOVER in mig.of_type("aws:cloudfront/distribution:Distribution")[0]["props"]["aliases"]
    # the CDN does not write its own (unweighted) record for the name
    assert not [r for r in mig.of_type(RECORD) if r["props"]["name"] == CUTOVER and not r["props"].get("setIdentifier")]
    # /api/* and /ws* of the cutover name reach the ALB's apex host rule
    hosts = [
        c["hostHeader"]["values"]
        for r in mig.of_type("aws:lb/listenerRule:ListenerRule")
        for c in r["props"]["conditions"]
        if "hostHeader" in c
    ]
    assert any(CUTOVER in h for h in hosts)
    # the wildcard certificate covers it
    certs = [c["props"] for c in mig.of_type("aws:acm/certificate:Certificate")]
    assert all("*.migration.voip.example.com" in [c["domainName"], *c.get("subjectAlternativeNames", [])] for c in certs)


# ------------------------------------------------------------------ the BGP variant


def test_bgp_nas_with_existing_roles_and_network_endpoint():
    plan = variant(STACK, BGP_VARIANT)
    assert plan.of_type(CGW)[0]["props"]["bgpAsn"] == "65010"
    assert plan.of_type(VPN)[0]["props"]["staticRoutesOnly"] is False
    assert not plan.of_type("aws:ec2/vpnConnectionRoute:VpnConnectionRoute")
    # still only the LAN is routed to the VGW (no propagation of what BGP advertises)
    assert {r["props"]["destinationCidrBlock"] for r in plan.of_type(ROUTE) if r["props"].get("gatewayId", "").startswith("vgw-")} == {
        NAS_LAN
    }
    assert not {"dms-vpc-role", "dms-cloudwatch-logs-role"} & {r["props"].get("name") for r in plan.of_type(ROLE)}
    # DMS uses the network's Secrets Manager endpoint instead of its own
    assert not [e for e in plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if "dms" in e["name"]]
    dms_sg = one(plan, SG, "nas-migration-dms-sg")
    https = [r["props"] for r in plan.of_type(EGRESS) if r["props"]["securityGroupId"] == dms_sg["id"] and r["props"]["fromPort"] == 443]
    assert [plan.by_id(r["referencedSecurityGroupId"])["name"] for r in https] == ["nas-migration-endpoints-sg"]


def test_nas_lan_stays_outside_every_stage_cidr(plans):
    lan = ipaddress.ip_network(NAS_LAN)
    for plan in plans.values():
        for vpc in plan.of_type("aws:ec2/vpc:Vpc"):
            assert not lan.overlaps(ipaddress.ip_network(vpc["props"]["cidrBlock"]))
