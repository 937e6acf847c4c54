"""The account's security baseline, each part a config switch (voip-bootstrap:baseline):
a multi-region CloudTrail trail into an encrypted, object-locked bucket; GuardDuty with EKS and
S3 protection as options; IAM Access Analyzer; Security Hub CSPM with the AWS Foundational
Security Best Practices standard (its controls are AWS Config rules: Config records too)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from account.buckets import account_bucket
from account.config import BaselineConfig
from components.buckets import deny_insecure_transport
from components.data.keys import account_administers_statement
from components.iam import policy_document

TRAIL_NAME = "voip-account-trail"
FSBP = "standards/aws-foundational-security-best-practices/v/1.0.0"


def audit_bucket_name(account_id: str, region: str) -> str:
    return f"voip-audit-{account_id}-{region}"


def audit_key_policy(account_id: str, region: str) -> str:
    trail = {"aws:SourceArn": f"arn:aws:cloudtrail:{region}:{account_id}:trail/{TRAIL_NAME}"}
    return policy_document(
        [
            account_administers_statement(account_id),
            # CloudTrail encrypts this account's trail logs, for this trail only.
            _service_may(
                "CloudTrailEncryptsThisTrail",
                "cloudtrail.amazonaws.com",
                "kms:GenerateDataKey*",
                "*",
                {
                    "StringEquals": trail,
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{account_id}:trail/*"},
                },
            ),
            _service_may("CloudTrailDescribesKey", "cloudtrail.amazonaws.com", "kms:DescribeKey", "*", {"StringEquals": trail}),
            # AWS Config delivers snapshots and history into the same bucket.
            _service_may(
                "ConfigDeliversToTheAuditBucket",
                "config.amazonaws.com",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                "*",
                {"StringEquals": {"aws:SourceAccount": account_id}},
            ),
        ]
    )


def _service_may(sid: str, service: str, action: str | list[str], resource: str, condition: dict) -> dict:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": action,
        "Resource": resource,
        "Condition": condition,
    }


def audit_bucket_policy(bucket_arn: str, account_id: str, region: str) -> str:
    trail = {"aws:SourceArn": f"arn:aws:cloudtrail:{region}:{account_id}:trail/{TRAIL_NAME}"}
    account = {"aws:SourceAccount": account_id}
    owner_full_control = {"s3:x-amz-acl": "bucket-owner-full-control"}
    return policy_document(
        [
            deny_insecure_transport(bucket_arn),
            _service_may("CloudTrailAclCheck", "cloudtrail.amazonaws.com", "s3:GetBucketAcl", bucket_arn, {"StringEquals": trail}),
            _service_may(
                "CloudTrailWrite",
                "cloudtrail.amazonaws.com",
                "s3:PutObject",
                f"{bucket_arn}/trail/AWSLogs/{account_id}/*",
                {"StringEquals": {**owner_full_control, **trail}},
            ),
            _service_may(
                "ConfigAclCheck", "config.amazonaws.com", ["s3:GetBucketAcl", "s3:ListBucket"], bucket_arn, {"StringEquals": account}
            ),
            _service_may(
                "ConfigWrite",
                "config.amazonaws.com",
                "s3:PutObject",
                f"{bucket_arn}/config/AWSLogs/{account_id}/Config/*",
                {"StringEquals": {**owner_full_control, **account}},
            ),
        ]
    )


@dataclass
class BaselineArgs:
    account_id: str
    region: str
    config: BaselineConfig


class SecurityBaseline(pulumi.ComponentResource):
    def __init__(self, name: str, args: BaselineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:bootstrap:SecurityBaseline", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        outputs: dict[str, pulumi.Input] = {}
        self.audit_bucket: aws.s3.Bucket | None = None
        if cfg.cloud_trail.enabled or cfg.security_hub.enabled:
            self._audit_bucket(args)
            outputs["auditBucket"] = self.audit_bucket.bucket  # type: ignore[union-attr]
        if cfg.cloud_trail.enabled:
            trail = aws.cloudtrail.Trail(
                "account-trail",
                name=TRAIL_NAME,
                s3_bucket_name=self.audit_bucket.id,  # type: ignore[union-attr]
                s3_key_prefix="trail",
                is_multi_region_trail=True,
                include_global_service_events=True,
                enable_log_file_validation=True,
                kms_key_id=self.audit_key.arn,
                opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=[self.audit_policy]),
            )
            outputs["trailArn"] = trail.arn
        if cfg.guard_duty.enabled:
            gd = cfg.guard_duty
            detector = aws.guardduty.Detector(
                "guardduty", enable=True, finding_publishing_frequency=gd.finding_publishing_frequency, opts=child
            )
            features = {"S3_DATA_EVENTS": gd.s3_protection, "EKS_AUDIT_LOGS": gd.eks_protection, "RUNTIME_MONITORING": gd.eks_protection}
            for feature, on in features.items():
                extra = (
                    # GuardDuty installs and updates its agent as an EKS add-on on every cluster.
                    [
                        aws.guardduty.DetectorFeatureAdditionalConfigurationArgs(
                            name="EKS_ADDON_MANAGEMENT", status="ENABLED" if on else "DISABLED"
                        )
                    ]
                    if feature == "RUNTIME_MONITORING"
                    else None
                )
                aws.guardduty.DetectorFeature(
                    f"guardduty-{feature.lower().replace('_', '-')}",
                    detector_id=detector.id,
                    name=feature,
                    status="ENABLED" if on else "DISABLED",
                    additional_configurations=extra,
                    opts=pulumi.ResourceOptions(parent=detector),
                )
            outputs["guardDutyDetectorId"] = detector.id
        if cfg.access_analyzer.enabled:
            analyzer = aws.accessanalyzer.Analyzer("access-analyzer", analyzer_name="voip-account", type="ACCOUNT", opts=child)
            outputs["accessAnalyzerArn"] = analyzer.arn
        if cfg.security_hub.enabled:
            recorder_status = self._config_recorder(args)
            hub = aws.securityhub.Account(
                "security-hub",
                # Only the standard chosen below, with consolidated control findings.
                enable_default_standards=False,
                control_finding_generator="SECURITY_CONTROL",
                auto_enable_controls=True,
                opts=child,
            )
            aws.securityhub.StandardsSubscription(
                "security-hub-fsbp",
                standards_arn=f"arn:aws:securityhub:{args.region}::{FSBP}",
                opts=pulumi.ResourceOptions(parent=hub, depends_on=[hub, recorder_status]),
            )
        self.register_outputs(outputs)

    def _audit_bucket(self, args: BaselineArgs) -> None:
        ct = args.config.cloud_trail
        self.audit_key = aws.kms.Key(
            "audit-key",
            description="voip account audit logs (CloudTrail, AWS Config)",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=audit_key_policy(args.account_id, args.region),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.kms.Alias(
            "audit-key-alias", name="alias/voip-audit", target_key_id=self.audit_key.key_id, opts=pulumi.ResourceOptions(parent=self)
        )
        audit = account_bucket("audit-logs", audit_bucket_name(args.account_id, args.region), self.audit_key.arn, self, object_lock=True)
        bucket, versioning = audit.bucket, audit.versioning
        self.audit_bucket = bucket
        aws.s3.BucketObjectLockConfiguration(
            "audit-logs-object-lock",
            bucket=bucket.id,
            rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                    mode=ct.object_lock_mode, days=ct.retention_days
                )
            ),
            opts=pulumi.ResourceOptions(parent=bucket, protect=True, depends_on=[versioning]),
        )
        aws.s3.BucketLifecycleConfiguration(
            "audit-logs-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-after-retention",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    # The lock keeps every log for retentionDays; afterwards they go.
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=ct.retention_days + 1),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(noncurrent_days=1),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[versioning]),
        )
        self.audit_policy = aws.s3.BucketPolicy(
            "audit-logs-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: audit_bucket_policy(arn, args.account_id, args.region)),
            opts=pulumi.ResourceOptions(
                parent=bucket, protect=True, depends_on=[audit.baseline.public_access_block, audit.baseline.ownership]
            ),
        )

    def _config_recorder(self, args: BaselineArgs) -> aws.cfg.RecorderStatus:
        child = pulumi.ResourceOptions(parent=self)
        slr = aws.iam.ServiceLinkedRole("config-service-role", aws_service_name="config.amazonaws.com", opts=child)
        recorder = aws.cfg.Recorder(
            "config-recorder",
            name="default",
            role_arn=slr.arn,
            recording_group=aws.cfg.RecorderRecordingGroupArgs(all_supported=True, include_global_resource_types=True),
            opts=child,
        )
        channel = aws.cfg.DeliveryChannel(
            "config-delivery",
            name="default",
            s3_bucket_name=self.audit_bucket.id,  # type: ignore[union-attr]
            s3_key_prefix="config",
            s3_kms_key_arn=self.audit_key.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[recorder, self.audit_policy]),
        )
        return aws.cfg.RecorderStatus(
            "config-recorder-status", name=recorder.name, is_enabled=True, opts=pulumi.ResourceOptions(parent=self, depends_on=[channel])
        )
