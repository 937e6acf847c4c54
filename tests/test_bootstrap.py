"""bootstrap/ (one stack per AWS account) under mocks: the state bucket's baseline, the secrets
keys, GitHub OIDC trust exactly as intended, no wildcard principal, the security baseline's
switches and their price."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import bootstrap_plan
from tools import cost
from tools.bootstrap import BOOTSTRAP

ROOT = Path(__file__).resolve().parent.parent
REPO = "example-org/voip-infra"
STAGES = ["dev", "nas-migration", "production", "review"]
OIDC = "token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def plan():
    return bootstrap_plan()


def one(plan, typ, name):
    return next(r for r in plan.of_type(typ) if r["name"] == name)


def doc(r, key="policy"):
    return json.loads(r["props"][key])


def expected_trust(subject: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GithubActionsOidc",
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{OIDC}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{OIDC}:aud": "sts.amazonaws.com", f"{OIDC}:sub": subject}},
            }
        ],
    }


def test_trust_policies_are_exact_per_stage(plan):
    roles = {r["name"]: r for r in plan.of_type("aws:iam/role:Role")}
    provider = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0]
    assert provider["props"]["url"] == f"https://{OIDC}" and provider["props"]["clientIdLists"] == ["sts.amazonaws.com"]
    assert provider["protect"]
    for stage in STAGES:
        preview = json.loads(roles[f"{stage}-preview"]["props"]["assumeRolePolicy"])
        deploy = json.loads(roles[f"{stage}-deploy"]["props"]["assumeRolePolicy"])
        # The mocked provider ARN is the mock's; compare the rest exactly.
        for d in (preview, deploy):
            d["Statement"][0]["Principal"]["Federated"] = f"arn:aws:iam::123456789012:oidc-provider/{OIDC}"
        assert preview == expected_trust(f"repo:{REPO}:pull_request")
        assert deploy == expected_trust(f"repo:{REPO}:environment:{stage}")
        assert roles[f"{stage}-deploy"]["props"]["path"] == "/voip-ci/"
        assert roles[f"{stage}-deploy"]["props"]["maxSessionDuration"] == 3 * 3600


def _policy_docs(plan) -> list[tuple[str, dict]]:
    docs = []
    for r in plan.resources:
        for key in ("policy", "assumeRolePolicy"):
            value = (r.get("props") or {}).get(key)
            if isinstance(value, str) and value.startswith("{"):
                docs.append((f"{r['name']}.{key}", json.loads(value)))
    return docs


def wildcard_problems(name: str, document: dict) -> list[str]:
    """Allow statements open to anyone, or a GitHub trust that a pattern could widen."""
    problems = []
    for st in document["Statement"]:
        principal = st.get("Principal")
        if st["Effect"] == "Allow" and (principal == "*" or (isinstance(principal, dict) and "*" in json.dumps(principal))):
            problems.append(f"{name}: Allow to a wildcard principal")
        if st["Effect"] == "Allow" and isinstance(principal, dict) and "Federated" in principal:
            cond = st.get("Condition") or {}
            if set(cond) != {"StringEquals"} or "*" in json.dumps(cond) or f"{OIDC}:sub" not in cond["StringEquals"]:
                problems.append(f"{name}: OIDC trust not pinned by StringEquals on aud and sub")
    return problems


def test_no_wildcard_principals_and_the_check_catches_one(plan):
    docs = _policy_docs(plan)
    assert len(docs) >= 4 * 2 * 2 + 3  # trusts and inline policies of 8 roles, key and bucket policies
    assert [p for name, d in docs for p in wildcard_problems(name, d)] == []
    # Mutations: the two classic mistakes are caught.
    loose = expected_trust(f"repo:{REPO}:*")
    loose["Statement"][0]["Condition"] = {"StringLike": loose["Statement"][0]["Condition"]["StringEquals"]}
    assert wildcard_problems("planted", loose)
    anyone = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "*"}]}
    assert wildcard_problems("planted", anyone)


def test_state_bucket_baseline(plan):
    bucket = one(plan, "aws:s3/bucket:Bucket", "pulumi-state")
    assert bucket["protect"] and bucket["props"]["bucket"] == "voip-infra-state-123456789012-ap-northeast-2"
    kids = {r["type"].split(":")[-1]: r for r in plan.children(bucket["urn"])}
    assert kids["BucketVersioning"]["props"]["versioningConfiguration"]["status"] == "Enabled"
    rule = kids["BucketServerSideEncryptionConfiguration"]["props"]["rules"][0]
    state_key = one(plan, "aws:kms/key:Key", "pulumi-state-key")
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": f"arn:aws:kms:ap-northeast-2:123456789012:key/{state_key['id']}",
    }
    assert rule["bucketKeyEnabled"] is True
    pab = kids["BucketPublicAccessBlock"]["props"]
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    policy = doc(kids["BucketPolicy"])
    tls = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
    assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = {r["id"]: r for r in kids["BucketLifecycleConfiguration"]["props"]["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 90
    assert kids["BucketOwnershipControls"]["props"]["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    assert state_key["props"]["enableKeyRotation"] is True and state_key["protect"]


def test_one_secrets_key_per_stage_and_roles_reach_only_their_own(plan):
    aliases = {r["props"]["name"] for r in plan.of_type("aws:kms/alias:Alias")}
    assert {f"alias/voip-infra-{s}-secrets" for s in STAGES} <= aliases
    keys = {s: one(plan, "aws:kms/key:Key", f"{s}-secrets-key") for s in STAGES}
    bucket = "arn:aws:s3:::voip-infra-state-123456789012-ap-northeast-2"
    for stage in STAGES:
        key_arn = f"arn:aws:kms:ap-northeast-2:123456789012:key/{keys[stage]['id']}"
        stacks = "pr-*" if stage == "review" else stage  # the review roles serve the pr-<n> stacks
        preview = {s["Sid"]: s for s in doc(one(plan, "aws:iam/rolePolicy:RolePolicy", f"{stage}-preview-state"))["Statement"]}
        assert preview["WriteStageState"]["Resource"] == [f"{bucket}/.pulumi/locks/voip-infra/{stacks}/*"]
        assert preview["StageSecrets"] == {
            "Sid": "StageSecrets",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": key_arn,
        }
        assert (
            preview["NeverTheOtherStages"]["Resource"]
            == {s["Sid"]: s for s in doc(one(plan, "aws:iam/rolePolicy:RolePolicy", f"{stage}-deploy-state"))["Statement"]}[
                "NeverTheOtherStages"
            ]["Resource"]
        )
        assert preview["StateBucketKey"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.ap-northeast-2.amazonaws.com"}}
        deploy = {s["Sid"]: s for s in doc(one(plan, "aws:iam/rolePolicy:RolePolicy", f"{stage}-deploy-state"))["Statement"]}
        assert f"{bucket}/.pulumi/stacks/voip-infra/{stacks}.*" in deploy["WriteStageState"]["Resource"]
        assert deploy["StageSecrets"]["Resource"] == key_arn
        others = deploy["NeverTheOtherStages"]
        assert others["Effect"] == "Deny" and key_arn not in others["Resource"]
        assert {f"arn:aws:kms:ap-northeast-2:123456789012:key/{keys[o]['id']}" for o in STAGES if o != stage} <= set(others["Resource"])
        assert f"{bucket}/.pulumi/stacks/voip-infra/{stacks}.*" not in others["Resource"]
        assert all(f"/{stacks}" not in r for r in others["Resource"] if r.startswith(bucket))
        guard = deploy["NeverTouchTheBootstrap"]
        assert guard["Effect"] == "Deny" and bucket in guard["Resource"] and key_arn in guard["Resource"]
        assert {"cloudtrail:StopLogging", "s3:PutBucketPolicy", "iam:UpdateAssumeRolePolicy"} <= set(guard["Action"])
    attached = {r["name"]: r["props"]["policyArn"] for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert attached["dev-preview-read-only"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"


def test_security_baseline(plan):
    trail = plan.of_type("aws:cloudtrail/trail:Trail")[0]["props"]
    assert trail["isMultiRegionTrail"] and trail["enableLogFileValidation"] and trail["includeGlobalServiceEvents"]
    audit_key = one(plan, "aws:kms/key:Key", "audit-key")
    assert trail["kmsKeyId"].endswith(audit_key["id"])
    bucket = one(plan, "aws:s3/bucket:Bucket", "audit-logs")
    assert bucket["props"]["objectLockEnabled"] is True and bucket["protect"]
    lock = plan.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")[0]["props"]
    assert lock["rule"]["defaultRetention"] == {"mode": "GOVERNANCE", "days": 365}
    features = {r["props"]["name"]: r["props"] for r in plan.of_type("aws:guardduty/detectorFeature:DetectorFeature")}
    assert {n: f["status"] for n, f in features.items()} == {
        "S3_DATA_EVENTS": "ENABLED",
        "EKS_AUDIT_LOGS": "ENABLED",
        "RUNTIME_MONITORING": "ENABLED",
    }
    assert features["RUNTIME_MONITORING"]["additionalConfigurations"] == [{"name": "EKS_ADDON_MANAGEMENT", "status": "ENABLED"}]
    assert plan.of_type("aws:accessanalyzer/analyzer:Analyzer")[0]["props"]["type"] == "ACCOUNT"
    fsbp = plan.of_type("aws:securityhub/standardsSubscription:StandardsSubscription")[0]
    assert fsbp["props"]["standardsArn"] == "arn:aws:securityhub:ap-northeast-2::standards/aws-foundational-security-best-practices/v/1.0.0"
    recorder_status = plan.of_type("aws:cfg/recorderStatus:RecorderStatus")[0]
    assert recorder_status["urn"] in fsbp["dependsOn"]  # controls are Config rules: record first
    assert plan.of_type("aws:securityhub/account:Account")[0]["props"]["enableDefaultStandards"] is False


def test_baseline_switches_change_resources_and_price(plan):
    off = bootstrap_plan(
        json.dumps(
            {
                "voip-bootstrap:baseline": {
                    "cloudTrail": {"enabled": False},
                    "guardDuty": {"eksProtection": False},
                    "accessAnalyzer": {"enabled": False},
                    "securityHub": {"enabled": False},
                }
            }
        )
    )
    for typ in (
        "aws:cloudtrail/trail:Trail",
        "aws:accessanalyzer/analyzer:Analyzer",
        "aws:securityhub/account:Account",
        "aws:cfg/recorder:Recorder",
    ):
        assert plan.of_type(typ) and not off.of_type(typ), typ
    assert not [r for r in off.of_type("aws:s3/bucket:Bucket") if r["name"] == "audit-logs"]
    features = {r["props"]["name"]: r["props"]["status"] for r in off.of_type("aws:guardduty/detectorFeature:DetectorFeature")}
    assert features == {"S3_DATA_EVENTS": "ENABLED", "EKS_AUDIT_LOGS": "DISABLED", "RUNTIME_MONITORING": "DISABLED"}
    full, lean = cost.estimate(plan), cost.estimate(off)
    assert full.line("guardduty-runtime-monitoring").usd == 24.0 and lean.line("guardduty-runtime-monitoring").usd == 0
    assert full.line("security-hub-fsbp").usd == 20.0 and full.line("config-recorder").usd == 9.0
    assert full.total_usd == 94.70 and lean.total_usd == 37.50  # pinned: README "From an empty AWS account"


def test_existing_oidc_provider_no_connection_no_apex():
    """An account that already has GitHub's OIDC provider (one per account), no runners, no apex zone."""
    lean = bootstrap_plan(
        json.dumps(
            {
                "voip-bootstrap:github": {"createOidcProvider": False, "codebuildConnection": False},
                "voip-bootstrap:dns": {"apexDomain": None},
            }
        )
    )
    assert not lean.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert not lean.of_type("aws:codeconnections/connection:Connection") and not lean.of_type("aws:route53/zone:Zone")
    trust = json.loads(one(lean, "aws:iam/role:Role", "dev-deploy")["props"]["assumeRolePolicy"])
    # The provider is then named by its fixed ARN in the account.
    assert trust["Statement"][0]["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{OIDC}"}
    assert "apexZoneId" not in lean["outputs"] and "codebuildConnectionArn" not in lean["outputs"]


def test_urns_match_the_snapshot(plan):
    """Renaming the state bucket or a key in bootstrap would delete it: snapshot like the stages."""
    from tools import snapshots

    current, recorded = set(snapshots.urns_of(plan)), set(snapshots.read_snapshot("bootstrap.main"))
    assert current == recorded, f"removed {sorted(recorded - current)}, added {sorted(current - recorded)}: `make snapshots`"
    assert snapshots.lost_stateful(sorted(recorded), plan) == []
    # A renamed state bucket is caught as a lost stateful URN.
    renamed = type(plan)(json.loads(json.dumps(plan)))
    bucket = next(r for r in renamed.resources if r["name"] == "pulumi-state")
    bucket["urn"] += "-renamed"
    assert [u for u in snapshots.lost_stateful(sorted(recorded), renamed) if u.endswith("::pulumi-state")]


def test_the_policy_pack_passes_the_bootstrap_plan(plan):
    """The stages' CrossGuard rules (encryption, public access, key rotation, TLS, tags) hold here
    too; the three advisories left are argued in docs/deploy.md: S3 server access logs need a
    target bucket without object-lock retention (the audit bucket cannot take them; CloudTrail
    records both buckets' API calls), and the apex zone's query logging belongs to production,
    which serves the zone (tests/test_stage_order.py)."""
    from tools import policy

    found = sorted((v.level, v.policy, v.urn.rsplit("::", 1)[-1]) for v in policy.run(plan))
    assert found == [
        ("advisory", "route53-query-logging", "apex-zone"),
        ("advisory", "s3-access-logging", "audit-logs"),
        ("advisory", "s3-access-logging", "pulumi-state"),
    ]


def test_config_errors_name_the_key_and_register_nothing(tmp_path, capsys):
    from tools.__main__ import main

    bad = (BOOTSTRAP / "Pulumi.main.yaml").read_text()
    bad = bad.replace("repository: example-org/voip-infra", "repository: example-org/voip infra").replace(
        "stages: [dev,", "stages: [dev, dev,"
    )
    bad = bad.replace("    guardDuty:\n", "    guardDuty:\n      eksProtecton: true\n")
    path = tmp_path / "bad.yaml"
    path.write_text(bad + "  voip-bootstrap:colour: blue\n")
    assert main(["bootstrap-plan", "--stack", "main", "--config", str(path)]) == 1
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        "error: voip-bootstrap:colour: unknown key; allowed keys: baseline, costCenter, dns, github, owner, stages, state"
    ]
    assert out.out == ""  # nothing planned
    path.write_text(bad)
    assert main(["bootstrap-plan", "--stack", "main", "--config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert (
        "error: voip-bootstrap:github.repository: 'example-org/voip infra' is not a GitHub repository owner/name, e.g. example-org/voip-infra"
        in lines
    )
    assert "error: voip-bootstrap:baseline.guardDuty.eksProtecton: unknown key" in lines
    assert "error: voip-bootstrap:stages: each stage may appear once" in lines
    assert len(lines) == 3
