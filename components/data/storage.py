"""The file bucket that replaces MinIO: private, versioned, KMS-encrypted, served to the
internet only through CloudFront (origin access control, wired by the edge tier)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.buckets import cloudfront_may, deny_everyone, deny_insecure_transport, private_bucket_baseline, version_expiry_rules
from components.config import StorageConfig
from components.context import StageContext
from components.iam import policy_document

# Users' files live under this key prefix, and CloudFront serves them at the same path: the
# `/files/*` behaviour forwards the URL path unchanged (no origin path, no rewrite), so URL path
# `/files/a/b.png` is key `files/a/b.png`. Whatever writes the bucket (the apps, `mc mirror` of
# the migration runbook) writes under it.
FILES_KEY_PREFIX = "files/"


@dataclass
class FileStorageArgs:
    ctx: StageContext
    config: StorageConfig


def bucket_policy_document(bucket_arn: str, distribution_arn: str) -> str:
    """TLS-only (and TLS >= 1.2) for everyone, plus read for one CloudFront distribution."""
    return policy_document(
        [
            deny_insecure_transport(bucket_arn),
            deny_everyone("DenyOldTls", bucket_arn, {"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
            cloudfront_may("AllowCloudFrontOacRead", "s3:GetObject", f"{bucket_arn}/*", distribution_arn),
        ]
    )


class FileStorage(pulumi.ComponentResource):
    """One S3 bucket with its configuration resources (pulumi-aws v7 style: versioning,
    encryption, lifecycle, ownership and public access block are separate resources).

    The bucket's single BucketPolicy is created by `grant_cloudfront_read`, which Platform
    calls exactly once (S3 allows one policy per bucket, so the TLS-only deny lives there).
    """

    def __init__(self, name: str, args: FileStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:data:FileStorage", name, None, opts)
        self.args = args
        stage = args.ctx.stage
        cfg = args.config
        self._policy: aws.s3.BucketPolicy | None = None

        self.bucket = aws.s3.Bucket(
            f"{stage}-files",
            # Global namespace: the account id keeps the name ours and predictable.
            bucket=pulumi.Output.from_input(args.ctx.account_id).apply(lambda account: f"{stage}-voip-files-{account}"),
            force_destroy=cfg.force_destroy,
            tags={"Name": f"{stage}-voip-files"},
            opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect),
        )
        # Children of the bucket would inherit its `protect`; say it per resource instead:
        # what weakens the bucket when deleted (public access block, encryption, versioning,
        # policy) is protected with it, the rest (ownership, lifecycle) is not.
        guarded = pulumi.ResourceOptions(parent=self.bucket, protect=args.ctx.protect)
        child = pulumi.ResourceOptions(parent=self.bucket, protect=False)

        baseline = private_bucket_baseline(
            self.bucket.id,
            names=(f"{stage}-files-public-access-block", f"{stage}-files-ownership", f"{stage}-files-encryption"),
            encryption={
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": args.ctx.data_key_arn},
                # Bucket keys cut KMS requests (and their cost) by orders of magnitude.
                "bucket_key_enabled": True,
                # Nobody uploads with their own key (SSE-C): we could not read it back.
                "blocked_encryption_types": ["SSE-C"],
            },
            opts=child,
            guarded=guarded,
        )
        self.public_access_block, self.ownership, self.encryption = baseline.public_access_block, baseline.ownership, baseline.encryption
        # Deleting this resource suspends versioning.
        self.versioning = aws.s3.BucketVersioning(
            f"{stage}-files-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=guarded,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{stage}-files-lifecycle",
            bucket=self.bucket.id,
            rules=version_expiry_rules(cfg.noncurrent_version_expiration_days, cfg.abort_incomplete_multipart_days),
            # The lifecycle rules act on versions: versioning must exist first.
            opts=pulumi.ResourceOptions(parent=self.bucket, protect=False, depends_on=[self.versioning]),
        )

        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.bucket_regional_domain_name = self.bucket.bucket_regional_domain_name
        self.register_outputs(
            {
                "bucketName": self.bucket.bucket,
                "bucketArn": self.bucket.arn,
                "bucketRegionalDomainName": self.bucket.bucket_regional_domain_name,
            }
        )

    def grant_cloudfront_read(self, distribution_arn: pulumi.Input[str]) -> aws.s3.BucketPolicy:
        """Create the bucket's one policy: TLS-only for everyone plus s3:GetObject for the
        CloudFront distribution `distribution_arn` (origin access control). Call once."""
        if self._policy is not None:
            raise RuntimeError(f"{self.args.ctx.stage}: the file bucket already has its policy; grant_cloudfront_read is called once")
        self._policy = aws.s3.BucketPolicy(
            f"{self.args.ctx.stage}-files-policy",
            bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, distribution_arn).apply(lambda a: bucket_policy_document(a[0], a[1])),
            # A policy naming a service principal is not "public", but S3 evaluates it against the
            # block settings: create it after them.
            opts=pulumi.ResourceOptions(
                parent=self.bucket, protect=self.args.ctx.protect, depends_on=[self.public_access_block, self.ownership]
            ),
        )
        return self._policy

    def log_access_to(self, target_bucket: pulumi.Input[str], prefix: str) -> aws.s3.BucketLogging:
        """S3 server access logs of the file bucket (who read or changed which file) into
        `target_bucket` under `prefix`files/ (the edge's SSE-S3 log bucket: access logging
        cannot deliver to an SSE-KMS bucket). Called once the edge tier exists."""
        return aws.s3.BucketLogging(
            f"{self.args.ctx.stage}-files-access-logging",
            bucket=self.bucket.id,
            target_bucket=target_bucket,
            target_prefix=f"{prefix}files/",
            opts=pulumi.ResourceOptions(parent=self.bucket, protect=False),
        )

    @property
    def policy(self) -> aws.s3.BucketPolicy | None:
        return self._policy
