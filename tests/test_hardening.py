"""issue 14's hardening gaps, closed on every stage's plan; each invariant also runs on a planted
instance of the old defect (a copy of the real plan with the fix undone) and must fail there."""

from __future__ import annotations

import copy
import json

import pytest

from tests.harness import stack_plan
from tests.resource_types import BUCKET, KEY, LOG_GROUP

SECRET = "aws:secretsmanager/secret:Secret"
SECURITY_LOG_PREFIXES = ("/aws/eks/", "aws-waf-logs-", "/aws/vpn/", "/aws/route53/")


def _data_key(plan):
    (key,) = [k for k in plan.of_type(KEY) if k["name"].endswith("-data-key")]
    return key


def _edge_logs_key(plan):
    (key,) = [k for k in plan.of_type(KEY) if k["name"].endswith("-edge-logs-key")]
    return key


def _bucket(plan, suffix):
    (b,) = [b for b in plan.of_type(BUCKET) if b["name"].endswith(suffix)]
    return b


def _of_bucket(plan, typ, bucket):
    return [r for r in plan.of_type(typ) if r["props"].get("bucket") in (bucket["id"], bucket["props"].get("bucket"))]


# ------------------------------------------------------------------ invariants (return problems)


def _region(plan, r) -> str:
    provider = next(p for p in plan["resources"] if p["urn"] == r["provider"])
    return provider["props"]["region"]


def log_groups_without_a_cmk(plan) -> list[str]:
    """Every log group under a customer key of this stack in its own region (us-east-1 groups:
    the edge-logs key; the EKS control-plane group: the cluster's key; the rest: the data key)."""
    keys = {f"{_region(plan, k)}:{_arn_of(plan, k)}" for k in plan.of_type(KEY)}
    return [g["props"]["name"] for g in plan.of_type(LOG_GROUP) if f"{_region(plan, g)}:{g['props'].get('kmsKeyId')}" not in keys]


def _arn_of(plan, key) -> str:
    return f"arn:aws:kms:{_region(plan, key)}:123456789012:key/{key['id']}"


def _arn(plan, key) -> str:
    region = "us-east-1" if key["name"].endswith("-edge-logs-key") else plan["config"]["aws:region"]
    return f"arn:aws:kms:{region}:123456789012:key/{key['id']}"


def secrets_not_on_the_data_key(plan) -> list[str]:
    """Every secret under the data key, and the TURN nodes (the one reader outside Pulumi) may
    decrypt it through Secrets Manager only."""
    want = _arn(plan, _data_key(plan))
    # Argued exception: ECR reads the pull-through cache's credentials through its service-linked
    # role, whose policy has no kms:Decrypt on a customer key (components/cluster/image_cache.py).
    problems = [
        s["props"]["name"]
        for s in plan.of_type(SECRET)
        if s["props"].get("kmsKeyId") != want and not s["props"]["name"].startswith("ecr-pullthroughcache/")
    ]
    (access,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"].endswith("-turn-node-access")]
    decrypt = [st for st in json.loads(access["props"]["policy"])["Statement"] if st["Action"] == "kms:Decrypt"]
    via = f"secretsmanager.{plan['config']['aws:region']}.amazonaws.com"
    if [(d["Resource"], d["Condition"]) for d in decrypt] != [(want, {"StringEquals": {"kms:ViaService": via}})]:
        problems.append("TURN nodes cannot decrypt their secret (or may decrypt outside Secrets Manager)")
    return problems


def log_bucket_problems(plan) -> list[str]:
    problems = []
    for suffix in ("-lb-logs", "-cdn-logs"):
        b = _bucket(plan, suffix)
        versioning = _of_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning", b)
        if [v["props"]["versioningConfiguration"]["status"] for v in versioning] != ["Enabled"]:
            problems.append(f"{suffix}: not versioned")
        (lifecycle,) = _of_bucket(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", b)
        if not any(r.get("noncurrentVersionExpiration", {}).get("noncurrentDays") for r in lifecycle["props"]["rules"]):
            problems.append(f"{suffix}: old versions never expire")
    cdn = _bucket(plan, "-cdn-logs")
    (sse,) = _of_bucket(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", cdn)
    default = sse["props"]["rules"][0]["applyServerSideEncryptionByDefault"]
    if default != {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": _arn(plan, _data_key(plan))}:
        problems.append(f"-cdn-logs: not SSE-KMS with the data key ({default})")
    statements = json.loads(_data_key(plan)["props"]["policy"])["Statement"]
    grant = [
        s
        for s in statements
        if s.get("Principal") == {"Service": "delivery.logs.amazonaws.com"} and cdn["props"]["bucket"] in json.dumps(s.get("Condition"))
    ]
    if len(grant) != 1 or grant[0]["Action"] != "kms:GenerateDataKey*":
        problems.append("data key: no grant for CloudFront log delivery to the cdn-logs bucket")
    return problems


def access_logging_problems(plan) -> list[str]:
    target = _bucket(plan, "-lb-logs")["props"]["bucket"]
    problems = []
    for suffix, prefix in (("-files", "s3-access/files/"), ("-web", "s3-access/web/")):
        logging = _of_bucket(plan, "aws:s3/bucketLogging:BucketLogging", _bucket(plan, suffix))
        if [(lg["props"]["targetBucket"], lg["props"]["targetPrefix"]) for lg in logging] != [(target, prefix)]:
            problems.append(f"{suffix}: no server access logging into {target}/{prefix}")
    (policy,) = _of_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy", _bucket(plan, "-lb-logs"))
    writers = [
        s for s in json.loads(policy["props"]["policy"])["Statement"] if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    if (
        len(writers) != 1
        or not writers[0]["Resource"].endswith("/s3-access/*")
        or "aws:SourceAccount" not in writers[0]["Condition"]["StringEquals"]
    ):
        problems.append("-lb-logs: its policy does not admit S3 server access logs of this account under s3-access/")
    return problems


def query_logging_problems(plan) -> list[str]:
    zones = plan.of_type("aws:route53/zone:Zone")
    if zones:
        (zone,) = zones
        logs = [q for q in plan.of_type("aws:route53/queryLog:QueryLog") if zone["urn"] in q["dependsOn"]]
    else:  # production serves voip-bootstrap's apex zone (looked up by name): it logs that zone
        served = {r["props"]["zoneId"] for r in plan.of_type("aws:route53/record:Record")}
        logs = [q for q in plan.of_type("aws:route53/queryLog:QueryLog") if q["props"]["zoneId"] in served]
    if len(logs) != 1:
        return ["the public zone has no query logging"]
    arn = logs[0]["props"]["cloudwatchLogGroupArn"]
    name = f"/aws/route53/{plan['config']['edge']['domain']}"
    problems = [] if arn == f"arn:aws:logs:us-east-1:123456789012:log-group:{name}" else [f"query logs go to {arn}, not us-east-1 {name}"]
    (group,) = [g for g in plan.of_type(LOG_GROUP) if g["props"]["name"] == name]
    if _region(plan, group) != "us-east-1":
        problems.append("the query log group is not in us-east-1")
    policies = [p for p in plan.of_type("aws:cloudwatch/logResourcePolicy:LogResourcePolicy") if _region(plan, p) == "us-east-1"]
    admits = [
        s
        for p in policies
        for s in json.loads(p["props"]["policyDocument"])["Statement"]
        if s["Principal"] == {"Service": "route53.amazonaws.com"} and s["Resource"] == f"{arn}:*"
    ]
    if not admits or set(admits[0]["Action"]) != {"logs:CreateLogStream", "logs:PutLogEvents"}:
        problems.append("no us-east-1 resource policy admits route53.amazonaws.com on the query log group")
    key_statements = json.loads(_edge_logs_key(plan)["props"]["policy"])["Statement"]
    if not any("/aws/route53/*" in json.dumps(s.get("Condition", {})) for s in key_statements):
        problems.append("the us-east-1 key does not admit CloudWatch Logs for /aws/route53/*")
    return problems


def rotation_problems(plan) -> list[str]:
    (secret,) = [s for s in plan.of_type(SECRET) if s["props"]["name"].endswith("/rds/master")]
    rotations = [r for r in plan.of_type("aws:secretsmanager/secretRotation:SecretRotation") if r["props"]["secretId"] == secret["id"]]
    if len(rotations) != 1:
        return ["the master secret has no rotation"]
    rotation = rotations[0]["props"]
    problems = []
    if rotation["rotationRules"] != {"automaticallyAfterDays": plan["config"]["database"]["masterPasswordRotationDays"]}:
        problems.append(f"rotation schedule {rotation['rotationRules']}")
    (app,) = plan.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    p = app["props"]
    if p["applicationId"] != "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser":
        problems.append(f"not AWS's single-user PostgreSQL rotation app: {p['applicationId']}")
    if (
        rotation["rotationLambdaArn"]
        != f"arn:aws:lambda:{plan['config']['aws:region']}:123456789012:function:{p['parameters']['functionName']}"
    ):
        problems.append("the rotation does not call the app's function")
    private = sorted(s["id"] for s in plan.of_type("aws:ec2/subnet:Subnet") if s["props"]["tags"]["tier"] == "private")
    if sorted(p["parameters"]["vpcSubnetIds"].split(",")) != private:
        problems.append("the function does not run in the private subnets")
    if p["parameters"]["kmsKeyArn"] != _arn(plan, _data_key(plan)):
        problems.append("the function cannot decrypt the secret (kmsKeyArn)")
    if not {"CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"} <= set(p["capabilities"]):
        problems.append("the stack lacks the capabilities its template needs")
    return problems


def short_security_logs(plan) -> list[str]:
    """Where the stage holds real users' data, security logs (EKS audit, WAF, VPC flow, VPN,
    DNS queries) are kept 365 days like production's."""
    if not plan["config"]["protectData"]:
        return []
    return [
        g["props"]["name"]
        for g in plan.of_type(LOG_GROUP)
        if (g["props"]["name"].startswith(SECURITY_LOG_PREFIXES) or g["name"].endswith("vpc-flow-logs"))
        and g["props"]["retentionInDays"] < 365
    ]


INVARIANTS = [
    log_groups_without_a_cmk,
    secrets_not_on_the_data_key,
    log_bucket_problems,
    access_logging_problems,
    query_logging_problems,
    rotation_problems,
    short_security_logs,
]


@pytest.mark.parametrize("check", INVARIANTS, ids=[c.__name__ for c in INVARIANTS])
def test_invariant_holds_on_every_stage(plan, check):
    assert check(plan) == []


# ------------------------------------------------------------------ the old defects, planted


def _copy(stack):
    return copy.deepcopy(stack_plan(stack))


def _find(plan, typ, pred):
    return next(r for r in plan["resources"] if r["type"] == typ and pred(r))


def _drop_key_of(name_prefix):
    def plant(plan):
        _find(plan, LOG_GROUP, lambda g: g["props"]["name"].startswith(name_prefix))["props"].pop("kmsKeyId")

    return plant


def _secret_default_key(suffix):
    def plant(plan):
        _find(plan, SECRET, lambda s: s["props"]["name"].endswith(suffix))["props"].pop("kmsKeyId")

    return plant


def _unversion_lb_logs(plan):
    b = _bucket(plan, "-lb-logs")
    plan["resources"].remove(_of_bucket(plan, "aws:s3/bucketVersioning:BucketVersioning", b)[0])


def _cdn_logs_sse_s3(plan):
    (sse,) = _of_bucket(
        plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", _bucket(plan, "-cdn-logs")
    )
    sse["props"]["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}


def _no_web_access_logs(plan):
    plan["resources"].remove(_of_bucket(plan, "aws:s3/bucketLogging:BucketLogging", _bucket(plan, "-web"))[0])


def _no_query_log(plan):
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:route53/queryLog:QueryLog"]


def _no_rotation(plan):
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:secretsmanager/secretRotation:SecretRotation"]


def _waf_logs_90_days(plan):
    _find(plan, LOG_GROUP, lambda g: g["props"]["name"].startswith("aws-waf-logs-"))["props"]["retentionInDays"] = 90


PLANTED = [
    (log_groups_without_a_cmk, "production", _drop_key_of("aws-waf-logs-")),
    (log_groups_without_a_cmk, "dev", _drop_key_of("/voip/dev/turn")),
    (log_groups_without_a_cmk, "nas-migration", _drop_key_of("/aws/route53/")),
    (secrets_not_on_the_data_key, "production", _secret_default_key("/edge/origin-verify")),
    (secrets_not_on_the_data_key, "nas-migration", _secret_default_key("/turn/shared-secret")),
    (log_bucket_problems, "production", _unversion_lb_logs),
    (log_bucket_problems, "dev", _cdn_logs_sse_s3),
    (access_logging_problems, "production", _no_web_access_logs),
    (query_logging_problems, "production", _no_query_log),
    (rotation_problems, "nas-migration", _no_rotation),
    (short_security_logs, "nas-migration", _waf_logs_90_days),
]


@pytest.mark.parametrize(("check", "stack", "plant"), PLANTED, ids=[f"{c.__name__}-{s}" for c, s, _ in PLANTED])
def test_invariant_fails_on_the_planted_defect(check, stack, plant):
    plan = _copy(stack)
    assert check(plan) == []
    plant(plan)
    assert check(plan) != []


def test_every_invariant_has_a_planted_defect():
    assert {c for c, _, _ in PLANTED} == set(INVARIANTS)
