"""The account's buckets (Pulumi state, audit logs): the stages' private-bucket baseline
(components/buckets.py) under a customer-managed key, versioned, everything protected."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.buckets import BucketBaseline, private_bucket_baseline


@dataclass(frozen=True)
class AccountBucket:
    bucket: aws.s3.Bucket
    baseline: BucketBaseline
    versioning: aws.s3.BucketVersioning


def account_bucket(
    name: str, bucket_name: str, key_arn: pulumi.Input[str], parent: pulumi.Resource, *, object_lock: bool = False
) -> AccountBucket:
    """Bucket `bucket_name` (logical names `<name>`, `<name>-...`): public access blocked, ACLs
    off, SSE-KMS under `key_arn` (bucket key on, SSE-C blocked), versioned; `protect` on all of
    it (it holds what every stage or every audit depends on). Object lock only at creation."""
    bucket = aws.s3.Bucket(
        name,
        bucket=bucket_name,
        object_lock_enabled=object_lock or None,
        force_destroy=False,
        opts=pulumi.ResourceOptions(parent=parent, protect=True),
    )
    on_bucket = pulumi.ResourceOptions(parent=bucket, protect=True)
    baseline = private_bucket_baseline(
        bucket.id,
        names=(f"{name}-public-access-block", f"{name}-ownership", f"{name}-encryption"),
        encryption={
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
            "bucket_key_enabled": True,
            "blocked_encryption_types": ["SSE-C"],
        },
        opts=on_bucket,
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=on_bucket,
    )
    return AccountBucket(bucket, baseline, versioning)
