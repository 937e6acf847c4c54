"""The composition root: builds the stage's tiers in dependency order and wires their
outputs into each other's Args. No component reaches into another's internals.

Every component's Args follow one rule: `ctx` (the StageContext, components/context.py),
its own config section (`config`), and the outputs of other tiers. A tier is one method
here returning its components (a typed result where it has several); `__init__` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pulumi_aws as aws

from components.alerting.nat_alarms import NatAlarms, NatAlarmsArgs
from components.alerting.notifications import Notifications, NotificationsArgs, TopicRef
from components.alerting.ws_canary import WsCanary, WsCanaryArgs
from components.cluster.alert_rules import app_rule_groups, cache_rule_groups, turn_rule_groups
from components.cluster.apps import Apps, AppsArgs, DatabaseAccess
from components.cluster.autoscaler import NodeAutoscaler, NodeAutoscalerArgs
from components.cluster.ci_runner import CiRunner, CiRunnerArgs
from components.cluster.cluster import POOL_LABEL, Cluster, ClusterArgs
from components.cluster.ebs_csi import EbsCsi, EbsCsiArgs
from components.cluster.image_cache import ImageCache, ImageCacheArgs, cached_repository
from components.cluster.monitoring import NAMESPACE as MONITORING_NAMESPACE
from components.cluster.monitoring import PROMETHEUS_PORT, PROMETHEUS_SERVICE, Monitoring, MonitoringArgs
from components.cluster.signaling import Signaling, SignalingArgs
from components.cluster.telemetry import Telemetry, TelemetryArgs, grafana_datasources, pods_log_group_arn
from components.cluster.valkey import NAMESPACE as VALKEY_NAMESPACE
from components.cluster.valkey import InClusterCache, InClusterCacheArgs
from components.config import StackConfig
from components.context import StageContext, build_foundation, stage_tags
from components.data.backup import Backup, BackupArgs
from components.data.cache import Cache, CacheArgs
from components.data.data_access import DataPlacement
from components.data.database import Database, DatabaseArgs
from components.data.keys import EdgeLogsKey, EdgeLogsKeyArgs
from components.data.storage import FileStorage, FileStorageArgs
from components.db_capacity import max_connections
from components.edge.cdn import Cdn, CdnArgs
from components.edge.dns import Dns, DnsArgs
from components.edge.edge import ACCESS_LOG_PREFIX, Edge, EdgeArgs
from components.edge.edge_alarms import EdgeAlarms, EdgeAlarmsArgs
from components.edge.waf import Waf, WafArgs
from components.migration import Migration, MigrationArgs, MigrationTargetArgs, nas_redis_url
from components.network import Network, NetworkArgs
from components.schedule import ScheduleArgs, SleepingNodeGroup, SleepSchedule
from components.turn.turn import Turn, TurnArgs

SYSTEM_NODES = {POOL_LABEL: "system"}

A = TypeVar("A")
C = TypeVar("C", bound=pulumi.ComponentResource)


@dataclass(frozen=True)
class EdgeTier:
    """DNS + certificates, WAF (us-east-1), ALB + NLB, CloudFront, and their alarms."""

    dns: Dns
    waf: Waf
    lbs: Edge
    cdn: Cdn
    alarms: EdgeAlarms | None

    @property
    def public_urls(self) -> dict[str, Any]:
        turns = {"turns": self.lbs.turns_url} if self.lbs.turns_url else {}
        return {**self.cdn.public_urls, "signaling": self.lbs.signaling_url, **turns}


@dataclass(frozen=True)
class ClusterTier:
    """EKS, node autoscaling, block storage, the monitoring stack, logs and traces."""

    cluster: Cluster
    autoscaler: NodeAutoscaler | None
    ebs_csi: EbsCsi
    monitoring: Monitoring | None
    telemetry: Telemetry | None


@dataclass(frozen=True)
class AlertingTier:
    """Who hears the alarms, the NAT gateways' alarms and the external WebSocket check."""

    notifications: Notifications
    nat_alarms: NatAlarms
    ws_canary: WsCanary | None


@dataclass(frozen=True)
class DataTier:
    database: Database
    # ElastiCache, or Valkey pods in the cluster (cache.placement): both expose
    # connection_urls / primary_endpoints per group.
    cache: Cache | InClusterCache

    @property
    def elasticache(self) -> Cache | None:
        return self.cache if isinstance(self.cache, Cache) else None


@dataclass(frozen=True)
class ResilienceTier:
    """AWS Backup of the stateful resources (where `backup` is on) and the sleep schedule
    (where `schedule` is on): docs/resilience.md, docs/cost.md."""

    backup: Backup | None
    schedule: SleepSchedule | None


class Platform(pulumi.ComponentResource):
    """Everything one stage declares."""

    def __init__(self, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:platform:Platform", cfg.stage, None, opts)
        self.cfg = cfg
        self.foundation = build_foundation(cfg, self)
        self.ctx = ctx = self.foundation.ctx
        # The flow-log group under the data key (whose policy admits CloudWatch Logs of the account).
        self.network = self._regional("network", Network, NetworkArgs(ctx=ctx, config=cfg.network))
        self.files = self._regional("files", FileStorage, FileStorageArgs(ctx=ctx, config=cfg.storage))
        self.edge = self._edge(cfg, ctx)
        # The file bucket's one policy (TLS-only + read by this distribution through OAC).
        self.files.grant_cloudfront_read(self.edge.cdn.distribution_arn)
        # Its S3 server access logs into the edge's SSE-S3 log bucket.
        self.files.log_access_to(self.edge.lbs.access_log_bucket_name, ACCESS_LOG_PREFIX)
        self.alerting = self._alerting(cfg, ctx)
        self.turn = self._turn(cfg, ctx)
        self.ci_runner = self._ci_runner(cfg, ctx)
        self.cluster = self._cluster(cfg, ctx)
        # Images in-region: ghcr.io through the stage's ECR pull-through cache.
        self.image_cache = self._image_cache(cfg, ctx)
        # The NAS bridge (nas-migration): its DMS security group must exist before the database
        # names it as a client; DMS itself is added once the database exists.
        self.migration = self._migration(cfg, ctx)
        self.data = self._data(cfg, ctx)
        self.resilience = self._resilience(cfg, ctx)
        self.signaling = self._signaling(cfg)
        self.apps = self._apps(cfg, ctx)
        # Every tier has made its alarm topics: subscribe the stage's recipients to all of them.
        self.alerting.notifications.subscribe(self._other_alarm_topics())
        self.outputs = self._outputs(cfg)
        self.register_outputs(self.outputs)

    def _regional(self, name: str, component: Callable[[str, A, pulumi.ResourceOptions], C], args: A) -> C:
        """One of the stage's components: named `<stage>-<name>`, a child of the Platform on
        the stage's regional providers (ctx.regional)."""
        return component(f"{self.ctx.stage}-{name}", args, self.ctx.regional)

    # ------------------------------------------------------------------------ tiers

    def _edge(self, cfg: StackConfig, ctx: StageContext) -> EdgeTier:
        edge, net = cfg.edge, self.network
        # us-east-1 log groups (WAF, Route 53 queries) need a key of their own region.
        logs_key = self._regional("edge-logs-key", EdgeLogsKey, EdgeLogsKeyArgs(ctx=ctx))
        dns = self._regional("dns", Dns, DnsArgs(ctx=ctx, config=edge, query_log_kms_key_arn=logs_key.arn))
        bypass = None
        if edge.load_test_bypass and cfg.load_test_bypass_token is not None:
            bypass = pulumi.Output.secret(cfg.load_test_bypass_token.get_secret_value())
        waf = self._regional("waf", Waf, WafArgs(ctx=ctx, config=edge, bypass_token=bypass, logs_kms_key_arn=logs_key.arn))
        cutover = [cfg.cutover_name] if cfg.cutover_name else []
        lbs = self._regional(
            "edge",
            Edge,
            EdgeArgs(
                ctx=ctx,
                config=edge,
                zone_id=dns.zone_id,
                vpc_id=net.vpc_id,
                vpc_cidr=str(net.plan.vpc),
                azs=net.azs,
                public_subnet_ids=[s.id for s in net.public_subnets],
                internal_subnet_ids=[s.id for s in net.isolated_subnets],
                certificate_arn=dns.regional_certificate_arn,
                apex_aliases=cutover,
                nlb_listeners=cfg.nlb_listeners,
            ),
        )
        cdn = self._regional(
            "cdn",
            Cdn,
            CdnArgs(
                ctx=ctx,
                config=edge,
                zone_id=dns.zone_id,
                certificate_arn=dns.cloudfront_certificate_arn,
                web_acl_arn=waf.web_acl_arn,
                alb_dns_name=lbs.alb_dns_name,
                alb_vpc_origin_id=lbs.alb_vpc_origin_id,
                origin_header_name=lbs.origin_header_name,
                origin_secret_value=lbs.origin_secret_value,
                files_bucket_regional_domain_name=self.files.bucket_regional_domain_name,
                access_log_target=(lbs.access_log_bucket_name, ACCESS_LOG_PREFIX),
                # The migration's cutover name (its weighted records are the migration's).
                extra_aliases=cutover,
            ),
        )
        # ALB/NLB alarms to the regional topic, CloudFront/WAF to a us-east-1 topic.
        alarms = None
        if edge.alarms.enabled:
            alarms = self._regional(
                "edge-alarms",
                EdgeAlarms,
                EdgeAlarmsArgs(
                    ctx=ctx,
                    config=edge.alarms,
                    alb_arn_suffix=lbs.alb_arn_suffix,
                    alb_target_group_arn_suffixes=lbs.alb_target_group_arn_suffixes,
                    nlb_arn_suffix=lbs.nlb_arn_suffix,
                    nlb_target_group_arn_suffixes=lbs.nlb_target_group_arn_suffixes,
                    distribution_id=cdn.distribution_id,
                    web_acl_name=waf.web_acl_name,
                ),
            )
        return EdgeTier(dns, waf, lbs, cdn, alarms)

    def _turn(self, cfg: StackConfig, ctx: StageContext) -> Turn:
        net, lbs = self.network, self.edge.lbs
        return self._regional(
            "turn",
            Turn,
            TurnArgs(
                ctx=ctx,
                config=cfg.turn,
                vpc_id=net.vpc_id,
                vpc_cidr=str(net.plan.vpc),
                subnet_ids=[s.id for s in net.public_subnets],
                azs=net.azs,
                realm=cfg.turn_realm,
                # TURNS terminates on the NLB and reaches the nodes' TCP listening port.
                nlb_security_group_id=lbs.nlb_security_group_id if lbs.nlb_turn_target_group is not None else None,
                nlb_target_group_arn=lbs.nlb_turn_target_group_arn,
                zone_id=self.edge.dns.zone_id,
                domain=cfg.edge.domain,
                tls_host=lbs.turns_host,
            ),
        )

    def _ci_runner(self, cfg: StackConfig, ctx: StageContext) -> CiRunner | None:
        """CI's way to the private API: a runner inside the VPC. It depends on the network only,
        so a first run can create it alone (`tools runner-targets`) before the jobs move onto it."""
        if not cfg.cluster.ci_runner.enabled:
            return None
        return self._regional(
            "ci-runner",
            CiRunner,
            CiRunnerArgs(
                ctx=ctx,
                config=cfg.cluster.ci_runner,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=[s.id for s in self.network.private_subnets],
            ),
        )

    def _cluster(self, cfg: StackConfig, ctx: StageContext) -> ClusterTier:
        stage, net, lbs = cfg.stage, self.network, self.edge.lbs
        cluster = self._regional(
            "cluster",
            Cluster,
            ClusterArgs(
                ctx=ctx,
                config=cfg.cluster,
                vpc_id=net.vpc_id,
                vpc_cidr=str(net.plan.vpc),
                subnet_ids=[s.id for s in net.private_subnets],
                # Pods are ip targets of the ALB and (signaling on it) the NLB: admit those LBs' groups.
                lb_security_group_ids=[
                    lbs.alb_security_group_id,
                    *([lbs.nlb_security_group_id] if lbs.nlb_signaling_target_group is not None else []),
                ],
                # The migration's dual run: pods reach the NAS Redis over the VPN.
                extra_node_egress=(
                    [(cfg.dual_run_redis.port, f"{cfg.dual_run_redis.host}/32", "Dual run: the NAS Redis over the VPN")]
                    if cfg.dual_run_redis is not None
                    else []
                )
                + (
                    [(cfg.dual_run_database.port, f"{cfg.dual_run_database.host}/32", "Dual run: the NAS PostgreSQL over the VPN")]
                    if cfg.dual_run_database is not None
                    else []
                ),
            ),
        )
        if self.ci_runner is not None:
            # The runner's jobs reach the API server's private endpoint (it admits the cluster SG's members only).
            aws.vpc.SecurityGroupIngressRule(
                f"{stage}-eks-api-from-ci-runner",
                security_group_id=cluster.cluster_security_group_id,
                referenced_security_group_id=self.ci_runner.security_group_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="Kubernetes API from the CI runner",
                opts=pulumi.ResourceOptions(parent=cluster, protect=False),
            )
        agent = cluster.addons["eks-pod-identity-agent"]
        # The Cluster Autoscaler moves the node groups' desired size (cluster.py leaves it to
        # it: ignore_changes on scalingConfig.desiredSize).
        autoscaler = None
        if cfg.cluster.autoscaler.enabled:
            autoscaler = self._regional(
                "autoscaler",
                NodeAutoscaler,
                NodeAutoscalerArgs(
                    ctx=ctx,
                    config=cfg.cluster.autoscaler,
                    cluster=cluster.access,
                    node_selector=SYSTEM_NODES,
                    max_graceful_termination_seconds=max(600, cfg.signaling.termination_grace_seconds),
                    depends_on=[*cluster.node_groups, cluster.addons["coredns"]],
                ),
            )
        # Block storage (EBS CSI + gp3 StorageClass) for Prometheus' volume.
        ebs_csi = self._regional(
            "ebs-csi",
            EbsCsi,
            EbsCsiArgs(
                ctx=ctx,
                config=cfg.monitoring,
                cluster=cluster.access,
                controller_node_selector=SYSTEM_NODES,
                depends_on=[*cluster.node_groups, agent],
            ),
        )
        # Prometheus scrapes the signaling pods, prometheus-adapter serves the HPA's
        # connections metric, Alertmanager publishes to the stage's alarm topic.
        monitoring = None
        if cfg.monitoring.enabled:
            monitoring = self._regional(
                "monitoring",
                Monitoring,
                MonitoringArgs(
                    ctx=ctx,
                    config=cfg.monitoring,
                    cluster=cluster.access,
                    storage_class_name=ebs_csi.storage_class_name,
                    node_selector=SYSTEM_NODES,
                    # Critical alerts page through the alerting tier's topic.
                    critical_topic_arn=self.alerting.notifications.critical_topic_arn,
                    rule_groups=[
                        *app_rule_groups(cfg.signaling.namespace),
                        *turn_rule_groups(
                            bandwidth_mbps=cfg.turn.node_bandwidth_mbps * cfg.turn.bandwidth_alarm_percent / 100,
                            allocations=cfg.turn.total_quota * cfg.turn.bandwidth_alarm_percent // 100,
                        ),
                        # The in-cluster cache has no CloudWatch alarm: Prometheus watches its pods.
                        *(cache_rule_groups(VALKEY_NAMESPACE) if cfg.cache.in_cluster else []),
                    ],
                    turn_targets=[(f"{stage}-turn-{i + 1}", node.private_ip) for i, node in enumerate(self.turn.instances)],
                    grafana_datasources=grafana_datasources(
                        cfg.region, "monitoring", cfg.monitoring.logs.enabled, cfg.monitoring.traces.enabled
                    ),
                    grafana_log_group_arn=(
                        pulumi.Output.from_input(ctx.account_id).apply(lambda a: pods_log_group_arn(cfg.region, a, stage))
                        if cfg.monitoring.logs.enabled
                        else None
                    ),
                    # The autoscaler first: on dev the system pods outgrow one t4g.medium (17
                    # pods without prefix delegation) and the monitoring pods need a second node.
                    depends_on=[
                        cluster.monitoring_crds,
                        ebs_csi.storage_class,
                        *cluster.node_groups,
                        *([autoscaler.release] if autoscaler else []),
                    ],
                ),
            )
        # Logs and traces, off the nodes (in the monitoring namespace).
        telemetry = None
        if monitoring is not None and (cfg.monitoring.logs.enabled or cfg.monitoring.traces.enabled):
            telemetry = self._regional(
                "telemetry",
                Telemetry,
                TelemetryArgs(
                    ctx=ctx,
                    config=cfg.monitoring,
                    cluster=cluster.access,
                    namespace="monitoring",
                    access_log_target=(self.edge.lbs.access_log_bucket_name, ACCESS_LOG_PREFIX),
                    node_selector=SYSTEM_NODES,
                    # Only the namespace: logs and traces need nothing else of the stack (and stay off
                    # the first `up`'s critical path).
                    depends_on=[monitoring.namespace_resource],
                ),
            )
        return ClusterTier(cluster, autoscaler, ebs_csi, monitoring, telemetry)

    def _alerting(self, cfg: StackConfig, ctx: StageContext) -> AlertingTier:
        """Subscribers of every alarm topic, the NAT gateways' alarms, and the external
        WebSocket check (on the edge's public URL)."""
        notifications = self._regional("notifications", Notifications, NotificationsArgs(ctx=ctx, config=cfg.notifications))
        net = self.network
        nat_alarms = self._regional(
            "nat-alarms",
            NatAlarms,
            NatAlarmsArgs(ctx=ctx, gateways=[(sfx, g.id) for sfx, g in zip(net.nat_gateway_suffixes, net.nat_gateways, strict=True)]),
        )
        ws_canary = None
        if cfg.monitoring.canary.enabled:
            ws_canary = self._regional(
                "ws-canary",
                WsCanary,
                WsCanaryArgs(
                    ctx=ctx,
                    config=cfg.monitoring.canary,
                    url=self.edge.lbs.signaling_url,
                    critical_topic_arn=notifications.critical_topic_arn,
                ),
            )
        return AlertingTier(notifications, nat_alarms, ws_canary)

    def _other_alarm_topics(self) -> list[TopicRef]:
        """Alarm topics beside the critical and the alarm topic: the us-east-1 edge topic and
        ElastiCache's (unencrypted) events topic (none with the cache in the cluster)."""
        elasticache = self.data.elasticache
        topics = [TopicRef("cache-events", elasticache.events_topic_arn)] if elasticache else []
        if self.edge.alarms:
            topics.append(TopicRef("global", self.edge.alarms.global_alarm_topic_arn, self.ctx.us_east_1))
        return topics

    def _migration(self, cfg: StackConfig, ctx: StageContext) -> Migration | None:
        """The NAS-to-AWS bridge, only while `migration.enabled`."""
        cutover = cfg.cutover_name
        if cfg.migration is None or cutover is None or cfg.dms_source_password is None:
            return None
        net, cdn = self.network, self.edge.cdn
        return self._regional(
            "migration",
            Migration,
            MigrationArgs(
                ctx=ctx,
                config=cfg.migration,
                source_password=pulumi.Output.secret(cfg.dms_source_password.get_secret_value()),
                vpc_id=net.vpc_id,
                vpc_cidr=str(net.plan.vpc),
                private_subnet_ids=[s.id for s in net.private_subnets],
                private_route_table_ids=[t.id for t in net.private_route_tables],
                isolated_route_table_ids=[net.isolated_route_table.id],
                files_bucket_arn=self.files.bucket_arn,
                zone_id=self.edge.dns.zone_id,
                cutover_name=cutover,
                distribution_domain_name=cdn.distribution_domain_name,
                distribution_hosted_zone_id=cdn.distribution_hosted_zone_id,
                secrets_endpoint_security_group_id=(
                    net.endpoint_security_group.id
                    if net.endpoint_security_group is not None and "secretsmanager" in cfg.network.interface_endpoints
                    else None
                ),
            ),
        )

    def _data(self, cfg: StackConfig, ctx: StageContext) -> DataTier:
        """Data stores admit only the nodes' security group (pods share the node ENIs' SG),
        and the database the migration bridge's DMS too."""
        net, clients = self.network, [self.cluster.cluster.node_security_group_id]
        isolated = DataPlacement(vpc_id=net.vpc_id, subnet_ids=[s.id for s in net.isolated_subnets], availability_zones=net.azs)
        db_clients = clients + ([self.migration.dms_security_group_id] if self.migration else [])
        database = self._regional(
            "database",
            Database,
            DatabaseArgs(
                ctx=ctx,
                config=cfg.database,
                placement=isolated,
                allowed_security_group_ids=db_clients,
                # The master secret's rotation function: private subnets (NAT or the endpoint).
                rotation_subnet_ids=[s.id for s in net.private_subnets],
            ),
        )
        if self.migration:
            self.migration.replicate_into(
                MigrationTargetArgs(
                    security_group_id=database.security_group_id,
                    master_secret_arn=database.master_secret_arn,
                    database_name=cfg.database.database_name,
                )
            )
        return DataTier(database, self._cache(cfg, ctx, isolated, clients))

    def _cache(self, cfg: StackConfig, ctx: StageContext, isolated: DataPlacement, clients: list) -> Cache | InClusterCache:
        """ElastiCache in the isolated subnets, or (cache.placement cluster) Valkey pods on the
        system nodes that sleep with them; no ElastiCache resource exists then."""
        if not cfg.cache.in_cluster:
            return self._regional(
                "cache", Cache, CacheArgs(ctx=ctx, config=cfg.cache, placement=isolated, allowed_security_group_ids=clients)
            )
        # The pods land beside the add-ons; signaling and the apps (their namespace) are the clients.
        nodes = self.cluster.cluster
        pods = InClusterCacheArgs(
            ctx=ctx,
            config=cfg.cache,
            cluster=nodes.access,
            client_namespace=cfg.signaling.namespace,
            node_selector=SYSTEM_NODES,
            depends_on=nodes.node_groups,
        )
        return self._regional("cache", InClusterCache, pods)

    def _resilience(self, cfg: StackConfig, ctx: StageContext) -> ResilienceTier:
        stage = cfg.stage
        backup = None
        if cfg.backup_enabled:
            copy_provider = None
            if cfg.backup.copy_region:
                # The second region's provider: the copy vault and its key live there.
                copy_provider = aws.Provider(
                    f"{stage}-aws-{cfg.backup.copy_region}",
                    region=cfg.backup.copy_region,
                    default_tags=aws.ProviderDefaultTagsArgs(tags=stage_tags(cfg)),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            backup = self._regional(
                "backup",
                Backup,
                BackupArgs(
                    ctx=ctx,
                    config=cfg.backup,
                    resources={"database": self.data.database.instance.arn, "files": self.files.bucket_arn},
                    copy_provider=copy_provider,
                ),
            )
        schedule = None
        if cfg.schedule.enabled:
            nat, cluster = self.network.nat_instance, self.cluster.cluster
            schedule = self._regional(
                "schedule",
                SleepSchedule,
                ScheduleArgs(
                    ctx=ctx,
                    config=cfg.schedule,
                    cluster_name=cluster.name,
                    node_groups=[
                        SleepingNodeGroup(
                            ng.node_group_name, ng.scaling_config.min_size, ng.scaling_config.desired_size, ng.scaling_config.max_size
                        )
                        for ng in cluster.node_groups
                    ],
                    db_instance_identifier=self.data.database.instance.identifier,
                    turn_instance_ids=self.turn.instance_ids,
                    nat_asg_name=nat.asg.name if nat is not None else None,
                ),
            )
        return ResilienceTier(backup, schedule)

    def _signaling(self, cfg: StackConfig) -> Signaling:
        cluster = self.cluster.cluster
        return Signaling(
            f"{cfg.stage}-signaling",
            SignalingArgs(
                ctx=self.ctx,
                config=cfg.signaling,
                k8s_provider=cluster.k8s_provider,
                **self._redis_endpoint(cfg),
                turn_shared_secret=self.turn.shared_secret,
                turn_uris=self.turn.turn_uris,
                # Signaling WebSockets enter through the NLB or CloudFront + the ALB (edge.signalingEntry).
                nlb_target_group_arn=self.edge.lbs.nlb_signaling_target_group_arn,
                alb_target_group_arn=self.edge.lbs.alb_signaling_target_group_arn,
                alb_binding_suffix=self._alb_binding_suffix(cfg),
                lb_subnet_cidrs=self._lb_subnet_cidrs(cfg),
                vpc_cidr=str(self.network.plan.vpc),
                node_selector=cluster.signaling_node_selector,
                tolerations=cluster.signaling_tolerations,
                image_repository=self.image_repository(cfg.signaling.image.repository),
                # The TargetGroupBinding webhook and the ServiceMonitor/PrometheusRule CRDs must exist.
                # Not the adapter: an HPA whose metric is not served yet keeps the replica count and
                # retries (the install does not wait on it), so it starts serving once the adapter
                # is up; waiting put ~2 minutes on a first `up`'s critical path (tools plan).
                depends_on=[cluster.lb_controller, cluster.monitoring_crds, *self.image_cache_deps, *self._cache_release()],
            ),
            # Kubernetes only: no AWS provider to inherit.
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _image_cache(self, cfg: StackConfig, ctx: StageContext) -> ImageCache | None:
        self.image_cache_deps: list[pulumi.Resource] = []
        if not cfg.delivery.ghcr_cache:
            return None
        token = pulumi.Output.secret(cfg.ghcr_token.get_secret_value()) if cfg.ghcr_token is not None else None
        cache = self._regional(
            "image-cache",
            ImageCache,
            ImageCacheArgs(ctx=ctx, config=cfg.delivery, ghcr_token=token, node_role_name=self.cluster.cluster.node_role.name),
        )
        # Releases pull through the rule, with the node role allowed to create the cached repositories.
        self.image_cache_deps = [cache.rule, cache.node_policy]
        return cache

    def image_repository(self, repository: str) -> pulumi.Input[str]:
        """Where pods pull `repository` from: the stage's pull-through cache for ghcr.io."""
        if self.image_cache is None:
            return repository
        stage, region = self.ctx.stage, self.ctx.region
        return pulumi.Output.from_input(self.ctx.account_id).apply(lambda acct: cached_repository(repository, acct, region, stage))

    def _apps(self, cfg: StackConfig, ctx: StageContext) -> Apps:
        """The Spring apps: one co-talk release per app, bound to its ALB host's target group."""
        cluster, monitoring, net = self.cluster.cluster, self.cluster.monitoring, self.network
        return self._regional(
            "apps",
            Apps,
            AppsArgs(
                ctx=ctx,
                config=cfg.apps,
                cluster=cluster.access,
                namespace=cfg.signaling.namespace,
                namespace_deps=[self.signaling.namespace],
                delivery=cfg.delivery,
                database=self._app_database(cfg),
                alb_target_group_arns=self.edge.lbs.alb_target_group_arns,
                alb_binding_suffix=self._alb_binding_suffix(cfg),
                lb_subnet_cidrs=self._lb_subnet_cidrs(cfg),
                data_subnet_cidrs=[str(c) for c in net.plan.isolated],
                vpc_cidr=str(net.plan.vpc),
                **self._app_redis(cfg),
                files_bucket_name=self.files.bucket_name,
                files_bucket_arn=self.files.bucket_arn,
                image_repositories={n: self.image_repository(a.image.repository) for n, a in cfg.apps.items()},
                node_selector=cluster.api_node_selector,
                tolerations=cluster.api_tolerations,
                system_node_selector=SYSTEM_NODES,
                prometheus_address=f"http://{PROMETHEUS_SERVICE}.{MONITORING_NAMESPACE}.svc:{PROMETHEUS_PORT}" if monitoring else None,
                zipkin_endpoint=self.cluster.telemetry.zipkin_endpoint if self.cluster.telemetry else None,
                depends_on=[
                    cluster.lb_controller,
                    cluster.monitoring_crds,
                    *self.image_cache_deps,
                    *self._cache_release(),
                ],
            ),
        )

    def _app_database(self, cfg: StackConfig) -> DatabaseAccess:
        """The apps' PostgreSQL: RDS, or during the migration's dual run the NAS PostgreSQL over
        the VPN (RDS is DMS's replication target until the cutover; docs/migration.md step 5)."""
        db = self.data.database
        rds = {
            "identifier": db.instance.identifier,
            "max_connections": max_connections(cfg.database.instance_class, cfg.database.max_connections),
        }
        nas = cfg.dual_run_database
        if nas is None or cfg.nas_app_db_password is None:
            return DatabaseAccess(
                address=db.address,
                port=self.ctx.ports.postgres,
                reader_endpoints=db.reader_endpoints,
                name=cfg.database.database_name,
                username=cfg.database.master_username,
                password=db.master_password.result,
                # Secrets Manager rotates the master password: the apps read the secret, never a copy.
                secret_arn=db.master_secret_arn,
                **rds,
            )
        return DatabaseAccess(
            address=str(nas.host),
            port=nas.port,
            reader_endpoints=[],
            name=nas.database,
            username=nas.username,
            password=pulumi.Output.secret(cfg.nas_app_db_password.get_secret_value()),
            cidrs=[f"{nas.host}/32"],
            sslmode="prefer",
            **rds,
        )

    def _app_redis(self, cfg: StackConfig) -> dict[str, Any]:
        """The apps' Redis uses: the stage's groups, or during the dual run the NAS Redis for every
        use (the NAS runs one Redis; one pub/sub bus for users on both sides)."""
        urls = self.data.cache.connection_urls
        nas = self._nas_redis(cfg)
        if nas is not None:
            return {"redis_urls": dict.fromkeys(urls, nas["redis_url"]), "redis_egress": nas["redis_egress"]}
        return {"redis_urls": urls, **self._cache_egress(urls)}

    def _cache_release(self) -> list[pulumi.Resource]:
        """The in-cluster Valkey release (atomic: its pods are ready) before its clients start."""
        cache = self.data.cache
        return [cache.release] if isinstance(cache, InClusterCache) else []

    def _redis_endpoint(self, cfg: StackConfig) -> dict[str, Any]:
        """REDIS_URL of the signaling pods and where the NetworkPolicy lets them reach it: the
        stage's ElastiCache group, or during the migration's dual run the NAS Redis over the VPN
        (one pub/sub bus for users on both sides; docs/migration.md step 5)."""
        group = cfg.signaling.redis_group
        return self._nas_redis(cfg) or {"redis_url": self.data.cache.connection_urls[group], **self._cache_egress([group])}

    @staticmethod
    def _nas_redis(cfg: StackConfig) -> dict[str, Any] | None:
        """During the migration's dual run: the NAS Redis (its URL, a secret, and the /32 the
        NetworkPolicy admits); otherwise None."""
        nas = cfg.dual_run_redis
        if nas is None or cfg.nas_redis_password is None:
            return None
        url = nas_redis_url(nas, cfg.nas_redis_password.get_secret_value())
        return {"redis_url": pulumi.Output.secret(url), "redis_egress": ([f"{nas.host}/32"], nas.port)}

    def _cache_egress(self, groups: Iterable[str]) -> dict[str, Any]:
        """In-cluster groups: the clients' NetworkPolicy egress names each group's Service selector
        (a ClusterIP lies in no subnet) on the Valkey port. ElastiCache: nothing, the charts admit
        the isolated subnets by default."""
        cache = self.data.cache
        if not isinstance(cache, InClusterCache):
            return {}
        return {"redis_egress": ([cache.egress[g] for g in groups], self.ctx.ports.redis)}

    def _lb_subnet_cidrs(self, cfg: StackConfig) -> list[str]:
        """Where the load balancers' addresses come from, which the pods' NetworkPolicy admits on
        their traffic and health ports: the ALB's subnets (the isolated ones when it is internal:
        no pod lives there) and the NLB's (public)."""
        plan = self.network.plan
        alb = plan.isolated if cfg.edge.alb_internal else plan.public
        nlb = plan.public if self.edge.lbs.nlb is not None else []
        return [str(c) for c in dict.fromkeys([*alb, *nlb])]

    @staticmethod
    def _alb_binding_suffix(cfg: StackConfig) -> str:
        """The charts' ALB TargetGroupBinding name suffix: a binding's target group ARN is
        immutable, so the internal ALB's new groups get new bindings (the old ones, kept by
        Helm, serve until CloudFront has moved; docs/edge.md "Moving a live stage")."""
        return "-internal" if cfg.edge.alb_internal else ""

    # ---------------------------------------------------------------------- outputs

    def _outputs(self, cfg: StackConfig) -> dict[str, Any]:
        found, net, edge, lbs, cdn = self.foundation, self.network, self.edge, self.edge.lbs, self.edge.cdn
        db, cache, cluster, monitoring, turn = self.data.database, self.data.cache, self.cluster.cluster, self.cluster.monitoring, self.turn
        telemetry, elasticache = self.cluster.telemetry, self.data.elasticache
        outputs = {
            "region": cfg.region,
            "alarmTopicArn": found.alarm_topic.arn,
            "vpcId": net.vpc_id,
            "azs": net.azs,
            "publicSubnetIds": net.public_subnet_ids,
            "privateSubnetIds": net.private_subnet_ids,
            "isolatedSubnetIds": net.isolated_subnet_ids,
            "dataKeyArn": found.data_key.arn,
            "dbEndpoint": db.endpoint,
            "dbAddress": db.address,
            "dbPort": db.port,
            "dbReaderEndpoints": db.reader_endpoints,
            "dbMasterSecretArn": db.master_secret_arn,
            "dbName": cfg.database.database_name,
            "cacheEndpoints": cache.primary_endpoints,
            # In-cluster groups have no replica (no reader endpoint) and no ElastiCache events.
            "cacheReaderEndpoints": elasticache.reader_endpoints if elasticache else None,
            "cacheUrls": pulumi.Output.secret(cache.connection_urls),
            # ElastiCache's events (failover, replacement): unencrypted, ElastiCache cannot use SSE topics.
            "cacheEventsTopicArn": elasticache.events_topic_arn if elasticache else None,
            "filesBucketName": self.files.bucket_name,
            "backupVaultName": self.resilience.backup.vault.name if self.resilience.backup else None,
            "backupCopyVaultArn": (
                self.resilience.backup.copy_vault.arn if self.resilience.backup and self.resilience.backup.copy_vault else None
            ),
            "sleepScheduleGroup": self.resilience.schedule.group.name if self.resilience.schedule else None,
            "filesBucketArn": self.files.bucket_arn,
            "turnPublicIps": turn.public_ips,
            "turnPrivateIps": [n.private_ip for n in turn.instances],
            "criticalTopicArn": self.alerting.notifications.critical_topic_arn,
            "podLogGroup": telemetry.log_group.name if telemetry and telemetry.log_group else None,
            "zipkinEndpoint": telemetry.zipkin_endpoint if telemetry else None,
            "wsCheckFunction": self.alerting.ws_canary.function.name if self.alerting.ws_canary else None,
            "turnIceServers": turn.ice_servers,
            "turnSecretArn": turn.secret_arn,
            "clusterName": cluster.name,
            "clusterEndpoint": cluster.endpoint,
            "nodeSecurityGroupId": cluster.node_security_group_id,
            "signalingNamespace": cfg.signaling.namespace,
            "appReleases": {n: r.name for n, r in self.apps.releases.items()},
            "appRoleArns": {n: r.role.arn for n, r in self.apps.roles.items()},
            "ghcrCacheCredentialSecretArn": self.image_cache.credential_secret_arn if self.image_cache else None,
            "monitoringNamespace": monitoring.namespace if monitoring else None,
            "grafanaAdminSecretName": monitoring.grafana_admin_secret_name if monitoring else None,
            # edge
            "domain": cfg.edge.domain,
            "zoneId": edge.dns.zone_id,
            "nameServers": edge.dns.name_servers,
            "distributionArn": cdn.distribution_arn,
            "distributionDomainName": cdn.distribution_domain_name,
            "webBucketName": cdn.web_bucket_name,
            "publicUrls": edge.public_urls,
            "albArn": lbs.alb_arn,
            "albDnsName": lbs.alb_dns_name,
            "albSecurityGroupId": lbs.alb_security_group_id,
            "albTargetGroupArns": lbs.alb_target_group_arns,
            "nlbArn": lbs.nlb_arn,
            "nlbDnsName": lbs.nlb_dns_name,
            "nlbStaticIps": lbs.nlb_static_ips,
            "nlbSecurityGroupId": lbs.nlb_security_group_id,
            "nlbSignalingTargetGroupArn": lbs.nlb_signaling_target_group_arn,
            "nlbTurnTargetGroupArn": lbs.nlb_turn_target_group_arn,
            "originSecretArn": lbs.origin_secret_arn,
            "webAclArn": edge.waf.web_acl_arn,
            # us-east-1 topic of the CloudFront/WAF alarms (subscribed like the alarm topic: notifications.warningEmails, Slack).
            "globalAlarmTopicArn": edge.alarms.global_alarm_topic_arn if edge.alarms else None,
            "ciRunnerProject": self.ci_runner.project.name if self.ci_runner else None,
        }
        if self.migration:
            mig = self.migration
            outputs.update(
                {
                    "vpnConnectionId": mig.vpn_connection_id,
                    "vpnTunnelIps": mig.vpn_tunnel_ips,
                    "vpnCustomerGatewayConfiguration": mig.vpn_customer_gateway_configuration,
                    "dmsReplicationTaskArn": mig.dms_replication_task_arn,
                    "minioMirrorSecretArn": mig.minio_mirror_secret_arn,
                    "cutoverName": mig.cutover_name,
                    "cutoverWeights": mig.dns_weights,
                }
            )
        if lbs.alb_vpc_origin_id is not None:
            # An internal ALB: how CloudFront reaches it. Internet-facing stages keep today's
            # outputs exactly (the Edge component records albScheme for every stage).
            outputs.update({"albScheme": cfg.edge.alb_scheme, "vpcOriginId": lbs.alb_vpc_origin_id, "vpcOriginArn": lbs.alb_vpc_origin_arn})
        if lbs.nlb is None:  # no NLB (edge.signalingEntry cdn, turn.tlsEntry none): no nlb* outputs
            outputs = {k: v for k, v in outputs.items() if not k.startswith("nlb")}
        return outputs
