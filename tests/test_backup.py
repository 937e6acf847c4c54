"""AWS Backup per stage, the copy to a second region, vault locks, the coverage rule (with its
mutations), the classification of stateful types, and the loss of one AZ in production."""

from __future__ import annotations

import copy
import json
from collections import defaultdict

import pytest

from components.config_loader import ConfigError, load_stack_config
from policies import backup_coverage as bc
from tests.harness import STACKS, Plan, one, stack_plan, stack_raw, with_overrides
from tests.resource_types import RDS
from tools import policy as policy_mod

VAULT = "aws:backup/vault:Vault"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"


def _json(stack: str) -> dict:
    return json.loads(json.dumps(stack_plan(stack)))


# ------------------------------------------------------------------ the backup tier per stage


@pytest.mark.parametrize("stack", ["nas-migration", "production"])
def test_data_stages_back_up_the_database_primary_and_the_file_bucket(stack):
    plan = stack_plan(stack)
    cfg = plan["config"]["backup"]
    vault = one(plan, VAULT, lambda r: r["name"] == f"{stack}-backup")
    assert vault["props"]["kmsKeyArn"] == plan["outputs"]["dataKeyArn"] and vault["protect"] is True
    (rule,) = one(plan, PLAN)["props"]["rules"]
    assert rule["targetVaultName"] == vault["props"]["name"]
    assert rule["lifecycle"]["deleteAfter"] == cfg["retentionDays"]
    assert rule["schedule"] == "cron(0 5 * * ? *)" and rule["scheduleExpressionTimezone"] == "Asia/Seoul"
    selection = one(plan, SELECTION)
    primary = one(plan, RDS, lambda r: not r["props"].get("replicateSourceDb"))
    files = one(plan, "aws:s3/bucket:Bucket", lambda r: r["name"].endswith("-files"))
    assert set(selection["dependsOn"]) >= {primary["urn"], files["urn"]}
    assert len(selection["props"]["resources"]) == 2
    trust = json.loads(one(plan, "aws:iam/role:Role", lambda r: r["name"] == f"{stack}-backup")["props"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "backup.amazonaws.com"}
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_production_copies_to_osaka_into_its_own_vault_and_key_and_locks_both_in_governance_mode():
    plan = stack_plan("production")
    cfg = plan["config"]["backup"]
    assert cfg["copyRegion"] == "ap-northeast-3"
    copy_vault = one(plan, VAULT, lambda r: r["name"] == "production-backup-copy")
    provider = next(r for r in plan["resources"] if r["urn"] == copy_vault["provider"])
    assert provider["props"]["region"] == "ap-northeast-3"
    key = one(plan, "aws:kms/key:Key", lambda r: r["name"] == "production-backup-copy-key")
    assert key["provider"] == copy_vault["provider"] and key["props"]["enableKeyRotation"] is True and key["protect"] is True
    assert copy_vault["props"]["kmsKeyArn"] == f"arn:aws:kms:ap-northeast-3:123456789012:key/{key['id']}"
    (rule,) = one(plan, PLAN)["props"]["rules"]
    (action,) = rule["copyActions"]
    assert action["lifecycle"]["deleteAfter"] == cfg["copyRetentionDays"]
    # the copy vault's ARN (the mocks derive it from the vault's id), in Osaka
    assert action["destinationVaultArn"].startswith("arn:aws:backup:ap-northeast-3:") and action["destinationVaultArn"].endswith(
        copy_vault["id"]
    )
    locks = [r for r in plan["resources"] if r["type"] == LOCK]
    assert {r["props"]["backupVaultName"] for r in locks} == {"production-voip", "production-voip-copy"}
    for lock in locks:
        # governance mode: no changeableForDays (that would start the compliance-mode grace period)
        assert "changeableForDays" not in lock["props"]
        assert lock["props"]["minRetentionDays"] <= cfg["retentionDays"] <= lock["props"]["maxRetentionDays"]
        assert lock["protect"] is False


def test_dev_holds_no_data_and_has_no_backup_tier():
    plan = stack_plan("dev")
    assert not [r for r in plan["resources"] if r["type"].startswith("aws:backup/")]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"voip-infra:backup": {"enabled": False}}, "voip-infra:backup.enabled: false is not allowed while protectData is true"),
        ({"voip-infra:backup": {"copyRegion": "ap-northeast-2"}}, "voip-infra:backup.copyRegion: ap-northeast-2 is the stage's own region"),
        ({"voip-infra:backup": {"retentionDays": 400}}, "voip-infra:backup.retentionDays: 400 days is outside the vault lock's 7..365"),
    ],
)
def test_backup_config_errors(overrides, message):
    raw, _ = stack_raw("production")
    with pytest.raises(ConfigError) as err:
        load_stack_config("production", with_overrides(raw, overrides))
    assert any(line.startswith(f"error: {message}") for line in err.value.lines), err.value.lines


# ------------------------------------------------------------------ the coverage rule


@pytest.mark.parametrize("stack", STACKS)
def test_every_type_of_a_data_service_is_classified(stack):
    """Fails when a new resource type of a data service enters a plan without a backup decision."""
    types = {r["type"] for r in stack_plan(stack)["resources"] if bc.service_of(r["type"]) in bc.DATA_SERVICES}
    assert types and not types - set(bc.STATEFUL_TYPES), sorted(types - set(bc.STATEFUL_TYPES))
    for typ, decision in bc.STATEFUL_TYPES.items():
        assert decision in (bc.BACKUP, bc.CONFIG) or decision.startswith("exempt: "), typ


def test_classification_test_catches_a_new_stateful_type():
    plan = _json("production")
    plan["resources"].append({**copy.deepcopy(plan["resources"][-1]), "type": "aws:memorydb/cluster:Cluster", "urn": "urn:x"})
    types = {r["type"] for r in plan["resources"] if bc.service_of(r["type"]) in bc.DATA_SERVICES}
    assert types - set(bc.STATEFUL_TYPES) == {"aws:memorydb/cluster:Cluster"}


@pytest.mark.parametrize("stack", ["nas-migration", "production"])
def test_every_stateful_resource_of_a_data_stage_is_selected(stack):
    plan = stack_plan(stack)
    deps = {d for r in plan["resources"] if r["type"] == SELECTION for d in r["dependsOn"]}
    needing = [r for r in plan["resources"] if bc.needs_backup(r["type"], r["name"], r["props"])]
    assert {r["name"] for r in needing} == {f"{stack}-postgres", f"{stack}-files"}
    assert all(r["urn"] in deps for r in needing)
    assert not [v for v in policy_mod.run(_json(stack)) if v.policy == "backup-covers-stateful"]


def _violations(plan) -> set[str]:
    return {v.urn for v in policy_mod.run(plan) if v.policy == "backup-covers-stateful" and v.level == "mandatory"}


def test_rule_reports_a_resource_no_selection_depends_on():
    plan = _json("production")
    selection = one(plan, SELECTION)
    files = one(plan, "aws:s3/bucket:Bucket", lambda r: r["name"].endswith("-files"))
    selection["dependsOn"] = [d for d in selection["dependsOn"] if d != files["urn"]]
    assert _violations(plan) == {files["urn"]}


def test_rule_reports_a_new_stateful_resource_added_without_selection():
    plan = _json("nas-migration")
    primary = one(plan, RDS, lambda r: not r["props"].get("replicateSourceDb"))
    table = {**copy.deepcopy(primary), "type": "aws:dynamodb/table:Table", "name": "nas-migration-sessions", "props": {"name": "sessions"}}
    table["urn"] = primary["urn"].replace(
        "aws:rds/instance:Instance::nas-migration-postgres", "aws:dynamodb/table:Table::nas-migration-sessions"
    )
    table["id"] = "sessions-id"
    plan["resources"].append(table)
    assert _violations(plan) == {table["urn"]}


def test_rule_is_quiet_where_the_stage_holds_no_data():
    plan = _json("dev")
    assert plan["config"]["protectData"] is False
    assert not _violations(plan)
    plan["config"]["protectData"] = True  # the same plan, declared a data stage: nothing is selected
    assert {r.rsplit("::", 1)[1] for r in _violations(plan)} == {"dev-postgres", "dev-files"}


# ------------------------------------------------------------------ loss of one AZ (production)


def _az_of(plan, r) -> set[str]:
    """The AZs a resource's instances run in (from its subnets or its own AZ props)."""
    props = r["props"]
    if r["type"] == "aws:eks/nodeGroup:NodeGroup":
        return {plan.by_id(s)["props"]["availabilityZone"] for s in props["subnetIds"]}
    if r["type"] in ("aws:ec2/instance:Instance", "aws:ec2/natGateway:NatGateway"):
        return {plan.by_id(props["subnetId"])["props"]["availabilityZone"]}
    if r["type"] == "aws:elasticache/replicationGroup:ReplicationGroup":
        return set(props["preferredCacheClusterAzs"])
    if r["type"] == "aws:autoscaling/group:Group":
        return {plan.by_id(s)["props"]["availabilityZone"] for s in props["vpcZoneIdentifiers"]}
    raise AssertionError(r["type"])


def _tiers(plan) -> dict[str, set[str]]:
    """Each multi-instance tier -> the AZs its instances span."""
    tiers: dict[str, set[str]] = defaultdict(set)
    for r in plan["resources"]:
        t = r["type"]
        if t == "aws:eks/nodeGroup:NodeGroup":
            tiers[r["name"]] |= _az_of(plan, r)
        elif t == "aws:ec2/instance:Instance" and "-turn-" in r["name"]:
            tiers["turn"] |= _az_of(plan, r)
        elif t == "aws:ec2/natGateway:NatGateway":
            tiers["nat"] |= _az_of(plan, r)
        elif t == "aws:elasticache/replicationGroup:ReplicationGroup":
            tiers[r["name"]] |= _az_of(plan, r)
    primary = one(plan, RDS, lambda r: not r["props"].get("replicateSourceDb"))
    tiers["database"] = {"multi-az"} if primary["props"]["multiAz"] else set()
    for rep in (r for r in plan["resources"] if r["type"] == RDS and r["props"].get("replicateSourceDb")):
        tiers["database-readers"].add(rep["props"]["availabilityZone"])
    return tiers


def test_production_survives_the_loss_of_one_az():
    plan = stack_plan("production")
    tiers = _tiers(plan)
    assert {"turn", "nat", "database", "database-readers", "production-cache"} <= set(tiers)
    for tier, azs in tiers.items():
        if tier == "database":
            assert azs == {"multi-az"}, "Multi-AZ writer"
        elif tier == "database-readers":
            assert len(azs) >= 1, ">= 1 reader"
        else:
            assert len(azs) >= 2, f"{tier} spans {sorted(azs)}: one AZ down takes it with it"
    signaling = one(plan, "aws:eks/nodeGroup:NodeGroup", lambda r: r["name"] == "production-signaling-nodes")
    assert signaling["props"]["capacityType"] == "ON_DEMAND" and signaling["props"]["scalingConfig"]["minSize"] >= 2


def test_az_loss_check_fails_on_a_tier_planted_in_one_az():
    plan = _json("production")
    turn = [r for r in plan["resources"] if r["type"] == "aws:ec2/instance:Instance" and "-turn-" in r["name"]]
    for r in turn[1:]:
        r["props"]["subnetId"] = turn[0]["props"]["subnetId"]
    tiers = _tiers(Plan(plan))
    assert len(tiers["turn"]) == 1
