"""Private S3 log/web buckets (load-balancer logs, CloudFront logs, static web, VPC flow logs).

One helper so every such bucket gets the same baseline: all public access blocked,
default encryption (SSE-S3, or SSE-KMS with a customer key where the writer supports it:
ELB access logs and S3 server access logs take SSE-S3 only, CloudFront standard logs and VPC
flow logs take SSE-KMS with a key grant), a lifecycle rule, optional versioning with expiry of
old versions, optional S3 server access logging, and a policy that denies plain-HTTP access;
the caller adds its service statements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.buckets import deny_insecure_transport, private_bucket_baseline
from components.iam import policy_document

ObjectOwnership = Literal["BucketOwnerEnforced", "BucketOwnerPreferred"]


@dataclass
class EdgeBucketArgs:
    bucket_name: pulumi.Input[str]
    # BucketOwnerPreferred keeps ACLs usable: CloudFront standard logging needs them.
    object_ownership: ObjectOwnership = "BucketOwnerEnforced"
    # Objects expire after this many days (None: keep).
    expire_days: int | None = None
    versioned: bool = False
    noncurrent_days: int = 30
    # S3 server access logs to (target bucket name, key prefix); None: none.
    access_log_target: tuple[pulumi.Input[str], str] | None = None
    force_destroy: bool = False
    protect: bool = False
    # SSE-KMS with this key (bucket key on); None: SSE-S3 (what ELB/CloudFront log delivery needs).
    kms_key_arn: pulumi.Input[str] | None = None
    # (bucket ARN, *resolved statement_inputs) -> extra policy statements (service principals).
    statements: Callable[..., list[dict[str, Any]]] = field(default=lambda arn, *_: [])
    # Extra inputs the statements need (e.g. the account id), resolved before the call.
    statement_inputs: list[pulumi.Input[Any]] = field(default_factory=list)


def log_bucket_args(
    bucket_name: pulumi.Input[str], retention_days: int, noncurrent_days: int, protect: bool, **more: Any
) -> EdgeBucketArgs:
    """A log bucket's baseline: objects expire after `retention_days`, versioned (an overwritten
    or deleted log stays `noncurrent_days`), protected and kept on destroy where the stage
    holds data (`protect`)."""
    return EdgeBucketArgs(
        bucket_name=bucket_name,
        expire_days=retention_days,
        versioned=True,
        noncurrent_days=noncurrent_days,
        force_destroy=not protect,
        protect=protect,
        **more,
    )


class EdgeBucket:
    """Not a component: a bundle of child resources under `parent` (keeps URNs flat)."""

    def __init__(self, name: str, args: EdgeBucketArgs, parent: pulumi.Resource, defer_policy: bool = False):
        """`defer_policy`: the policy needs something created after the bucket (a distribution
        ARN that itself needs the bucket): call `attach_policy(...)` once it exists."""
        self._logical = name
        self.args = args
        self.bucket = aws.s3.Bucket(
            name,
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            opts=pulumi.ResourceOptions(parent=parent, protect=args.protect),
        )
        child = pulumi.ResourceOptions(parent=self.bucket)
        by_default = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn}
            if args.kms_key_arn is not None
            else {"sse_algorithm": "AES256"}
        )
        baseline = private_bucket_baseline(
            self.bucket.bucket,
            names=(f"{name}-public-access", f"{name}-ownership", f"{name}-sse"),
            encryption={"apply_server_side_encryption_by_default": by_default, "bucket_key_enabled": True},
            object_ownership=args.object_ownership,
            opts=child,
        )
        self.public_access_block, self.ownership = baseline.public_access_block, baseline.ownership
        if args.access_log_target is not None:
            target, prefix = args.access_log_target
            aws.s3.BucketLogging(
                f"{name}-access-logging", bucket=self.bucket.bucket, target_bucket=target, target_prefix=prefix, opts=child
            )
        if args.versioned:
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=self.bucket.bucket,
                versioning_configuration={"status": "Enabled"},
                opts=child,
            )
        rules: list[dict[str, Any]] = [
            {
                "id": "abort-incomplete-uploads",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
        ]
        if args.expire_days is not None:
            rules.append({"id": "expire", "status": "Enabled", "filter": {}, "expiration": {"days": args.expire_days}})
        if args.versioned:
            rules.append(
                {
                    "id": "expire-old-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_days},
                }
            )
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=self.bucket.bucket, rules=rules, opts=child)

        self.arn = self.bucket.arn
        self.name = self.bucket.bucket
        self.policy: aws.s3.BucketPolicy | None = None
        if not defer_policy:
            self.attach_policy()

    def attach_policy(self, *late_inputs: pulumi.Input[Any]) -> aws.s3.BucketPolicy:
        statements = self.args.statements

        def policy(values: list[Any]) -> str:
            arn, *extra = values
            return policy_document([deny_insecure_transport(arn), *statements(arn, *extra)])

        self.policy = aws.s3.BucketPolicy(
            f"{self._logical}-policy",
            bucket=self.bucket.bucket,
            policy=pulumi.Output.all(self.bucket.arn, *self.args.statement_inputs, *late_inputs).apply(policy),
            # S3 rejects a policy while the public access block is being changed.
            opts=pulumi.ResourceOptions(parent=self.bucket, depends_on=[self.public_access_block]),
        )
        return self.policy
