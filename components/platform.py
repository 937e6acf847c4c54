"""The composition root: builds the stage's components in dependency order and wires
their outputs into each other's Args. No component reaches into another's internals."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.cache import Cache, CacheArgs
from components.config import PROJECT, StackConfig
from components.database import Database, DatabaseArgs
from components.keys import DataKey, DataKeyArgs
from components.network import Network, NetworkArgs
from components.storage import FileStorage, FileStorageArgs


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


class Platform(pulumi.ComponentResource):
    """Everything one stage declares."""

    def __init__(self, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:platform:Platform", cfg.stage, None, opts)
        self.cfg = cfg
        stage = cfg.stage
        tags = stage_tags(cfg)

        # Explicit providers only (the stacks disable default providers): the stage
        # region, and us-east-1 for what AWS serves only from there (CloudFront's
        # certificate and its WAF web ACL).
        self.aws = aws.Provider(
            f"{stage}-aws",
            region=cfg.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.aws_us_east_1 = aws.Provider(
            f"{stage}-aws-us-east-1",
            region="us-east-1",
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        regional = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws})

        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=self.aws))
        self.account_id = identity.account_id

        self.network = Network(
            f"{stage}-network",
            NetworkArgs(
                stage=stage,
                region=cfg.region,
                account_id=self.account_id,
                cidr=cfg.network.cidr,
                azs=cfg.network.azs,
                nat_strategy=cfg.network.nat_strategy,
                flow_logs_retention_days=cfg.network.flow_logs_retention_days,
                flow_logs_traffic_type=cfg.network.flow_logs_traffic_type,
                interface_endpoints=cfg.network.interface_endpoints,
            ),
            opts=regional,
        )

        # One topic for every alarm of the stage (KMS-encrypted with the AWS-managed key).
        self.alarm_topic = aws.sns.Topic(
            f"{stage}-alarms",
            name=f"{stage}-voip-alarms",
            kms_master_key_id="alias/aws/sns",
            opts=regional,
        )

        # ---- data tier: one customer-managed key, the file bucket, PostgreSQL, Redis.
        self.data_key = DataKey(
            f"{stage}-data-key",
            DataKeyArgs(stage=stage, region=cfg.region, account_id=self.account_id, protect=cfg.protect_data),
            opts=regional,
        )
        self.files = FileStorage(
            f"{stage}-files",
            FileStorageArgs(
                stage=stage,
                account_id=self.account_id,
                kms_key_arn=self.data_key.arn,
                config=cfg.storage,
                protect=cfg.protect_data,
            ),
            opts=regional,
        )
        # The bucket's one policy (TLS-only + CloudFront read) is created exactly once, here.
        # PLACEHOLDER until the edge tier merges: replace with its distribution's ARN.
        self.files.grant_cloudfront_read(
            self.account_id.apply(lambda account: f"arn:aws:cloudfront::{account}:distribution/PLACEHOLDER-wired-at-merge")
        )
        self.database = Database(
            f"{stage}-database",
            DatabaseArgs(
                stage=stage,
                vpc_id=self.network.vpc_id,
                subnet_ids=[s.id for s in self.network.isolated_subnets],
                allowed_security_group_ids=[],  # wired to the EKS node SG at merge
                config=cfg.database,
                protect=cfg.protect_data,
                account_id=self.account_id,
                kms_key_arn=self.data_key.arn,
                alarm_topic_arn=self.alarm_topic.arn,
                availability_zones=cfg.network.azs,
            ),
            opts=regional,
        )
        self.cache = Cache(
            f"{stage}-cache",
            CacheArgs(
                stage=stage,
                vpc_id=self.network.vpc_id,
                subnet_ids=[s.id for s in self.network.isolated_subnets],
                allowed_security_group_ids=[],  # wired to the EKS node SG at merge
                config=cfg.cache,
                protect=cfg.protect_data,
                kms_key_arn=self.data_key.arn,
                alarm_topic_arn=self.alarm_topic.arn,
                availability_zones=cfg.network.azs,
            ),
            opts=regional,
        )

        self.outputs = {
            "region": cfg.region,
            "alarmTopicArn": self.alarm_topic.arn,
            "vpcId": self.network.vpc_id,
            "azs": self.network.azs,
            "publicSubnetIds": self.network.public_subnet_ids,
            "privateSubnetIds": self.network.private_subnet_ids,
            "isolatedSubnetIds": self.network.isolated_subnet_ids,
            "dataKeyArn": self.data_key.arn,
            "dbEndpoint": self.database.endpoint,
            "dbAddress": self.database.address,
            "dbPort": self.database.port,
            "dbReaderEndpoints": self.database.reader_endpoints,
            "dbMasterSecretArn": self.database.master_secret_arn,
            "dbName": cfg.database.database_name,
            "cacheEndpoints": self.cache.primary_endpoints,
            "cacheReaderEndpoints": self.cache.reader_endpoints,
            "cacheUrls": pulumi.Output.secret(self.cache.connection_urls),
            "filesBucketName": self.files.bucket_name,
            "filesBucketArn": self.files.bucket_arn,
        }
        self.register_outputs(self.outputs)
