"""The stage's customer-managed KMS key for data at rest (RDS storage, Performance
Insights, the RDS master secret, ElastiCache, the file bucket, data-tier log groups)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.iam import policy_document

if TYPE_CHECKING:  # context.py builds the DataKey from this module: no runtime import back
    from components.context import StageContext


@dataclass
class DataKeyArgs:
    stage: str
    region: str
    account_id: pulumi.Input[str]
    protect: bool
    # CloudWatch log delivery (VPC flow logs to S3) writes SSE-KMS objects with this key.
    log_delivery: bool = False


LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


def account_administers_statement(account_id: str, sid: str = "AccountAdministersThroughIam") -> dict:
    """Key administration and use stay with the account's IAM (no lock-out)."""
    return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "kms:*", "Resource": "*"}


def logs_statement(account_id: str, region: str, log_group: str, sid: str) -> dict:
    """CloudWatch Logs may use the key for `log_group` (a name, or `*` for every group of the account)."""
    arn = f"arn:aws:logs:{region}:{account_id}:log-group:{log_group}"
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{region}.amazonaws.com"},
        "Action": LOGS_KEY_ACTIONS,
        "Resource": "*",
        "Condition": {("ArnLike" if "*" in log_group else "ArnEquals"): {"kms:EncryptionContext:aws:logs:arn": arn}},
    }


@dataclass(frozen=True)
class SnsPublisher:
    """A service that publishes to SNS because a resource of ours names a topic in `props`."""

    service: str  # its service principal
    props: tuple[str, ...]  # the engine properties holding the topic ARN(s)
    # False: the service cannot publish to an SSE-KMS topic at all (whatever the key policy);
    # its topic must be unencrypted.
    sse_topics: bool


# Every resource type of this program that wires a service to an SNS topic. ElastiCache cannot
# publish to an encrypted topic ("The Amazon SNS topic you are publishing to cannot be
# encrypted", ElastiCache guide, Event Notifications and Amazon SNS): attached anyway, it turns
# the topic inactive and drops failover events. tests/test_wiring.py fails on a wiring of a type
# missing here, and on a non-SSE publisher wired to an encrypted topic.
SNS_PUBLISHERS: dict[str, SnsPublisher] = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": SnsPublisher(
        "cloudwatch.amazonaws.com", ("alarmActions", "okActions", "insufficientDataActions"), True
    ),
    "aws:rds/eventSubscription:EventSubscription": SnsPublisher("events.rds.amazonaws.com", ("snsTopic",), True),
    "aws:dms/eventSubscription:EventSubscription": SnsPublisher("dms.amazonaws.com", ("snsTopicArn",), True),
    "aws:elasticache/replicationGroup:ReplicationGroup": SnsPublisher("elasticache.amazonaws.com", ("notificationTopicArn",), False),
    "aws:elasticache/cluster:Cluster": SnsPublisher("elasticache.amazonaws.com", ("notificationTopicArn",), False),
}
# The publishers of the stage's encrypted alarm topic (the data key's policy admits them).
ALARM_TOPIC_PUBLISHERS = sorted({p.service for p in SNS_PUBLISHERS.values() if p.sse_topics})


def alarm_publishers_statement(account_id: str, services: list[str], sid: str = "AlarmPublishersOfThisAccount") -> dict:
    """`services` of this account may publish to an SNS topic encrypted with the key (SNS
    needs the publisher to generate and decrypt the data key; AWS-managed SNS keys admit none)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": services},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }


def cdn_log_bucket_name(stage: str, account_id: str) -> str:
    """The CloudFront standard-log bucket (SSE-KMS with the data key; its key statement needs the name)."""
    return f"{stage}-voip-cdn-logs-{account_id}"


def cloudfront_log_delivery_statement(bucket_name: str) -> dict:
    """CloudFront standard logging writes through the log-delivery service, which must be able
    to generate data keys for an SSE-KMS bucket (CloudFront developer guide, standard logging:
    "Allow CloudFront Flow Logs to use the key"); narrowed to that one bucket's S3 context."""
    return {
        "Sid": "CloudFrontStandardLogsToTheirBucket",
        "Effect": "Allow",
        "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": "kms:GenerateDataKey*",
        "Resource": "*",
        "Condition": {"StringLike": {"kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket_name}*"}},
    }


def edge_logs_key_policy(account_id: str) -> str:
    """The us-east-1 key: CloudWatch Logs there may use it for the WAF and Route 53 query log groups only."""
    return policy_document(
        [
            account_administers_statement(account_id),
            logs_statement(account_id, "us-east-1", "aws-waf-logs-*", sid="WafLogsInUsEast1"),
            logs_statement(account_id, "us-east-1", "/aws/route53/*", sid="Route53QueryLogsInUsEast1"),
        ]
    )


def log_delivery_statement(account_id: str, region: str, sid: str = "LogDeliveryOfThisAccount") -> dict:
    """CloudWatch log delivery (vended logs: VPC flow logs to S3) may encrypt with the key for
    deliveries of this account in this region (the key policy of the CloudWatch Logs user guide,
    "Logs sent to Amazon S3", Amazon S3 bucket server-side encryption)."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account_id}:*"},
        },
    }


def data_key_policy(account_id: str, region: str, stage: str | None = None, log_delivery: bool = False) -> str:
    """Key policy: the account administers and uses the key through IAM (RDS, ElastiCache,
    S3 and Secrets Manager act on the caller's behalf via grants); CloudWatch Logs may use it
    for this account's log groups; CloudFront may decrypt for this account's distributions
    (origin access control reading SSE-KMS objects; the bucket policy narrows it to one
    distribution)."""
    return policy_document(
        [
            account_administers_statement(account_id),
            logs_statement(account_id, region, "*", sid="CloudWatchLogsOfThisAccount"),
            # The stage's alarm topic is encrypted with this key: CloudWatch alarms, RDS
            # events and DMS event subscriptions publish to it (ElastiCache cannot: its
            # events have a topic of their own, components/data/cache.py).
            alarm_publishers_statement(account_id, ALARM_TOPIC_PUBLISHERS),
            *([log_delivery_statement(account_id, region)] if log_delivery else []),
            {
                "Sid": "CloudFrontOacOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "kms:Decrypt",  # read only: CloudFront never writes the bucket
                "Resource": "*",
                "Condition": {"ArnLike": {"AWS:SourceArn": f"arn:aws:cloudfront::{account_id}:distribution/*"}},
            },
            *([cloudfront_log_delivery_statement(cdn_log_bucket_name(stage, account_id))] if stage else []),
        ]
    )


def rotating_key(
    name: str,
    *,
    description: str,
    policy: pulumi.Input[str],
    protect: bool,
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource | None = None,
) -> tuple[aws.kms.Key, aws.kms.Alias]:
    """A symmetric key `<name>-key` rotating yearly, and its alias `alias/<name>`."""
    key = aws.kms.Key(
        f"{name}-key",
        description=description,
        enable_key_rotation=True,
        rotation_period_in_days=365,
        # A deleted key makes everything encrypted with it unreadable: long window where data lives.
        deletion_window_in_days=30 if protect else 7,
        policy=policy,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, protect=protect),
    )
    alias = aws.kms.Alias(
        f"{name}-key-alias",
        name=f"alias/{name}",
        target_key_id=key.key_id,
        # Not under the protected key: children inherit protect.
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
    return key, alias


class DataKey(pulumi.ComponentResource):
    """One symmetric key with yearly automatic rotation and an alias `alias/<stage>-data`."""

    def __init__(self, name: str, args: DataKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:data:DataKey", name, None, opts)
        stage = args.stage
        self.key, self.alias = rotating_key(
            f"{stage}-data",
            description=f"{stage}: data at rest (RDS, ElastiCache, file bucket, data-tier logs)",
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: data_key_policy(account, args.region, stage, args.log_delivery)
            ),
            protect=args.protect,
            parent=self,
        )
        self.arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"arn": self.key.arn, "keyId": self.key.key_id, "alias": self.alias.name})


@dataclass
class EdgeLogsKeyArgs:
    # Built with the context's us-east-1 provider: CloudWatch Logs only takes a key of the log
    # group's region, and WAF (CLOUDFRONT scope) and Route 53 query logs must live in us-east-1.
    ctx: StageContext


class EdgeLogsKey(pulumi.ComponentResource):
    """A symmetric key in us-east-1 for the edge's log groups there (WAF, Route 53 queries)."""

    def __init__(self, name: str, args: EdgeLogsKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:edge:EdgeLogsKey", name, None, opts)
        ctx = args.ctx
        stage = ctx.stage
        self.key, _ = rotating_key(
            f"{stage}-edge-logs",
            description=f"{stage}: us-east-1 edge logs (WAF, Route 53 query logs)",
            policy=pulumi.Output.from_input(ctx.account_id).apply(edge_logs_key_policy),
            protect=ctx.protect,
            parent=self,
            provider=ctx.us_east_1,
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.key.arn})
