"""The CrossGuard pack (policies/rules.py) over the real stacks' plans, and one mutation per rule."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policies.rules import ALL_POLICIES, SCRATCH_ADVISORY
from tests.conftest import ROOT
from tests.harness import stack_plan
from tests.resource_types import BUCKET, LOG_GROUP, RDS, SG
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
    assert len(names) >= 45
    for p in ALL_POLICIES:
        assert isinstance(p, (ResourceValidationPolicy, StackValidationPolicy))
        assert p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY), p.name
    advisory = {p.name for p in ALL_POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == {"ec2-no-key-pair", "log-group-retention", "aws-explicit-provider-tags"}
    assert SCRATCH_ADVISORY <= set(names)


def test_pack_main_only_constructs_the_pack():
    text = (ROOT / "policies" / "__main__.py").read_text()
    assert 'PolicyPack(\n    name="voip-infra-policies"' in text and "policies=ALL_POLICIES" in text
    assert "runtime:\n  name: python" in (ROOT / "policies" / "PulumiPolicy.yaml").read_text()
    assert "pulumi-policy==1.21.0" in (ROOT / "policies" / "requirements.txt").read_text()


# ------------------------------------------------------------------ one mutation per rule

REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"


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


def _sg_ingress(protocol, from_port, to_port, cidr, sg_name="turn"):
    """Planted ingress on the security group `<stage>-<sg_name>-sg`."""
    rule = {"protocol": protocol, "fromPort": from_port, "toPort": to_port, ("ipv6CidrBlocks" if ":" in cidr else "cidrBlocks"): [cidr]}

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


def _distribution_without_waf(plan):
    """No web ACL on the distribution: an internet-facing ALB behind it is then an HTTP(S) entry
    without a WAF too (internet-entry-behind-waf reports its listeners); an internal one has no
    entry but the distribution, which cloudfront-waf reports."""
    dist = _find(plan, "aws:cloudfront/distribution:Distribution")
    dist["props"].pop("webAclId")
    alb = _find(plan, "aws:lb/loadBalancer:LoadBalancer", lambda r: r["props"]["loadBalancerType"] == "application")
    if alb["props"]["internal"]:
        return {dist["urn"]}
    listeners = [r["urn"] for r in plan["resources"] if r["type"] == "aws:lb/listener:Listener" and r["parent"] == alb["urn"]]
    return {dist["urn"]}, {("mandatory", "internet-entry-behind-waf", u) for u in listeners}


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


def _unselect_files(plan):
    """The backup selection no longer depends on the file bucket (tests/test_backup.py has more)."""
    files = _find(plan, "aws:s3/bucket:Bucket", lambda r: r["name"].endswith("-files"))
    selection = _find(plan, "aws:backup/selection:Selection")
    selection["dependsOn"] = [d for d in selection["dependsOn"] if d != files["urn"]]
    return files["urn"]


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
    # dev's cache runs in the cluster (no ElastiCache): nas-migration carries dev's cases.
    ("elasticache-encryption", "mandatory", "nas-migration", _set(REDIS, "atRestEncryptionEnabled", False)),
    ("elasticache-auth-token", "mandatory", "production", _set(REDIS, "authToken", _DROP)),
    ("elasticache-auth-token", "mandatory", "nas-migration", _redis_plain_token),
    ("elasticache-multi-az-failover", "mandatory", "nas-migration", _redis_single_az_failover),
    ("s3-public-access-block", "mandatory", "production", _drop_for_bucket("BucketPublicAccessBlock")),
    ("s3-public-access-block", "mandatory", "dev", _pab_flag_off),
    ("s3-default-encryption", "mandatory", "production", _drop_for_bucket("BucketServerSideEncryptionConfiguration")),
    ("sg-no-admin-ports", "mandatory", "production", _sg_ingress("tcp", 22, 22, "0.0.0.0/0")),
    ("sg-no-admin-ports", "mandatory", "dev", _sg_ingress("tcp", 3389, 3389, "10.0.0.0/8", "postgres")),
    ("sg-no-all-traffic-from-internet", "mandatory", "production", _sg_ingress("-1", 0, 0, "::/0")),
    ("sg-public-ingress-allow-list", "mandatory", "production", _sg_ingress("tcp", 6379, 6379, "0.0.0.0/0", "redis")),
    ("sg-public-ingress-allow-list", "mandatory", "nas-migration", _sg_ingress("tcp", 49152, 65535, "0.0.0.0/0")),
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
        _eks_props(lambda p: p["vpcConfig"].update(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])),
    ),
    ("eks-public-endpoint-restricted", "mandatory", "dev", _eks_props(lambda p: p["vpcConfig"].pop("publicAccessCidrs"))),
    ("cloudfront-https-only", "mandatory", "production", _cloudfront_behaviour_http),
    ("cloudfront-min-tls", "mandatory", "production", _cloudfront_old_tls),
    ("cloudfront-waf", "mandatory", "dev", _distribution_without_waf),
    ("cloudfront-waf", "mandatory", "nas-migration", _distribution_without_waf),
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
    (
        "log-group-retention",
        "advisory",
        "production",
        _set("aws:cloudwatch/logGroup:LogGroup", "retentionInDays", _DROP, lambda r: r["name"].endswith("-turn-logs")),
    ),
    ("stateful-resources-protected", "mandatory", "production", _unprotect(RDS, _primary)),
    ("backup-covers-stateful", "mandatory", "production", _unselect_files),
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


# ------------------------------------------------------------------ issue 14: stack coverage, secrets, least privilege


def _drop(typ, pred=lambda r: True, report_on=None):
    """Remove the resources of `typ` matching `pred`; the finding lands on `report_on`'s URN."""

    def mutate(plan):
        target = _find(plan, *report_on) if report_on else None
        plan["resources"] = [r for r in plan["resources"] if not (r["type"] == typ and pred(r))]
        return target["urn"]

    return mutate


def _of_bucket(suffix):
    def pred(r):
        return r["props"].get("bucket", "").startswith(f"{suffix}-") or r["props"].get("bucket", "").endswith(suffix)

    return pred


def _bucket_named(suffix):
    return (BUCKET, lambda r: r["name"].endswith(suffix))


def _flow_log_of_another_vpc(plan):
    """The flow log still exists (its destination stays a log bucket) but records another VPC."""
    vpc = _find(plan, "aws:ec2/vpc:Vpc")
    flow = _find(plan, "aws:ec2/flowLog:FlowLog")
    flow["props"]["vpcId"] = "vpc-0another"
    flow["dependsOn"] = [d for d in flow["dependsOn"] if d != vpc["urn"]]
    return vpc["urn"]


def _without_waf_exceptions(plan):
    plan["config"]["policy"]["wafExceptions"] = []
    return _find(plan, "aws:lb/listener:Listener", lambda r: r["name"].endswith("-nlb-signaling"))["urn"]


def _alb_open_to_the_internet(plan):
    """The ALB made internet-facing and admitting the internet directly (CloudFront and its WAF
    bypassed): both listeners."""
    sg = _find(plan, SG, lambda r: r["name"].endswith("-alb-sg"))
    sg["props"]["ingress"].append({"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]})
    alb = _find(plan, "aws:lb/loadBalancer:LoadBalancer", lambda r: r["props"]["loadBalancerType"] == "application")
    alb["props"]["internal"] = False
    return {
        r["urn"]
        for r in plan["resources"]
        if r["type"] == "aws:lb/listener:Listener"
        and r["props"]["loadBalancerArn"]
        in (alb["id"], alb["props"].get("arn"), f"arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:loadbalancer/{alb['id']}")
        or (r["type"] == "aws:lb/listener:Listener" and r["parent"] == alb["urn"])
    }


def _alb_no_longer_behind_cloudfront(plan):
    """Same CloudFront-only security group, but no web-ACL'd distribution fronts the ALB any more."""
    dist = _find(plan, "aws:cloudfront/distribution:Distribution")
    alb = _find(plan, "aws:lb/loadBalancer:LoadBalancer", lambda r: r["props"]["loadBalancerType"] == "application")
    dist["dependsOn"] = [d for d in dist["dependsOn"] if d != alb["urn"]]
    return {r["urn"] for r in plan["resources"] if r["type"] == "aws:lb/listener:Listener" and r["parent"] == alb["urn"]}


def _internal_alb(plan):
    return _find(plan, "aws:lb/loadBalancer:LoadBalancer", lambda r: r["props"]["loadBalancerType"] == "application")


def _internal_alb_without_vpc_origin(plan):
    """The VPC origin gone (the distribution still names its id): nothing reaches the ALB."""
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:cloudfront/vpcOrigin:VpcOrigin"]
    return _internal_alb(plan)["urn"]


def _vpc_origin_unused(plan):
    """The distribution's ALB origin back to a custom origin: the VPC origin serves no one."""
    dist = _find(plan, "aws:cloudfront/distribution:Distribution")
    (alb_origin,) = [o for o in dist["props"]["origins"] if "vpcOriginConfig" in o]
    alb_origin.pop("vpcOriginConfig")
    alb_origin["customOriginConfig"] = {
        "httpPort": 80,
        "httpsPort": 443,
        "originProtocolPolicy": "https-only",
        "originSslProtocols": ["TLSv1.2"],
    }
    dist["dependsOn"] = [d for d in dist["dependsOn"] if "cloudfront/vpcOrigin:VpcOrigin" not in d]
    return _internal_alb(plan)["urn"]


def _web_lifecycle_without_noncurrent(plan):
    web = _find(plan, BUCKET, lambda r: r["name"].endswith("-web"))
    lc = _find(
        plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", lambda r: r["props"]["bucket"] == web["props"]["bucket"]
    )
    lc["props"]["rules"] = [r for r in lc["props"]["rules"] if "noncurrentVersionExpiration" not in r]
    return web["urn"]


def _no_cloudfront_logs(plan):
    """Without the distribution's logging the cdn-logs bucket is no log destination any more, so it
    is also reported for its own missing access logs."""
    dist = _find(plan, "aws:cloudfront/distribution:Distribution")
    dist["props"].pop("loggingConfig")
    cdn_logs = _find(plan, BUCKET, lambda r: r["name"].endswith("-cdn-logs"))
    return {dist["urn"]}, {("mandatory", "s3-access-logging", cdn_logs["urn"])}


def _nlb_without_access_logs(plan):
    nlb = _find(plan, "aws:lb/loadBalancer:LoadBalancer", lambda r: r["props"]["loadBalancerType"] == "network")
    nlb["props"]["accessLogs"]["enabled"] = False
    return nlb["urn"]


def _role_policy_statement(name_suffix, statement):
    def mutate(plan):
        rp = _find(plan, "aws:iam/rolePolicy:RolePolicy", lambda r: r["name"].endswith(name_suffix))
        doc = json.loads(rp["props"]["policy"])
        doc["Statement"].append(statement)
        rp["props"]["policy"] = json.dumps(doc)
        return rp["urn"]

    return mutate


def _autoscaler_describe_on_star(plan):
    rp = _find(plan, "aws:iam/rolePolicy:RolePolicy", lambda r: "cluster-autoscaler" in r["name"])
    doc = json.loads(rp["props"]["policy"])
    for st in doc["Statement"]:
        if st.get("Sid") == "DescribeOwnNodeGroups":
            st["Resource"] = "*"
    rp["props"]["policy"] = json.dumps(doc)
    return rp["urn"]


def _user_data_with(line):
    def mutate(plan):
        lt = _find(plan, "aws:ec2/launchTemplate:LaunchTemplate", lambda r: r["name"].endswith("-turn-lt"))
        text = base64.b64decode(lt["props"]["userData"]).decode()
        lt["props"]["userData"] = base64.b64encode((text + "\n" + line + "\n").encode()).decode()
        return lt["urn"]

    return mutate


def _deployment_with_env(env):
    def mutate(plan):
        release = _find(plan, "kubernetes:helm.sh/v3:Release", lambda r: r["name"].endswith("-signaling"))
        urn = release["urn"].rsplit("::", 1)[0].replace("kubernetes:helm.sh/v3:Release", "kubernetes:apps/v1:Deployment") + "::api-sidecar"
        plan["resources"].append(
            {
                **{k: release[k] for k in ("parent", "provider", "protect", "retainOnDelete", "aliases", "dependsOn", "custom")},
                "urn": urn,
                "type": "kubernetes:apps/v1:Deployment",
                "name": "api-sidecar",
                "id": "voip/api-sidecar",
                "props": {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "busybox", "env": env}]}}}},
            }
        )
        return urn

    return mutate


def _ecs_task_with_env(env):
    """An ECS task definition (containerDefinitions is JSON text, as the provider takes it)."""

    def mutate(plan):
        vpc = _find(plan, "aws:ec2/vpc:Vpc")
        urn = vpc["urn"].rsplit("$", 1)[0] + "$aws:ecs/taskDefinition:TaskDefinition::batch-export"
        containers = [{"name": "export", "image": "busybox", "environment": env}]
        plan["resources"].append(
            {
                **{k: vpc[k] for k in ("parent", "provider", "protect", "retainOnDelete", "aliases", "dependsOn", "custom")},
                "urn": urn,
                "type": "aws:ecs/taskDefinition:TaskDefinition",
                "name": "batch-export",
                "id": "batch-export:1",
                "props": {"family": "batch-export", "containerDefinitions": json.dumps(containers)},
            }
        )
        return urn

    return mutate


def _helm_values(patch):
    def mutate(plan):
        release = _find(plan, "kubernetes:helm.sh/v3:Release", lambda r: r["name"].endswith("-signaling"))
        release["props"]["values"].update(patch)
        return release["urn"]

    return mutate


def _yearly_rotation(plan):
    _find(plan, "aws:secretsmanager/secretRotation:SecretRotation")["props"]["rotationRules"] = {"automaticallyAfterDays": 365}
    return _find(plan, "aws:secretsmanager/secret:Secret", lambda r: r["props"]["name"].endswith("/rds/master"))["urn"]


MUTATIONS += [
    ("vpc-flow-logs", "mandatory", "production", _flow_log_of_another_vpc),
    ("vpc-flow-logs", "advisory", "dev", _flow_log_of_another_vpc),
    ("internet-entry-behind-waf", "mandatory", "production", _without_waf_exceptions),
    ("internet-entry-behind-waf", "mandatory", "dev", _alb_open_to_the_internet),
    ("internet-entry-behind-waf", "mandatory", "nas-migration", _alb_no_longer_behind_cloudfront),
    ("internal-alb-behind-vpc-origin", "mandatory", "dev", _internal_alb_without_vpc_origin),
    ("internal-alb-behind-vpc-origin", "mandatory", "dev", _vpc_origin_unused),
    (
        "s3-access-logging",
        "mandatory",
        "production",
        _drop("aws:s3/bucketLogging:BucketLogging", lambda r: "-files-" in r["name"], _bucket_named("-files")),
    ),
    (
        "s3-access-logging",
        "advisory",
        "dev",
        _drop("aws:s3/bucketLogging:BucketLogging", lambda r: "-web-" in r["name"], _bucket_named("-web")),
    ),
    ("s3-noncurrent-expiry", "mandatory", "nas-migration", _web_lifecycle_without_noncurrent),
    (
        "s3-log-buckets-versioned",
        "mandatory",
        "production",
        _drop("aws:s3/bucketVersioning:BucketVersioning", lambda r: "-lb-logs-" in r["name"], _bucket_named("-lb-logs")),
    ),
    # nas-migration: production serves voip-bootstrap's apex zone, which is not in its plan.
    ("route53-query-logging", "mandatory", "nas-migration", _drop("aws:route53/queryLog:QueryLog", report_on=("aws:route53/zone:Zone",))),
    (
        "waf-logging",
        "mandatory",
        "nas-migration",
        _drop("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", report_on=("aws:wafv2/webAcl:WebAcl",)),
    ),
    (
        "rds-master-secret-rotation",
        "mandatory",
        "nas-migration",
        _drop(
            "aws:secretsmanager/secretRotation:SecretRotation",
            report_on=("aws:secretsmanager/secret:Secret", lambda r: r["props"]["name"].endswith("/rds/master")),
        ),
    ),
    (
        "rds-master-secret-rotation",
        "advisory",
        "dev",
        _yearly_rotation,
    ),
    ("log-group-cmk", "mandatory", "production", _set(LOG_GROUP, "kmsKeyId", _DROP, lambda r: r["name"].endswith("-turn-logs"))),
    ("log-group-cmk", "advisory", "dev", _set(LOG_GROUP, "kmsKeyId", _DROP, lambda r: r["props"]["name"].startswith("aws-waf-logs-"))),
    (
        "secret-cmk",
        "mandatory",
        "production",
        _set("aws:secretsmanager/secret:Secret", "kmsKeyId", _DROP, lambda r: r["props"]["name"].endswith("/origin-verify")),
    ),
    (
        "sns-topic-encrypted",
        "mandatory",
        "production",
        _set("aws:sns/topic:Topic", "kmsMasterKeyId", _DROP, lambda r: r["name"].endswith("-alarms-global")),
    ),
    (
        "security-log-retention",
        "mandatory",
        "nas-migration",
        _set(LOG_GROUP, "retentionInDays", 90, lambda r: r["props"]["name"].startswith("aws-waf-logs-")),
    ),
    (
        "security-log-retention",
        "mandatory",
        "production",
        _set(LOG_GROUP, "retentionInDays", 30, lambda r: r["props"]["name"].startswith("/aws/eks/")),
    ),
    ("cloudfront-access-logging", "mandatory", "production", _no_cloudfront_logs),
    ("lb-access-logs", "mandatory", "production", _nlb_without_access_logs),
    (
        "iam-no-admin-wildcard",
        "mandatory",
        "production",
        _role_policy_statement("-turn-node-access", {"Sid": "Oops", "Effect": "Allow", "Action": "*", "Resource": "*"}),
    ),
    ("iam-scoped-resource-actions", "mandatory", "production", _autoscaler_describe_on_star),
    (
        "iam-scoped-resource-actions",
        "mandatory",
        "dev",
        _role_policy_statement(
            "-turn-node-access", {"Sid": "AnySecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ),
    ),
    ("no-secrets-in-user-data", "mandatory", "production", _user_data_with("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE")),
    ("no-secrets-in-user-data", "mandatory", "dev", _user_data_with("static-auth-secret=9f2c1d7e5a3b8c6d4e2f1a0b9c8d7e6f")),
    (
        "no-secrets-in-user-data",
        "mandatory",
        "nas-migration",
        _user_data_with("cat > /etc/tls.key <<'K'\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nK"),
    ),
    ("no-secrets-in-workload-env", "mandatory", "production", _deployment_with_env([{"name": "DB_PASSWORD", "value": "hunter2-literal"}])),
    (
        "no-secrets-in-workload-env",
        "mandatory",
        "dev",
        _deployment_with_env(
            [
                {"name": "SPRING_DATASOURCE_URL", "value": "jdbc:postgresql://db:5432/voip"},
                {"name": "JWT_SIGNING_SECRET", "value": "q8Zr2Lx9Vb4Nc7Mw1Kd6Hf3Jg5Ts0Yp"},
            ]
        ),
    ),
    (
        "no-secrets-in-workload-env",
        "mandatory",
        "nas-migration",
        _ecs_task_with_env([{"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}]),
    ),
    ("no-secrets-in-helm-values", "mandatory", "production", _helm_values({"redis": {"password": "[secret]"}})),
    ("no-secrets-in-helm-values", "mandatory", "dev", _helm_values({"aws": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}})),
]


@pytest.mark.parametrize(("policy", "level", "stack", "mutate"), MUTATIONS, ids=[f"{m[0]}-{m[2]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_each_rule_reports_its_mutation(policy, level, stack, mutate):
    plan = _json_plan(stack)
    expected, extra = mutate(plan), set()
    if isinstance(expected, tuple):
        expected, extra = expected
    expected = expected if isinstance(expected, set) else {expected}
    added = _new(plan) - _baseline(stack)
    assert added == {(level, policy, urn) for urn in expected} | extra


def test_every_rule_has_a_mutation_case():
    """A rule without a planted violation is a rule nobody has seen fire."""
    assert {p.name for p in ALL_POLICIES} == {m[0] for m in MUTATIONS}


def test_stage_overrides_levels_from_config():
    """`policy.levels` beats the stage-kind default: dev's advisory flow-log rule made mandatory,
    and a disabled rule reports nothing."""
    for level, expected in (("mandatory", "mandatory"), ("disabled", None)):
        plan = _json_plan("dev")
        plan["config"]["policy"]["levels"] = {"vpc-flow-logs": level}
        plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:ec2/flowLog:FlowLog"]
        got = [v.level for v in policy_mod.run(plan) if v.policy == "vpc-flow-logs"]
        assert got == ([expected] if expected else [])


def test_policy_config_rejects_unknown_rules_and_short_reasons():
    from components.config_loader import ConfigError, load_stack_config
    from tests.harness import stack_raw, with_overrides

    raw, _ = stack_raw("dev")
    reason = "a reason long enough to be read by a reviewer who signs it off"
    for policy, expected in (
        ({"levels": {"vpc-flowlogs": "advisory"}}, "levels.vpc-flowlogs: not a rule of the pack; allowed: "),
        ({"wafExceptions": [{"name": "nlb-signaling", "reason": "trust me"}]}, "policy.wafExceptions.0.reason"),
        ({"wafExceptions": [{"name": "nlb-signaling", "reason": reason}] * 2}, "each listener may be listed once"),
    ):
        with pytest.raises(ConfigError) as err:
            load_stack_config("dev", with_overrides(raw, {"voip-infra:policy": policy}))
        assert expected in str(err.value), str(err.value)


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


def test_docs_table_matches_the_pack_names_and_levels():
    """Regenerate with `python -m policies.doc_table` when a rule or a level changes."""
    from policies.doc_table import render

    assert render() in (ROOT / "docs" / "policies.md").read_text()


def test_a_topic_elasticache_notifies_may_stay_unencrypted():
    """ElastiCache cannot publish to an SSE-KMS topic: the one unencrypted topic allowed is the one
    a replication group notifies; the same topic without that use is reported."""
    for notified in (True, False):
        plan = _json_plan("production")
        alarms = _find(plan, "aws:sns/topic:Topic", lambda r: r["name"].endswith("-alarms"))
        topic = {**copy.deepcopy(alarms), "urn": alarms["urn"] + "-redis-events", "name": "production-redis-events", "id": "redis-events"}
        topic["props"] = {"name": "production-voip-redis-events"}
        plan["resources"].append(topic)
        if notified:
            # A second group notifying the new topic (production runs one group today: the
            # stage's own events topic must stay notified by it).
            group = copy.deepcopy(_find(plan, REDIS))
            group.update(urn=group["urn"] + "-2", name=group["name"] + "-2", id=group["id"] + "-2")
            group["props"]["notificationTopicArn"] = "arn:aws:sns:ap-northeast-2:123456789012:production-voip-redis-events"
            plan["resources"].append(group)
        expected = set() if notified else {("mandatory", "sns-topic-encrypted", topic["urn"])}
        assert _new(plan) - _baseline("production") == expected


def test_an_argued_exception_silences_one_rule_on_one_resource():
    """`policy.exceptions`: the named resource is exempt from that rule only; others still report."""
    reason = "a reason long enough to be read by a reviewer who signs it off"
    for stack, rule, mutate, name in (
        ("production", "log-group-cmk", _set(LOG_GROUP, "kmsKeyId", _DROP, lambda r: r["name"].endswith("-turn-logs")), "turn-logs"),
        ("production", "vpc-flow-logs", _flow_log_of_another_vpc, "vpc"),
    ):
        plan = _json_plan(stack)
        urn = mutate(plan)
        stack_exceptions = plan["config"]["policy"]["exceptions"]  # the stack's own, kept
        plan["config"]["policy"]["exceptions"] = [*stack_exceptions, {"rule": rule, "name": name, "reason": reason}]
        assert _new(plan) - _baseline(stack) == set()
        plan["config"]["policy"]["exceptions"] = [*stack_exceptions, {"rule": "secret-cmk", "name": name, "reason": reason}]
        assert (_new(plan) - _baseline(stack)) == {("mandatory", rule, urn)}


def test_exceptions_name_a_rule_of_the_pack():
    from components.config_loader import ConfigError, load_stack_config
    from tests.harness import stack_raw, with_overrides

    raw, _ = stack_raw("dev")
    bad = {"exceptions": [{"rule": "log-group-kms", "name": "turn-logs", "reason": "a reason long enough to be read by a reviewer"}]}
    with pytest.raises(ConfigError) as err:
        load_stack_config("dev", with_overrides(raw, {"voip-infra:policy": bad}))
    assert "exceptions.0.rule: 'log-group-kms' is not a rule of the pack" in str(err.value)
