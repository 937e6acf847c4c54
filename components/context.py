"""The stage context: what every tier of one stage shares, built once by Platform and
passed down in each component's Args (`ctx`).

The Args rule: a component's Args hold `ctx`, its own config section (`config`) and the
outputs of other tiers, nothing copied field by field from the config.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import PROJECT, StackConfig
from components.data.keys import DataKey, DataKeyArgs
from components.ports import Ports


@dataclass(frozen=True)
class StageContext:
    stage: str
    region: str
    account_id: pulumi.Input[str]
    # The stage holds real data (`protectData`): Pulumi protect, deletion protection, final
    # snapshots, retained volumes, two replicas of the controllers that matter.
    protect: bool
    # Every cross-tier port (components/ports.py).
    ports: Ports
    # Options of every regional component: child of the Platform, the stage's providers.
    regional: pulumi.ResourceOptions
    # What AWS serves only from us-east-1 (CloudFront's certificate, its WAF, their metrics).
    us_east_1: pulumi.ProviderResource
    # The stage's customer-managed key (data at rest, logs, the alarm topic) and the topic
    # every regional alarm publishes to.
    data_key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]


def stage_tags(cfg: StackConfig) -> dict[str, str]:
    """Tags every AWS resource carries, through the providers' default tags."""
    tags = {
        "stage": cfg.stage,
        "project": PROJECT,
        "managed-by": "pulumi",
        "owner": cfg.owner,
        "cost-center": cfg.cost_center,
    }
    if cfg.ttl_days is not None:
        tags["ttl-days"] = str(cfg.ttl_days)
    return tags


@dataclass(frozen=True)
class Foundation:
    """The stage's providers, key and alarm topic (children of the Platform), and the
    context built from them."""

    aws: aws.Provider
    aws_us_east_1: aws.Provider
    random: random.Provider
    data_key: DataKey
    alarm_topic: aws.sns.Topic
    ctx: StageContext


def build_foundation(cfg: StackConfig, parent: pulumi.Resource) -> Foundation:
    stage = cfg.stage
    tags = aws.ProviderDefaultTagsArgs(tags=stage_tags(cfg))
    child = pulumi.ResourceOptions(parent=parent)
    # Explicit providers only (the stacks disable every default provider, random's too): the
    # stage region, and us-east-1 for CloudFront's certificate and its WAF web ACL.
    regional_aws = aws.Provider(f"{stage}-aws", region=cfg.region, default_tags=tags, opts=child)
    us_east_1 = aws.Provider(f"{stage}-aws-us-east-1", region="us-east-1", default_tags=tags, opts=child)
    rnd = random.Provider(f"{stage}-random", opts=child)
    regional = pulumi.ResourceOptions(parent=parent, providers={"aws": regional_aws, "random": rnd})
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=regional_aws)).account_id

    # One customer-managed key for data at rest, logs (VPC flow logs too) and the alarm topic.
    data_key = DataKey(
        f"{stage}-data-key",
        DataKeyArgs(
            stage=stage,
            region=cfg.region,
            account_id=account_id,
            protect=cfg.protect_data,
            # VPC flow logs delivered to S3 write SSE-KMS objects through log delivery.
            log_delivery=cfg.network.flow_logs_destination == "s3",
        ),
        opts=regional,
    )
    # One topic for every alarm of the stage. Encrypted with the data key: CloudWatch and RDS
    # cannot publish to a topic under the AWS-managed SNS key.
    alarm_topic = aws.sns.Topic(f"{stage}-alarms", name=f"{stage}-voip-alarms", kms_master_key_id=data_key.arn, opts=regional)
    ctx = StageContext(
        stage=stage,
        region=cfg.region,
        account_id=account_id,
        protect=cfg.protect_data,
        ports=Ports.of(cfg.turn),
        regional=regional,
        us_east_1=us_east_1,
        data_key_arn=data_key.arn,
        alarm_topic_arn=alarm_topic.arn,
    )
    return Foundation(regional_aws, us_east_1, rnd, data_key, alarm_topic, ctx)
