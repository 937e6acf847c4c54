"""ElastiCache (Redis OSS or Valkey): one replication group per named use (cache,
pub/sub, streams), in the isolated subnets, TLS required, encrypted at rest, one AUTH
token per group, reachable on 6379 only from named security groups."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.cloudwatch import log_group
from components.config import CacheConfig
from components.data.data_access import DataStoreArgs, DataStoreKind, Watch, data_store_network, watch_alarms
from components.iam import policy_document
from components.ports import Ports

REDIS = DataStoreKind("redis", "Redis (TLS)", "ElastiCache", aws.elasticache.SubnetGroup, "AWS/ElastiCache", "CacheClusterId")


@dataclass(kw_only=True)
class CacheArgs(DataStoreArgs):
    """Admits the EKS nodes on the Redis port; a group's nodes spread over the AZs, primary first."""

    config: CacheConfig


def connection_url(token: str, host: str, port: int = Ports.redis) -> str:
    """rediss:// (TLS) with the AUTH token as password and no user (the `default` user)."""
    return f"rediss://:{quote(token, safe='')}@{host}:{port}"


class Cache(pulumi.ComponentResource):
    """Per group name: `replication_groups[g]`, `primary_endpoints[g]`, `reader_endpoints[g]`,
    `auth_tokens[g]` and `connection_urls[g]` (both secret). Tokens are per group, so a
    leaked pub/sub URL does not open the cache, and each rotates on its own."""

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:data:Cache", name, None, opts)
        self.args = args
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)

        network = data_store_network(REDIS, args.ctx.ports.redis, args, child)
        self.security_group, self.subnet_group = network.security_group, network.subnet_group

        self._events_topic(args)
        self.replication_groups: dict[str, aws.elasticache.ReplicationGroup] = {}
        self.auth_tokens: dict[str, pulumi.Output[str]] = {}
        self.primary_endpoints: dict[str, pulumi.Output[str]] = {}
        self.reader_endpoints: dict[str, pulumi.Output[str]] = {}
        self.connection_urls: dict[str, pulumi.Output[str]] = {}
        for group, gcfg in cfg.groups.items():
            self._group(group, gcfg)

        self.security_group_id = self.security_group.id
        self.register_outputs(
            {
                "securityGroupId": self.security_group.id,
                "eventsTopicArn": self.events_topic_arn,
                "primaryEndpoints": self.primary_endpoints,
                "connectionUrls": self.connection_urls,
            }
        )

    def _events_topic(self, args: CacheArgs) -> None:
        """ElastiCache events (failover, node replaced, ...) need an unencrypted topic: ElastiCache
        cannot publish to an SSE-KMS one. The messages carry event names and node ids only. Its
        policy must use aws:SourceOwner (ElastiCache cannot publish under the aws:SourceAccount
        form that new topics get by default)."""
        stage = args.ctx.stage
        self.events_topic = aws.sns.Topic(
            f"{stage}-cache-events",
            name=f"{stage}-voip-cache-events",
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.sns.TopicPolicy(
            f"{stage}-cache-events-policy",
            arn=self.events_topic.arn,
            policy=pulumi.Output.all(self.events_topic.arn, args.ctx.account_id).apply(
                lambda a: policy_document(
                    [
                        {
                            "Sid": "ElastiCacheOfThisAccountPublishes",
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": "SNS:Publish",
                            "Resource": a[0],
                            "Condition": {"StringEquals": {"AWS:SourceOwner": a[1]}},
                        }
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=self.events_topic),
        )
        self.events_topic_arn = self.events_topic.arn

    def _group(self, group: str, gcfg) -> None:
        args, cfg, stage = self.args, self.args.config, self.args.ctx.stage
        rg_id = f"{stage}-{group}"  # <= 40 chars: stage <= 20, group <= 16
        family = cfg.parameter_family

        # Alphanumeric only: valid as an AUTH token (16-128 printable, no @ " /) and safe in a URL.
        token = random.RandomPassword(
            f"{rg_id}-auth-token",
            length=64,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        params = aws.elasticache.ParameterGroup(
            # The name carries the family: an engine upgrade creates the new group first.
            f"{rg_id}-{family}",
            name=f"{rg_id}-{family}",
            family=family,
            description=f"{rg_id}: maxmemory-policy {gcfg.maxmemory_policy}",
            parameters=[aws.elasticache.ParameterGroupParameterArgs(name="maxmemory-policy", value=gcfg.maxmemory_policy)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        slow_log = log_group(
            f"{rg_id}-slow-log",
            f"/voip/{stage}/elasticache/{group}/slow-log",
            cfg.log_retention_days,
            args.ctx.data_key_arn,
            pulumi.ResourceOptions(parent=self),
        )
        nodes = gcfg.replicas + 1
        ha = gcfg.replicas >= 1  # failover needs a replica to promote
        azs = list(args.placement.availability_zones)
        rg = aws.elasticache.ReplicationGroup(
            rg_id,
            replication_group_id=rg_id,
            description=f"{stage} {group} ({cfg.engine} {cfg.engine_version})",
            engine=cfg.engine,
            engine_version=cfg.engine_version,
            node_type=gcfg.node_type,
            cluster_mode="disabled",
            num_cache_clusters=nodes,
            preferred_cache_cluster_azs=[azs[i % len(azs)] for i in range(nodes)] if azs else None,
            port=args.ctx.ports.redis,
            parameter_group_name=params.name,
            subnet_group_name=self.subnet_group.name,
            security_group_ids=[self.security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=args.ctx.data_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token.result,
            # A new token is added beside the old one; clients move, then the old one is dropped.
            auth_token_update_strategy="ROTATE",
            automatic_failover_enabled=ha,
            multi_az_enabled=ha,
            auto_minor_version_upgrade=True,
            maintenance_window=cfg.maintenance_window,
            snapshot_retention_limit=cfg.snapshot_retention_days,
            snapshot_window=cfg.snapshot_window if cfg.snapshot_retention_days else None,
            # Where data matters, deleting a group leaves its last state behind.
            final_snapshot_identifier=f"{rg_id}-final" if args.ctx.protect else None,
            apply_immediately=cfg.apply_immediately,
            notification_topic_arn=self.events_topic.arn,
            log_delivery_configurations=[
                aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                    destination=slow_log.name,
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                )
            ],
            tags={"Name": rg_id},
            opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect),
        )
        self.replication_groups[group] = rg
        self.auth_tokens[group] = pulumi.Output.secret(token.result)
        self.primary_endpoints[group] = rg.primary_endpoint_address
        self.reader_endpoints[group] = rg.reader_endpoint_address
        self.connection_urls[group] = pulumi.Output.secret(
            pulumi.Output.all(token.result, rg.primary_endpoint_address).apply(
                lambda a: connection_url(a[0], a[1], self.args.ctx.ports.redis)
            )
        )
        self._alarms(rg_id, rg, nodes, gcfg.maxmemory_policy)

    def _alarms(self, rg_id: str, rg: aws.elasticache.ReplicationGroup, nodes: int, policy: str) -> None:
        topic = self.args.ctx.alarm_topic_arn
        for n in range(1, nodes + 1):
            member = f"{rg_id}-{n:03d}"  # ElastiCache names a group's nodes <id>-001, -002, ...
            watches = [
                Watch("memory-high", "memory above 80% of maxmemory for 15 minutes", "DatabaseMemoryUsagePercentage", "Maximum", ">", 80),
                Watch("engine-cpu-high", "Redis thread CPU above 80% for 15 minutes", "EngineCPUUtilization", "Average", ">", 80),
            ]
            if policy != "noeviction":
                watches.append(
                    Watch(
                        "evictions-high",
                        "more than 1000 evictions per 5 minutes (undersized) for 15 minutes",
                        "Evictions",
                        "Sum",
                        ">",
                        1000,
                    )
                )
            watch_alarms(REDIS, member, watches, topic, pulumi.ResourceOptions(parent=self, depends_on=[rg]))
