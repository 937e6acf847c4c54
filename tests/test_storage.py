"""The file bucket (MinIO's replacement) and the data key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import StorageConfig
from tests.harness import component_plan, unit_ctx
from tests.resource_types import BUCKET
from tests.test_database import data_key, data_key_arn


def bucket(plan) -> dict[str, Any]:
    """The file bucket (the edge tier has buckets of its own)."""
    (b,) = [b for b in plan.of_type(BUCKET) if b["name"].endswith("-files")]
    return b


def attached(plan, typ: str) -> dict[str, Any]:
    """The one resource of `typ` configuring the file bucket (followed by the bucket's id)."""
    found = [r for r in plan.of_type(typ) if r["props"]["bucket"] == bucket(plan)["id"]]
    assert len(found) == 1, f"{typ}: {len(found)}"
    return found[0]


def test_bucket_is_versioned_encrypted_and_fully_private(plan):
    versioning = attached(plan, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["props"]["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = attached(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["props"]["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": data_key_arn(plan)}
    assert rule["bucketKeyEnabled"] is True and rule["blockedEncryptionTypes"] == ["SSE-C"]
    pab = attached(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["props"]
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    ownership = attached(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["props"]
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert "acl" not in bucket(plan)["props"] and "policy" not in bucket(plan)["props"]


def test_lifecycle_expires_old_versions_and_abandoned_uploads(plan):
    cfg = plan["config"]["storage"]
    lifecycle = attached(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {r["id"]: r for r in lifecycle["props"]["rules"]}
    assert all(r["status"] == "Enabled" for r in rules.values())
    old = rules["expire-noncurrent-versions"]
    assert old["noncurrentVersionExpiration"]["noncurrentDays"] == cfg["noncurrentVersionExpirationDays"]
    assert old["expiration"] == {"expiredObjectDeleteMarker": True}
    assert "days" not in old["expiration"], "current versions are never expired"
    mpu = rules["abort-incomplete-multipart-uploads"]
    assert mpu["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == cfg["abortIncompleteMultipartDays"]
    versioning = attached(plan, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["urn"] in lifecycle["dependsOn"]


def test_one_policy_tls_only_and_cloudfront_read_by_source_arn(plan):
    policy = attached(plan, "aws:s3/bucketPolicy:BucketPolicy")
    doc = json.loads(policy["props"]["policy"])
    arn = f"arn:aws:s3:::{bucket(plan)['props']['bucket']}"
    statements = {s["Sid"]: s for s in doc["Statement"]}
    tls = statements["DenyInsecureTransport"]
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert tls["Resource"] == [arn, f"{arn}/*"] and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allows = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert allows == [statements["AllowCloudFrontOacRead"]]
    read = allows[0]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"} and read["Action"] == "s3:GetObject"
    assert read["Resource"] == f"{arn}/*"
    (source,) = read["Condition"]["StringEquals"].values()
    assert source.startswith("arn:aws:cloudfront::123456789012:distribution/")
    assert attached(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["urn"] in policy["dependsOn"]


def test_protection_per_stage(plan):
    b = bucket(plan)
    protect = plan["config"]["protectData"]
    assert b["protect"] is protect
    assert b["props"]["forceDestroy"] is (not protect)  # dev only: a disposable stage can be torn down
    for typ in (
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
    ):
        assert attached(plan, typ)["protect"] is protect, typ
    assert b["props"]["bucket"] == f"{plan['stack']}-voip-files-123456789012"
    assert plan["outputs"]["filesBucketName"] == b["props"]["bucket"]


def test_config_forbids_force_destroy_where_data_is_protected():
    with pytest.raises(ValueError, match="forceDestroy: not allowed while protectData is true"):
        StorageConfig.model_validate({"forceDestroy": True}, context={"protect_data": True})


def test_the_policy_is_created_once():
    from components.data.storage import FileStorage, FileStorageArgs

    errors: list[str] = []

    def build():
        files = FileStorage(
            "unit-files",
            FileStorageArgs(
                ctx=unit_ctx(),
                config=StorageConfig(),
            ),
        )
        files.grant_cloudfront_read("arn:aws:cloudfront::123456789012:distribution/E1")
        try:
            files.grant_cloudfront_read("arn:aws:cloudfront::123456789012:distribution/E2")
        except RuntimeError as exc:
            errors.append(str(exc))
        return {"domain": files.bucket_regional_domain_name}

    plan, values = component_plan(build)
    assert errors and "called once" in errors[0]
    (policy,) = plan.of_type("aws:s3/bucketPolicy:BucketPolicy")
    assert "distribution/E1" in policy["props"]["policy"] and "E2" not in policy["props"]["policy"]
    assert values["domain"] == ("unit-voip-files-123456789012.s3.ap-northeast-2.amazonaws.com", False)


def test_data_key_rotates_and_is_protected_where_data_lives(plan):
    key = data_key(plan)
    p = key["props"]
    assert p["enableKeyRotation"] is True and p["rotationPeriodInDays"] == 365
    assert key["protect"] is plan["config"]["protectData"]
    assert p["deletionWindowInDays"] == (30 if plan["config"]["protectData"] else 7)
    doc = json.loads(p["policy"])
    for s in doc["Statement"]:
        assert s["Effect"] == "Allow"
        assert s["Principal"] != "*" and s["Principal"].get("AWS") in (None, "arn:aws:iam::123456789012:root")
        if "Service" in s["Principal"]:
            assert s["Action"] != "kms:*" and s.get("Condition"), s["Sid"]
    cloudfront = next(s for s in doc["Statement"] if s["Principal"].get("Service") == "cloudfront.amazonaws.com")
    assert cloudfront["Action"] == "kms:Decrypt"
    assert cloudfront["Condition"] == {"ArnLike": {"AWS:SourceArn": "arn:aws:cloudfront::123456789012:distribution/*"}}
    (alias,) = [a for a in plan.of_type("aws:kms/alias:Alias") if a["props"]["targetKeyId"] == key["id"]]
    assert alias["props"] == {"name": f"alias/{plan['stack']}-data", "targetKeyId": key["id"]}
