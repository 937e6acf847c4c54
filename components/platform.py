"""The composition root: builds the stage's components in dependency order and wires
their outputs into each other's Args. No component reaches into another's internals."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.cache import Cache, CacheArgs
from components.cluster import Cluster, ClusterArgs
from components.config import PROJECT, StackConfig
from components.database import Database, DatabaseArgs
from components.keys import DataKey, DataKeyArgs
from components.network import Network, NetworkArgs
from components.signaling import Signaling, SignalingArgs
from components.storage import FileStorage, FileStorageArgs
from components.turn import Turn, TurnArgs


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
        # random too: the stacks disable every default provider.
        self.random = random.Provider(f"{stage}-random", opts=pulumi.ResourceOptions(parent=self))
        regional = pulumi.ResourceOptions(parent=self, providers={"aws": self.aws, "random": self.random})

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

        # One customer-managed key for data at rest, logs and the alarm topic.
        self.data_key = DataKey(
            f"{stage}-data-key",
            DataKeyArgs(stage=stage, region=cfg.region, account_id=self.account_id, protect=cfg.protect_data),
            opts=regional,
        )
        # One topic for every alarm of the stage. Encrypted with the data key: CloudWatch
        # and RDS cannot publish to a topic under the AWS-managed SNS key.
        self.alarm_topic = aws.sns.Topic(
            f"{stage}-alarms",
            name=f"{stage}-voip-alarms",
            kms_master_key_id=self.data_key.arn,
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

        self.turn = Turn(
            f"{stage}-turn",
            TurnArgs(
                stage=stage,
                region=cfg.region,
                vpc_id=self.network.vpc_id,
                vpc_cidr=str(cfg.network.cidr),
                subnet_ids=[s.id for s in self.network.public_subnets],
                azs=self.network.azs,
                config=cfg.turn,
                realm=cfg.turn_realm,
                alarm_topic_arn=self.alarm_topic.arn,
                # wired to the edge at merge
                nlb_security_group_id=None,
                nlb_target_group_arn=None,
                zone_id=None,
                domain=cfg.edge.domain,
                protect=cfg.protect_data,
            ),
            opts=regional,
        )

        self.cluster = Cluster(
            f"{stage}-cluster",
            ClusterArgs(
                stage=stage,
                region=cfg.region,
                account_id=self.account_id,
                vpc_id=self.network.vpc_id,
                vpc_cidr=str(cfg.network.cidr),
                subnet_ids=[s.id for s in self.network.private_subnets],
                config=cfg.cluster,
                lb_security_group_ids=[],  # wired to the edge SGs at merge
                protect_data=cfg.protect_data,
            ),
            opts=regional,
        )

        # Data stores admit only the nodes' security group (pods share the node ENIs' SG).
        data_clients = [self.cluster.node_security_group_id]
        self.database = Database(
            f"{stage}-database",
            DatabaseArgs(
                stage=stage,
                vpc_id=self.network.vpc_id,
                subnet_ids=[s.id for s in self.network.isolated_subnets],
                allowed_security_group_ids=data_clients,
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
                allowed_security_group_ids=data_clients,
                config=cfg.cache,
                protect=cfg.protect_data,
                kms_key_arn=self.data_key.arn,
                alarm_topic_arn=self.alarm_topic.arn,
                availability_zones=cfg.network.azs,
            ),
            opts=regional,
        )

        # The bucket's one policy (TLS-only + CloudFront read) is created exactly once, here.
        # PLACEHOLDER until the edge tier merges: replace with its distribution's ARN.
        self.files.grant_cloudfront_read(
            self.account_id.apply(lambda account: f"arn:aws:cloudfront::{account}:distribution/PLACEHOLDER-wired-at-merge")
        )

        self.signaling = Signaling(
            f"{stage}-signaling",
            SignalingArgs(
                stage=stage,
                k8s_provider=self.cluster.k8s_provider,
                config=cfg.signaling,
                redis_url=self.cache.connection_urls[cfg.signaling.redis_group],
                turn_shared_secret=self.turn.shared_secret,
                turn_uris=self.turn.turn_uris,
                alb_target_group_arn=None,  # WIRED AT MERGE (edge tier)
                nlb_target_group_arn=None,  # WIRED AT MERGE (edge tier)
                lb_subnet_cidrs=[str(c) for c in self.network.plan.public],
                vpc_cidr=str(cfg.network.cidr),
                node_selector=self.cluster.signaling_node_selector,
                tolerations=self.cluster.signaling_tolerations,
                depends_on=[self.cluster.lb_controller, self.cluster.monitoring_crds],
            ),
            opts=pulumi.ResourceOptions(parent=self),
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
            "turnPublicIps": self.turn.public_ips,
            "turnIceServers": self.turn.ice_servers,
            "turnSecretArn": self.turn.secret_arn,
            "clusterName": self.cluster.name,
            "clusterEndpoint": self.cluster.endpoint,
            "nodeSecurityGroupId": self.cluster.node_security_group_id,
            "signalingNamespace": cfg.signaling.namespace,
        }
        self.register_outputs(self.outputs)
