"""RDS PostgreSQL: placement, access, encryption, secrets, protection, HA, upgrades."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pulumi
import pytest

from components.config import DatabaseConfig
from components.config_loader import ConfigError, load_stack_config
from tests.harness import Plan, component_plan, stack_raw, unit_ctx, unit_placement, with_overrides
from tests.resource_types import RDS, SG

# --------------------------------------------------------------------- helpers shared by the data-tier tests


def data_key(plan: Plan) -> dict[str, Any]:
    (key,) = [k for k in plan.of_type("aws:kms/key:Key") if k["name"].endswith("-data-key")]
    return key


def node_security_group_id(plan: Plan) -> str:
    """The EKS nodes' security group: the only source the data stores admit."""
    return plan["outputs"]["nodeSecurityGroupId"]


def data_key_arn(plan: Plan) -> str:
    key = data_key(plan)
    return f"arn:aws:kms:ap-northeast-2:123456789012:key/{key['id']}"


def assert_isolated(plan: Plan, subnet_ids: list[str]) -> None:
    """Each subnet is an isolated-tier subnet whose route table reaches no internet or NAT gateway."""
    assert subnet_ids, "no subnets"
    igws = {r["id"] for r in plan.of_type("aws:ec2/internetGateway:InternetGateway")}
    nats = {r["id"] for r in plan.of_type("aws:ec2/natGateway:NatGateway")}
    vgws = {r["id"] for r in plan.of_type("aws:ec2/vpnGateway:VpnGateway")}
    mig = (plan.get("config") or {}).get("migration")
    nas_lan = mig["nasLanCidr"] if mig and mig["enabled"] else None
    isolated_azs = {plan.by_id(s)["props"]["availabilityZone"] for s in subnet_ids}
    assert isolated_azs == set(plan["config"]["network"]["azs"]), "one subnet in every AZ of the stage"
    for sid in subnet_ids:
        subnet = plan.by_id(sid)
        assert subnet["props"]["tags"]["tier"] == "isolated", subnet["name"]
        assocs = [r for r in plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation") if r["props"].get("subnetId") == sid]
        assert len(assocs) == 1, f"{subnet['name']} must have exactly one explicit route table"
        rt = plan.by_id(assocs[0]["props"]["routeTableId"])
        assert not rt["props"].get("routes"), f"{rt['name']} has inline routes"
        for route in plan.of_type("aws:ec2/route:Route"):
            if route["props"]["routeTableId"] == rt["id"]:
                if nas_lan and route["props"].get("destinationCidrBlock") == nas_lan and route["props"].get("gatewayId") in vgws:
                    continue  # the NAS bridge: only the NAS LAN, over the VPN
                assert route["props"].get("gatewayId") not in igws, f"{route['name']} reaches the internet"
                assert route["props"].get("natGatewayId") not in nats, f"{route['name']} reaches a NAT gateway"
                assert "destinationCidrBlock" not in route["props"], f"{route['name']} routes {route['props']}"


def assert_sg_admits_only_the_nodes(sg: dict[str, Any], vpc_id: str, port: int, node_sg: str) -> None:
    """Exactly one ingress rule (the port, from the EKS node SG), no egress, no CIDR anywhere."""
    assert sg["props"]["vpcId"] == vpc_id
    assert_sg_admits_exactly(sg, port, [node_sg])
    assert sg["props"].get("egress", []) == []
    assert "0.0.0.0/0" not in json.dumps(sg["props"])


def assert_sg_admits_exactly(sg: dict[str, Any], port: int, sources: list[str]) -> None:
    (rule,) = sg["props"]["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", port, port)
    assert sorted(rule["securityGroups"]) == sorted(sources)
    assert not rule.get("cidrBlocks") and not rule.get("ipv6CidrBlocks") and not rule.get("prefixListIds")
    assert not rule.get("self")
    assert sg["props"].get("egress", []) == []


def vpc_id(plan: Plan) -> str:
    (vpc,) = plan.of_type("aws:ec2/vpc:Vpc")
    return vpc["id"]


# ---------------------------------------------------------------------------------------- database


def primary(plan: Plan) -> dict[str, Any]:
    prims = [r for r in plan.of_type(RDS) if not r["props"].get("replicateSourceDb")]
    assert len(prims) == 1
    return prims[0]


def replicas(plan: Plan) -> list[dict[str, Any]]:
    # Registration order is not deterministic: order by identifier (replica-1, -2, ...).
    return sorted((r for r in plan.of_type(RDS) if r["props"].get("replicateSourceDb")), key=lambda r: r["props"]["identifier"])


def test_primary_is_encrypted_private_and_its_password_write_only_from_a_secret(plan):
    cfg = plan["config"]["database"]
    db = primary(plan)
    p = db["props"]
    key = data_key_arn(plan)
    assert p["engine"] == "postgres"
    assert p["storageEncrypted"] is True and p["kmsKeyId"] == key
    assert p["publiclyAccessible"] is False
    # RDS refuses replicas of an instance whose password it manages: write-only, from a secret.
    assert "manageMasterUserPassword" not in p and "password" not in p
    assert p["passwordWo"] == "[secret]" and p["passwordWoVersion"] == cfg.get("masterPasswordVersion", 1)
    assert p["iamDatabaseAuthenticationEnabled"] is True
    assert p["performanceInsightsEnabled"] is True and p["performanceInsightsKmsKeyId"] == key
    assert p["performanceInsightsRetentionPeriod"] == cfg["performanceInsightsRetentionDays"]
    assert p["storageType"] == "gp3"
    assert p["allocatedStorage"] == cfg["allocatedStorageGib"]
    assert p["maxAllocatedStorage"] == cfg["maxAllocatedStorageGib"] > 0
    assert p["backupRetentionPeriod"] == cfg["backupRetentionDays"] >= 1
    assert p["backupWindow"] == cfg["backupWindow"] and p["maintenanceWindow"] == cfg["maintenanceWindow"]
    assert p["copyTagsToSnapshot"] is True
    assert set(p["enabledCloudwatchLogsExports"]) == {"postgresql", "upgrade"}
    assert p["dbName"] == cfg["databaseName"] and p["username"] == cfg["masterUsername"]


def test_enhanced_monitoring_role_is_the_rds_monitoring_role(plan):
    p = primary(plan)["props"]
    assert p["monitoringInterval"] == plan["config"]["database"]["monitoringIntervalSeconds"] > 0
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("-rds-monitoring")]
    assert p["monitoringRoleArn"] == f"arn:aws:iam::123456789012:role/{role['props']['name']}"
    trust = json.loads(role["props"]["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "monitoring.rds.amazonaws.com"}]
    (attach,) = [r for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if r["parent"] == role["urn"]]
    assert attach["props"]["policyArn"].endswith("service-role/AmazonRDSEnhancedMonitoringRole")
    # RDS rejects a role without the policy (ENHANCED_MONITORING): every instance waits for it.
    instances = [primary(plan), *[r for r in plan.of_type("aws:rds/instance:Instance") if r["props"].get("replicateSourceDb")]]
    for db in instances:
        assert attach["urn"] in db["dependsOn"], db["name"]


def test_log_groups_exist_before_export_with_retention_and_key(plan):
    db = primary(plan)
    names = {f"/aws/rds/instance/{db['props']['identifier']}/{k}" for k in db["props"]["enabledCloudwatchLogsExports"]}
    groups = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g["props"]["name"] in names]
    assert len(groups) == len(names)
    for g in groups:
        assert g["urn"] in db["dependsOn"]
        assert g["props"]["retentionInDays"] == plan["config"]["database"]["logRetentionDays"]
        assert g["props"]["kmsKeyId"] == data_key_arn(plan)


def test_minor_versions_follow_aws_without_drift(plan):
    p = primary(plan)["props"]
    # A major-only prefix never differs from the running minor: no diff, no replacement.
    assert re.fullmatch(r"1[6-9]", p["engineVersion"]), p["engineVersion"]
    assert p["autoMinorVersionUpgrade"] is True
    assert all(r["props"]["autoMinorVersionUpgrade"] is True for r in replicas(plan))


def test_data_protection_per_stage(plan):
    db = primary(plan)
    p = db["props"]
    stage = plan["stack"]
    if plan["config"]["protectData"]:
        assert db["protect"] is True
        assert p["deletionProtection"] is True
        assert p["skipFinalSnapshot"] is False
        assert p["finalSnapshotIdentifier"] == f"{stage}-postgres-final"
        assert p["deleteAutomatedBackups"] is False
        assert p["multiAz"] is True
    else:
        assert stage == "dev"
        assert db["protect"] is False and p["deletionProtection"] is False
        assert p["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in p
        assert p["multiAz"] is False


def test_production_is_multi_az_with_replicas_spread_over_azs(plans):
    plan = plans["production"]
    p = primary(plan)["props"]
    assert p["multiAz"] is True
    assert p["applyImmediately"] is False
    assert p["backupRetentionPeriod"] >= 7
    reps = replicas(plan)
    # >= 1 reader today (the goal of issue 13); 3 at the seed-001 target (tools/targets/production.yaml).
    assert len(reps) == plan["config"]["database"]["readReplicas"] >= 1
    assert len({r["props"]["availabilityZone"] for r in reps}) == min(len(reps), len(plan["config"]["network"]["azs"]))
    for r in reps:
        rp = r["props"]
        assert rp["replicateSourceDb"] == p["identifier"]
        assert rp["storageEncrypted"] is True and rp["kmsKeyId"] == p["kmsKeyId"]
        assert rp["publiclyAccessible"] is False
        assert rp["vpcSecurityGroupIds"] == p["vpcSecurityGroupIds"]
        assert rp["dbSubnetGroupName"] == p["dbSubnetGroupName"]
        assert rp["parameterGroupName"] == p["parameterGroupName"]
        assert not any("password" in k.lower() or k in ("username", "dbName") for k in rp)
        # RDS refuses a final snapshot of a replica; the data lives on the primary.
        assert rp["skipFinalSnapshot"] is True
    assert plan["outputs"]["dbReaderEndpoints"] == [
        f"{r['props']['identifier']}.abcdefghijkl.ap-northeast-2.rds.amazonaws.com:5432" for r in reps
    ]


def test_dev_is_single_az_and_disposable(plans):
    p = primary(plans["dev"])["props"]
    assert p["instanceClass"].startswith("db.t4g.")
    assert replicas(plans["dev"]) == []
    assert p["applyImmediately"] is True


def test_database_sits_in_isolated_subnets_only(plan):
    (group,) = plan.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert all(r["props"]["dbSubnetGroupName"] == group["props"]["name"] for r in plan.of_type(RDS))
    assert_isolated(plan, group["props"]["subnetIds"])


def test_database_security_group_admits_5432_only_from_the_node_sg(plan):
    (sg_id,) = primary(plan)["props"]["vpcSecurityGroupIds"]
    sg = plan.by_id(sg_id)
    assert sg["type"] == SG
    # The NAS bridge's DMS replication instance is the one other client where it exists.
    dms = [g["id"] for g in plan.of_type(SG) if g["name"].endswith("-dms-sg")]
    # The master secret's rotation function logs in like a client (its own group).
    (rotation,) = [g["id"] for g in plan.of_type(SG) if g["name"].endswith("-postgres-rotation-sg")]
    assert_sg_admits_exactly(sg, 5432, [node_security_group_id(plan), *dms, rotation])
    assert sg["props"]["vpcId"] == vpc_id(plan) and sg["props"].get("egress", []) == [] and "0.0.0.0/0" not in json.dumps(sg["props"])
    assert bool(dms) == (plan["stack"] == "nas-migration")
    assert plan.by_id(node_security_group_id(plan))["name"].endswith("-eks-nodes-sg")


def _db_config(**over) -> DatabaseConfig:
    return DatabaseConfig.model_validate(
        {"multiAz": True, "readReplicas": 1, "allowBurstableWriter": True, **over},
        context={"protect_data": True, "region": "ap-northeast-2"},
    )


def _build_db(sources: list[str], cfg: DatabaseConfig):
    from components.data.database import Database, DatabaseArgs

    def build():
        db = Database(
            "unit-database",
            DatabaseArgs(
                ctx=unit_ctx(),
                placement=unit_placement(("ap-northeast-2a", "ap-northeast-2c")),
                allowed_security_group_ids=sources,
                config=cfg,
            ),
        )
        return {
            "secret": db.master_secret_arn,
            "document": db.master_secret_document,
            "address": db.address,
            "readers": pulumi.Output.all(*db.reader_endpoints),
        }

    return component_plan(build)


def test_database_security_group_admits_5432_only_from_named_sources():
    plan, values = _build_db(["sg-eksnodes", "sg-bridge"], _db_config())
    (sg,) = [g for g in plan.of_type(SG) if g["name"] == "unit-postgres-sg"]
    (rotation,) = [g for g in plan.of_type(SG) if g["name"] == "unit-postgres-rotation-sg"]
    assert_sg_admits_exactly(sg, 5432, ["sg-eksnodes", "sg-bridge", rotation["id"]])
    assert all(r["props"]["vpcSecurityGroupIds"] == [sg["id"]] for r in plan.of_type(RDS))
    secret_arn, _ = values["secret"]
    assert secret_arn.startswith("arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:voip/unit/rds/master")


def test_master_secret_holds_what_clients_and_dms_read_encrypted_and_write_only():
    plan, values = _build_db([], _db_config(masterUsername="admin_x", databaseName="calls"))
    (secret,) = plan.of_type("aws:secretsmanager/secret:Secret")
    assert secret["props"]["kmsKeyId"] == "arn:aws:kms:ap-northeast-2:123456789012:key/unit"
    assert secret["props"]["recoveryWindowInDays"] == 30
    (version,) = plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert version["props"]["secretId"] == secret["id"]
    assert version["props"]["secretStringWo"] == "[secret]" and "secretString" not in version["props"]
    assert version["props"]["secretStringWoVersion"] == 1
    document, is_secret = values["document"]
    assert is_secret
    doc = json.loads(document)
    (password,) = plan.of_type("random:index/randomPassword:RandomPassword")
    assert doc == {
        "engine": "postgres",
        "host": values["address"][0],
        "port": 5432,
        "dbname": "calls",
        "username": "admin_x",
        "password": doc["password"],
    }
    assert password["props"]["length"] == 32
    # RDS rejects '/', '"', '@' and spaces in a master password.
    assert not set(password["props"]["overrideSpecial"]) & set('/"@ ')


def test_raising_master_password_version_rotates_password_rds_and_secret():
    before, _ = _build_db([], _db_config())
    after, _ = _build_db([], _db_config(masterPasswordVersion=2))
    pw = lambda plan: plan.of_type("random:index/randomPassword:RandomPassword")[0]["props"]["keepers"]  # noqa: E731
    assert pw(before) == {"version": "1"} and pw(after) == {"version": "2"}
    (primary_after,) = [r for r in after.of_type(RDS) if not r["props"].get("replicateSourceDb")]
    assert primary_after["props"]["passwordWoVersion"] == 2
    assert after.of_type("aws:secretsmanager/secretVersion:SecretVersion")[0]["props"]["secretStringWoVersion"] == 2


def test_major_upgrade_is_in_place_with_a_new_parameter_group():
    before, _ = _build_db([], _db_config())
    after, _ = _build_db([], _db_config(engineVersion="17"))
    (pg16,), (pg17,) = before.of_type("aws:rds/parameterGroup:ParameterGroup"), after.of_type("aws:rds/parameterGroup:ParameterGroup")
    assert (pg16["props"]["family"], pg17["props"]["family"]) == ("postgres16", "postgres17")
    assert pg16["urn"] != pg17["urn"], "the new family is a new group, created before the old one goes"
    assert [r["urn"] for r in before.of_type(RDS)] == [r["urn"] for r in after.of_type(RDS)], "same instances, updated in place"
    p17 = primary(after)["props"]
    assert p17["engineVersion"] == "17" and p17["allowMajorVersionUpgrade"] is True
    assert p17["parameterGroupName"] == pg17["props"]["name"]


def test_parameter_group_forces_tls_and_logs_slow_queries(plan):
    (pg,) = plan.of_type("aws:rds/parameterGroup:ParameterGroup")
    cfg = plan["config"]["database"]
    assert pg["props"]["family"] == f"postgres{cfg['engineVersion']}"
    params = {p["name"]: p["value"] for p in pg["props"]["parameters"]}
    assert params["rds.force_ssl"] == "1"
    assert params["log_min_duration_statement"] == str(cfg["slowQueryMs"])
    assert primary(plan)["props"]["parameterGroupName"] == pg["props"]["name"]


def test_alarms_and_events_go_to_the_stage_topic(plan):
    topic = plan["outputs"]["alarmTopicArn"]
    # The apps tier's DatabaseConnections alarm is tested with the capacity plan (tests/test_apps.py).
    alarms = [
        a
        for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a["props"].get("namespace") == "AWS/RDS" and "voip:apps:Apps" not in a["urn"]
    ]
    by_instance: dict[str, set[str]] = {}
    for a in alarms:
        assert a["props"]["alarmActions"] == [topic]
        by_instance.setdefault(a["props"]["dimensions"]["DBInstanceIdentifier"], set()).add(a["props"]["metricName"])
    ids = [r["props"]["identifier"] for r in plan.of_type(RDS)]
    assert set(by_instance) == set(ids)
    burstable = {"CPUCreditBalance"} if primary(plan)["props"]["instanceClass"].startswith("db.t") else set()
    assert by_instance[primary(plan)["props"]["identifier"]] == {"CPUUtilization", "FreeStorageSpace", *burstable}
    for r in replicas(plan):
        assert "ReplicaLag" in by_instance[r["props"]["identifier"]]
    (events,) = plan.of_type("aws:rds/eventSubscription:EventSubscription")
    assert events["props"]["snsTopic"] == topic and sorted(events["props"]["sourceIds"]) == sorted(ids)
    assert {"failover", "failure", "low storage"} <= set(events["props"]["eventCategories"])


def test_outputs_name_the_endpoint_and_the_master_secret(plan):
    out = plan["outputs"]
    db = primary(plan)
    assert out["dbEndpoint"] == f"{db['props']['identifier']}.abcdefghijkl.ap-northeast-2.rds.amazonaws.com:5432"
    (secret,) = [r for r in plan.of_type("aws:secretsmanager/secret:Secret") if r["name"] == f"{db['props']['identifier']}-master"]
    assert out["dbMasterSecretArn"].startswith(f"arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:{secret['props']['name']}-")
    assert secret["props"]["recoveryWindowInDays"] == (30 if plan["config"]["protectData"] else 0)


# ------------------------------------------------------------------------------- secrets, everywhere


def _mock_secret(name: str, length: int) -> str:
    return ("mock" + hashlib.sha256(name.encode()).hexdigest())[:length]


def test_no_plain_text_password_anywhere_in_the_plan_file(plan):
    text = json.dumps(plan)
    generated = plan.of_type("random:index/randomPassword:RandomPassword")
    assert generated, "the cache auth tokens come from RandomPassword"
    for r in generated:
        value = _mock_secret(r["name"], int(r["props"]["length"]))
        assert value not in text, f"the value of {r['name']} is in the plan"
        assert value[4:20] not in text
    assert "rediss://" not in text, "a connection URL (with its token) is in the plan"

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if re.fullmatch(r"(master)?password(wo)?|authtoken(wo)?|secretstring|result", k, re.I):
                    assert v in ("[secret]", True), f"{path}.{k} = {v!r}"
                    seen.append(k)
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    seen: list[str] = []
    walk(plan, "plan")
    # An ElastiCache group's AUTH token; in-cluster groups' passwords live in a Kubernetes Secret.
    in_cluster = plan["config"]["cache"]["placement"] == "cluster"
    assert seen.count("authToken") == (0 if in_cluster else len(plan["config"]["cache"]["groups"]))
    assert plan["outputs"]["cacheUrls"] == "[secret]"


# ---------------------------------------------------------------------------------------- config


def test_config_forbids_skipping_the_final_snapshot_where_data_is_protected():
    raw, _ = stack_raw("production")
    with pytest.raises(ConfigError) as err:
        load_stack_config("production", with_overrides(raw, {"voip-infra:database": {"skipFinalSnapshot": True}}))
    assert err.value.lines == [
        "error: voip-infra:database.skipFinalSnapshot: not allowed while protectData is true (the stage holds real data)"
    ]


def test_config_takes_a_major_version_only():
    raw, _ = stack_raw("dev")
    with pytest.raises(ConfigError) as err:
        load_stack_config("dev", with_overrides(raw, {"voip-infra:database": {"engineVersion": "16.6"}}))
    (line,) = err.value.lines
    assert line.startswith("error: voip-infra:database.engineVersion: '16.6' is not a PostgreSQL major version")
