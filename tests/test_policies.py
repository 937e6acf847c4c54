"""The CrossGuard pack (policies/rules.py) over the real stacks' plans, and one mutation per rule."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policies.rules import ALL_POLICIES
from tests.conftest import ROOT
from tests.harness import stack_plan
from tools import policy as policy_mod


@cache
def _plan_text(stack: str) -> str:
    return json.dumps(stack_plan(stack))


def _json_plan(stack: str) -> dict[str, Any]:
    """A fresh copy of the plan as the CLI reads it back from `--json` (plain JSON data)."""
    return json.loads(_plan_text(stack))


@cache
def _baseline(stack: str) -> frozenset[tuple[str, str, str]]:
    return frozenset(_new(_json_plan(stack)))


def _find(plan: dict[str, Any], typ: str, pred: Callable[[dict[str, Any]], bool] = lambda r: True) -> dict[str, Any]:
    return next(r for r in plan["resources"] if r["type"] == typ and pred(r))


def _new(plan: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(v.level, v.policy, v.urn) for v in policy_mod.run(plan)}


@pytest.mark.parametrize("stack", ["dev", "nas-migration", "production"])
def test_real_stacks_have_no_mandatory_violation(stack):
    plan = _json_plan(stack)
    mandatory, advisory, lines = policy_mod.summarize(plan)
    assert mandatory == 0, "\n".join(lines)
    assert advisory == 0, "\n".join(lines)


def test_pack_is_well_formed():
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    assert len(names) >= 25
    for p in ALL_POLICIES:
        assert isinstance(p, (ResourceValidationPolicy, StackValidationPolicy))
        assert p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY), p.name
    advisory = {p.name for p in ALL_POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == {"ec2-no-key-pair", "log-group-retention", "aws-explicit-provider-tags"}


def test_pack_main_only_constructs_the_pack():
    text = (ROOT / "policies" / "__main__.py").read_text()
    assert 'PolicyPack(\n    name="voip-infra-policies"' in text and "policies=ALL_POLICIES" in text
    assert "runtime:\n  name: python" in (ROOT / "policies" / "PulumiPolicy.yaml").read_text()
    assert "pulumi-policy==1.21.0" in (ROOT / "policies" / "requirements.txt").read_text()


# ------------------------------------------------------------------ one mutation per rule

RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
SG = "aws:ec2/securityGroup:SecurityGroup"


def _primary(r):
    return "replicateSourceDb" not in r["props"]


def _set(typ, key, value, pred=lambda r: True):
    def mutate(plan):
        r = _find(plan, typ, pred)
        if value is _DROP:
            r["props"].pop(key, None)
        else:
            r["props"][key] = value
        return r["urn"]

    return mutate


_DROP = object()


def _sg_ingress(rule, sg_name="turn"):
    def mutate(plan):
        r = _find(plan, SG, lambda r: r["name"].endswith(f"-{sg_name}-sg"))
        r["props"]["ingress"].append(rule)
        return r["urn"]

    return mutate


def _drop_for_bucket(typ_suffix):
    def mutate(plan):
        bucket = _find(plan, "aws:s3/bucket:Bucket", lambda r: r["name"].endswith("-files"))
        refs = {bucket["id"], bucket["props"]["bucket"]}
        plan["resources"] = [r for r in plan["resources"] if not (r["type"].endswith(typ_suffix) and r["props"].get("bucket") in refs)]
        return bucket["urn"]

    return mutate


def _pab_flag_off(plan):
    bucket = _find(plan, "aws:s3/bucket:Bucket", lambda r: r["name"].endswith("-lb-logs"))
    pab = _find(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", lambda r: r["props"]["bucket"] == bucket["props"]["bucket"])
    pab["props"]["restrictPublicBuckets"] = False
    return bucket["urn"]


def _lt_tokens_optional(plan):
    lt = _find(plan, "aws:ec2/launchTemplate:LaunchTemplate", lambda r: r["name"].endswith("-turn-lt"))
    lt["props"]["metadataOptions"]["httpTokens"] = "optional"
    return lt["urn"]


def _instance_inherits_optional_tokens(plan):
    """The instance sets nothing itself: the launch template it names (by mocked id) decides."""
    lt = _find(plan, "aws:ec2/launchTemplate:LaunchTemplate", lambda r: r["name"].endswith("-turn-lt"))
    lt["props"]["metadataOptions"]["httpTokens"] = "optional"
    inst = _find(plan, "aws:ec2/instance:Instance")
    inst["props"].pop("metadataOptions")
    return {lt["urn"], inst["urn"]}


def _lt_unencrypted(plan):
    lt = _find(plan, "aws:ec2/launchTemplate:LaunchTemplate", lambda r: "nodes" in r["name"])
    lt["props"]["blockDeviceMappings"][0]["ebs"]["encrypted"] = "false"
    return lt["urn"]


def _cloudfront_behaviour_http(plan):
    r = _find(plan, "aws:cloudfront/distribution:Distribution")
    r["props"]["orderedCacheBehaviors"][0]["viewerProtocolPolicy"] = "allow-all"
    return r["urn"]


def _cloudfront_old_tls(plan):
    r = _find(plan, "aws:cloudfront/distribution:Distribution")
    r["props"]["viewerCertificate"]["minimumProtocolVersion"] = "TLSv1"
    return r["urn"]


def _http_listener_forwards(plan):
    r = _find(plan, "aws:lb/listener:Listener", lambda r: r["props"].get("protocol") == "HTTP")
    r["props"]["defaultActions"] = [{"type": "forward", "targetGroupArn": "arn:aws:elasticloadbalancing:tg"}]
    return r["urn"]


def _eks_props(mutator):
    def mutate(plan):
        r = _find(plan, "aws:eks/cluster:Cluster")
        mutator(r["props"])
        return r["urn"]

    return mutate


def _unprotect(typ, pred=lambda r: True):
    def mutate(plan):
        r = _find(plan, typ, pred)
        r["protect"] = False
        return r["urn"]

    return mutate


def _provider_without_owner(plan):
    prov = _find(plan, "pulumi:providers:aws", lambda r: r["name"].endswith("-aws"))
    tags = json.loads(prov["props"]["defaultTags"])
    del tags["tags"]["owner"]
    prov["props"]["defaultTags"] = json.dumps(tags)
    return {r["urn"] for r in plan["resources"] if r.get("provider") == prov["urn"] and r["type"].startswith("aws:")}


def _redis_plain_token(plan):
    r = _find(plan, REDIS)
    r["props"]["authToken"] = "a-plain-token-in-the-program"
    return r["urn"]


def _redis_single_az_failover(plan):
    r = _find(plan, REDIS)
    r["props"]["multiAzEnabled"] = False
    return r["urn"]


def _kms_statement(typ, name_suffix, condition, prop="policy"):
    """Add a KMS statement with `condition` to the policy document of the resource `*name_suffix`."""

    def mutate(plan):
        r = _find(plan, typ, lambda r: r["name"].endswith(name_suffix))
        doc = json.loads(r["props"][prop])
        doc["Statement"].append({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": condition})
        r["props"][prop] = json.dumps(doc)
        return r["urn"]

    return mutate


def _mirror_kms_by_source_ip(plan):
    """Issue 15 item 6 as it was: the mirror user's KMS grant pinned to the NAS IP (S3 calls KMS from S3)."""
    r = _find(plan, "aws:iam/userPolicy:UserPolicy", lambda r: r["name"].endswith("-minio-mirror-policy"))
    doc = json.loads(r["props"]["policy"])
    kms = next(s for s in doc["Statement"] if isinstance(s["Action"], list) and s["Action"][0].startswith("kms:"))
    kms["Condition"]["IpAddress"] = {"aws:SourceIp": ["211.234.10.50/32"]}
    r["props"]["policy"] = json.dumps(doc)
    return r["urn"]


MUTATIONS: list[tuple[str, str, str, Callable[[dict[str, Any]], Any]]] = [
    # (policy, level, stack, mutation returning the URN(s) expected to be reported)
    ("rds-storage-encrypted", "mandatory", "production", _set(RDS, "storageEncrypted", False, _primary)),
    ("rds-not-publicly-accessible", "mandatory", "production", _set(RDS, "publiclyAccessible", True)),
    ("rds-master-password-out-of-state", "mandatory", "production", _set(RDS, "password", "[secret]", _primary)),
    ("rds-master-password-out-of-state", "mandatory", "dev", _set(RDS, "passwordWo", _DROP, _primary)),
    ("rds-master-password-out-of-state", "mandatory", "nas-migration", _set(RDS, "passwordWo", "hunter2hunter2", _primary)),
    ("rds-master-password-out-of-state", "mandatory", "dev", _set(RDS, "passwordWoVersion", _DROP, _primary)),
    ("rds-backup-retention", "mandatory", "production", _set(RDS, "backupRetentionPeriod", 3, _primary)),
    ("rds-backup-retention", "mandatory", "dev", _set(RDS, "backupRetentionPeriod", 0, _primary)),
    ("rds-deletion-protection", "mandatory", "production", _set(RDS, "deletionProtection", False, _primary)),
    ("elasticache-encryption", "mandatory", "production", _set(REDIS, "transitEncryptionEnabled", False)),
    ("elasticache-encryption", "mandatory", "dev", _set(REDIS, "atRestEncryptionEnabled", False)),
    ("elasticache-auth-token", "mandatory", "production", _set(REDIS, "authToken", _DROP)),
    ("elasticache-auth-token", "mandatory", "dev", _redis_plain_token),
    ("elasticache-multi-az-failover", "mandatory", "nas-migration", _redis_single_az_failover),
    ("s3-public-access-block", "mandatory", "production", _drop_for_bucket("BucketPublicAccessBlock")),
    ("s3-public-access-block", "mandatory", "dev", _pab_flag_off),
    ("s3-default-encryption", "mandatory", "production", _drop_for_bucket("BucketServerSideEncryptionConfiguration")),
    (
        "sg-no-admin-ports",
        "mandatory",
        "production",
        _sg_ingress({"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}),
    ),
    (
        "sg-no-admin-ports",
        "mandatory",
        "dev",
        _sg_ingress({"protocol": "tcp", "fromPort": 3389, "toPort": 3389, "cidrBlocks": ["10.0.0.0/8"]}, "postgres"),
    ),
    (
        "sg-no-all-traffic-from-internet",
        "mandatory",
        "production",
        _sg_ingress({"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}),
    ),
    (
        "sg-public-ingress-allow-list",
        "mandatory",
        "production",
        _sg_ingress({"protocol": "tcp", "fromPort": 6379, "toPort": 6379, "cidrBlocks": ["0.0.0.0/0"]}, "redis"),
    ),
    (
        "sg-public-ingress-allow-list",
        "mandatory",
        "nas-migration",
        _sg_ingress({"protocol": "tcp", "fromPort": 49152, "toPort": 65535, "cidrBlocks": ["0.0.0.0/0"]}),
    ),
    ("ec2-imdsv2-required", "mandatory", "production", _lt_tokens_optional),
    ("ec2-imdsv2-required", "mandatory", "dev", _instance_inherits_optional_tokens),
    ("ec2-volumes-encrypted", "mandatory", "production", _lt_unencrypted),
    ("ec2-no-key-pair", "advisory", "production", _set("aws:ec2/instance:Instance", "keyName", "ops")),
    ("eks-secrets-encryption", "mandatory", "production", _eks_props(lambda p: p.pop("encryptionConfig"))),
    ("eks-control-plane-logs", "mandatory", "production", _eks_props(lambda p: p.update(enabledClusterLogTypes=["api"]))),
    (
        "eks-public-endpoint-restricted",
        "mandatory",
        "production",
        _eks_props(lambda p: p["vpcConfig"].update(publicAccessCidrs=["0.0.0.0/0"])),
    ),
    ("eks-public-endpoint-restricted", "mandatory", "dev", _eks_props(lambda p: p["vpcConfig"].pop("publicAccessCidrs"))),
    ("cloudfront-https-only", "mandatory", "production", _cloudfront_behaviour_http),
    ("cloudfront-min-tls", "mandatory", "production", _cloudfront_old_tls),
    ("cloudfront-waf", "mandatory", "dev", _set("aws:cloudfront/distribution:Distribution", "webAclId", _DROP)),
    (
        "alb-drop-invalid-headers",
        "mandatory",
        "production",
        _set(
            "aws:lb/loadBalancer:LoadBalancer", "dropInvalidHeaderFields", False, lambda r: r["props"]["loadBalancerType"] == "application"
        ),
    ),
    ("lb-http-listener-redirects", "mandatory", "production", _http_listener_forwards),
    ("kms-key-rotation", "mandatory", "production", _set("aws:kms/key:Key", "enableKeyRotation", False)),
    ("log-group-retention", "advisory", "production", _set("aws:cloudwatch/logGroup:LogGroup", "retentionInDays", _DROP)),
    ("stateful-resources-protected", "mandatory", "production", _unprotect(RDS, _primary)),
    (
        "stateful-resources-protected",
        "mandatory",
        "nas-migration",
        _unprotect("aws:s3/bucket:Bucket", lambda r: r["name"].endswith("-files")),
    ),
    ("stateful-resources-protected", "mandatory", "production", _unprotect("aws:ec2/eip:Eip", lambda r: "-turn-" in r["name"])),
    ("aws-explicit-provider-tags", "advisory", "production", _provider_without_owner),
    ("kms-no-network-origin-condition", "mandatory", "nas-migration", _mirror_kms_by_source_ip),
    (
        "kms-no-network-origin-condition",
        "mandatory",
        "production",
        _kms_statement("aws:iam/rolePolicy:RolePolicy", "-turn-node-access", {"StringEquals": {"aws:SourceVpce": "vpce-1"}}),
    ),
    (
        "kms-no-network-origin-condition",
        "mandatory",
        "dev",
        _kms_statement("aws:kms/key:Key", "-data-key", {"IpAddress": {"AWS:SourceIp": "203.0.113.0/24"}}),
    ),
]


def test_kms_source_ip_is_fine_on_direct_call_only_statements():
    """The one sound use: a statement declared direct-call-only (aws:ViaAWSService false)."""
    plan = _json_plan("production")
    condition = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}, "Bool": {"aws:ViaAWSService": "false"}}
    _kms_statement("aws:iam/rolePolicy:RolePolicy", "-turn-node-access", condition)(plan)
    assert _new(plan) - _baseline("production") == set()


@pytest.mark.parametrize(("policy", "level", "stack", "mutate"), MUTATIONS, ids=[f"{m[0]}-{m[2]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_each_rule_reports_its_mutation(policy, level, stack, mutate):
    plan = _json_plan(stack)
    expected = mutate(plan)
    expected = expected if isinstance(expected, set) else {expected}
    added = _new(plan) - _baseline(stack)
    assert added == {(level, policy, urn) for urn in expected}


def test_unprotected_data_is_fine_where_the_stage_holds_none():
    plan = _json_plan("dev")
    assert plan["config"]["protectData"] is False
    assert all(not r["protect"] for r in plan["resources"])
    assert not [v for v in policy_mod.run(plan) if v.policy == "stateful-resources-protected"]


def test_nat_eips_need_no_protection():
    plan = _json_plan("production")
    nat_eips = [r for r in plan["resources"] if r["type"] == "aws:ec2/eip:Eip" and "-nat-" in r["name"]]
    assert nat_eips and not any(r["protect"] for r in nat_eips)
    assert not [v for v in policy_mod.run(plan) if v.policy == "stateful-resources-protected"]


def test_cli_prints_violations_and_exits_by_level(tmp_path):
    clean = _json_plan("production")
    bad = _json_plan("production")
    rds = _find(bad, RDS, _primary)
    rds["props"]["publiclyAccessible"] = True
    (tmp_path / "clean.json").write_text(json.dumps(clean))
    (tmp_path / "bad.json").write_text(json.dumps(bad))

    def run(name):
        return subprocess.run(
            [sys.executable, "-m", "tools", "policy", "--plan", str(tmp_path / name)], cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    ok, ko = run("clean.json"), run("bad.json")
    assert ok.returncode == 0 and ok.stdout == "", ok.stdout + ok.stderr
    assert ko.returncode == 1, ko.stderr
    assert ko.stdout.splitlines() == [f"mandatory rds-not-publicly-accessible {rds['urn']}: " + ko.stdout.split(": ", 1)[1].strip()]
    assert "publicly_accessible=False" in ko.stdout
