"""The private-bucket baseline every S3 bucket of the stage gets (the file bucket, the edge's
log and web buckets): all public access blocked, object ownership set, default encryption,
and a policy that starts by denying plain HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


def deny_everyone(sid: str, bucket_arn: str, condition: dict) -> dict:
    """Deny every S3 action on the bucket and its objects to everyone when `condition` holds."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": condition,
    }


def deny_insecure_transport(bucket_arn: str) -> dict:
    """The statement every bucket policy of the project starts with: no plain HTTP."""
    return deny_everyone("DenyInsecureTransport", bucket_arn, {"Bool": {"aws:SecureTransport": "false"}})


def cloudfront_may(sid: str, action: str, resource: str, distribution_arn: str) -> dict:
    """One CloudFront distribution (origin access control) may `action` on `resource`."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": action,
        "Resource": resource,
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
    }


@dataclass(frozen=True)
class BucketBaseline:
    public_access_block: aws.s3.BucketPublicAccessBlock
    ownership: aws.s3.BucketOwnershipControls
    encryption: aws.s3.BucketServerSideEncryptionConfiguration


def private_bucket_baseline(
    bucket: pulumi.Input[str],
    *,
    names: tuple[str, str, str],
    encryption: dict[str, Any],
    opts: pulumi.ResourceOptions,
    guarded: pulumi.ResourceOptions | None = None,
    object_ownership: str = "BucketOwnerEnforced",
) -> BucketBaseline:
    """The baseline resources of `bucket` (its name or id), logically named
    `names` = (public access block, ownership controls, encryption). `encryption` is the
    default-encryption rule; `guarded` (default `opts`) are the options of what weakens the
    bucket when deleted (the public access block and the encryption)."""
    guarded = guarded or opts
    public_access, ownership, sse = names
    return BucketBaseline(
        aws.s3.BucketPublicAccessBlock(
            public_access,
            bucket=bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=guarded,
        ),
        # BucketOwnerEnforced: ACLs off, the owner owns every object, access is policy only.
        aws.s3.BucketOwnershipControls(ownership, bucket=bucket, rule={"object_ownership": object_ownership}, opts=opts),
        aws.s3.BucketServerSideEncryptionConfiguration(sse, bucket=bucket, rules=[encryption], opts=guarded),
    )


def version_expiry_rules(noncurrent_days: int, abort_multipart_days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Lifecycle of a versioned bucket: old versions go after `noncurrent_days` (then their
    delete markers), incomplete multipart uploads after `abort_multipart_days`."""
    whole_bucket = aws.s3.BucketLifecycleConfigurationRuleFilterArgs()

    def enabled(rule_id: str, **action: Any) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
        return aws.s3.BucketLifecycleConfigurationRuleArgs(id=rule_id, status="Enabled", filter=whole_bucket, **action)

    return [
        enabled(
            "expire-noncurrent-versions",
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=noncurrent_days
            ),
            # Delete markers left alone after their versions expired.
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
        ),
        enabled(
            "abort-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=abort_multipart_days
            ),
        ),
    ]
