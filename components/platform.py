"""The composition root: builds the stage's components in dependency order and wires
their outputs into each other's Args. No component reaches into another's internals."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.apps import Apps, AppsArgs
from components.autoscaler import NodeAutoscaler, NodeAutoscalerArgs
from components.cache import Cache, CacheArgs
from components.cdn import Cdn, CdnArgs
from components.cluster import POOL_LABEL, Cluster, ClusterArgs
from components.config import APP_MANAGEMENT_PORT, PROJECT, StackConfig
from components.database import Database, DatabaseArgs
from components.dns import Dns, DnsArgs
from components.ebs_csi import EbsCsi, EbsCsiArgs
from components.edge import Edge, EdgeArgs
from components.edge_alarms import EdgeAlarms, EdgeAlarmsArgs
from components.image_cache import ImageCache, ImageCacheArgs, cached_repository
from components.keys import DataKey, DataKeyArgs
from components.migration import Migration, MigrationArgs, MigrationTargetArgs
from components.monitoring import NAMESPACE as MONITORING_NAMESPACE
from components.monitoring import PROMETHEUS_PORT, PROMETHEUS_SERVICE, Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.signaling import Signaling, SignalingArgs
from components.storage import FileStorage, FileStorageArgs
from components.turn import Turn, TurnArgs
from components.waf import Waf, WafArgs


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

        # The edge: DNS + certificates, WAF (us-east-1), ALB + NLB, CloudFront.
        self._edge(cfg, regional)
        # The file bucket's one policy (TLS-only + read by this distribution through OAC).
        self.files.grant_cloudfront_read(self.distribution_arn)

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
                # TURNS (5349) terminates on the NLB and reaches the nodes' TCP 3478.
                nlb_security_group_id=self.nlb_security_group_id,
                nlb_target_group_arn=self.nlb_turn_target_group_arn,
                zone_id=self.zone_id,
                domain=cfg.edge.domain,
                tls_host=self.edge.turns_host,
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
                # Pods are ip targets of the ALB and the NLB: admit both LBs' security groups.
                lb_security_group_ids=[self.alb_security_group_id, self.nlb_security_group_id],
                extra_lb_ports=[APP_MANAGEMENT_PORT],
                protect_data=cfg.protect_data,
            ),
            opts=regional,
        )

        # Images in-region: ghcr.io through the stage's ECR pull-through cache.
        self.image_cache = self._image_cache(cfg, regional)

        # Node autoscaling: the Cluster Autoscaler moves the node groups' desired size
        # (cluster.py leaves it to it: ignore_changes on scalingConfig.desiredSize).
        self.autoscaler: NodeAutoscaler | None = None
        if cfg.cluster.autoscaler.enabled:
            self.autoscaler = NodeAutoscaler(
                f"{stage}-autoscaler",
                NodeAutoscalerArgs(
                    stage=stage,
                    region=cfg.region,
                    account_id=self.account_id,
                    cluster_name=self.cluster.name,
                    cluster_arn=self.cluster.arn,
                    k8s_provider=self.cluster.k8s_provider,
                    config=cfg.cluster.autoscaler,
                    node_selector={POOL_LABEL: "system"},
                    high_availability=cfg.protect_data,
                    max_graceful_termination_seconds=max(600, cfg.signaling.termination_grace_seconds),
                    pod_identity_agent=self.cluster.addons["eks-pod-identity-agent"],
                    depends_on=[*self.cluster.node_groups, self.cluster.addons["coredns"]],
                ),
                opts=regional,
            )

        # The NAS bridge (nas-migration): its DMS security group must exist before the database
        # names it as a client; DMS itself is added once the database exists.
        self.migration = self._migration(cfg, regional)

        # Data stores admit only the nodes' security group (pods share the node ENIs' SG).
        data_clients = [self.cluster.node_security_group_id]
        db_clients = data_clients + ([self.migration.dms_security_group_id] if self.migration else [])
        self.database = Database(
            f"{stage}-database",
            DatabaseArgs(
                stage=stage,
                vpc_id=self.network.vpc_id,
                subnet_ids=[s.id for s in self.network.isolated_subnets],
                allowed_security_group_ids=db_clients,
                config=cfg.database,
                protect=cfg.protect_data,
                account_id=self.account_id,
                kms_key_arn=self.data_key.arn,
                alarm_topic_arn=self.alarm_topic.arn,
                availability_zones=cfg.network.azs,
            ),
            opts=regional,
        )
        if self.migration:
            self.migration.replicate_into(
                MigrationTargetArgs(
                    security_group_id=self.database.security_group_id,
                    master_secret_arn=self.database.master_secret_arn,
                    database_name=cfg.database.database_name,
                )
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

        # Block storage (EBS CSI + gp3 StorageClass) and the monitoring stack: Prometheus
        # scrapes the signaling pods, prometheus-adapter serves the HPA's connections metric.
        system_nodes = {POOL_LABEL: "system"}
        self.ebs_csi = EbsCsi(
            f"{stage}-ebs-csi",
            EbsCsiArgs(
                stage=stage,
                account_id=self.account_id,
                cluster_name=self.cluster.name,
                cluster_arn=self.cluster.arn,
                k8s_provider=self.cluster.k8s_provider,
                addon_version=cfg.monitoring.ebs_csi_driver_addon_version,
                controller_node_selector=system_nodes,
                retain_volumes=cfg.protect_data,
                depends_on=[*self.cluster.node_groups, self.cluster.addons["eks-pod-identity-agent"]],
            ),
            opts=regional,
        )
        self.monitoring = None
        if cfg.monitoring.enabled:
            self.monitoring = Monitoring(
                f"{stage}-monitoring",
                MonitoringArgs(
                    stage=stage,
                    k8s_provider=self.cluster.k8s_provider,
                    config=cfg.monitoring,
                    storage_class_name=self.ebs_csi.storage_class_name,
                    # Alertmanager publishes to the stage's alarm topic (monitoring.alertsToSns).
                    region=cfg.region,
                    account_id=self.account_id,
                    cluster_name=self.cluster.name,
                    cluster_arn=self.cluster.arn,
                    alarm_topic_arn=self.alarm_topic.arn,
                    alarm_topic_key_arn=self.data_key.arn,
                    pod_identity_agent=self.cluster.addons["eks-pod-identity-agent"],
                    node_selector=system_nodes,
                    # The autoscaler first: on dev the system pods outgrow one t4g.medium (17
                    # pods without prefix delegation) and the monitoring pods need a second node.
                    depends_on=[
                        self.cluster.monitoring_crds,
                        self.ebs_csi.storage_class,
                        *self.cluster.node_groups,
                        *([self.autoscaler.release] if self.autoscaler else []),
                    ],
                ),
                opts=regional,
            )

        self.signaling = Signaling(
            f"{stage}-signaling",
            SignalingArgs(
                stage=stage,
                k8s_provider=self.cluster.k8s_provider,
                config=cfg.signaling,
                image_repository=self.image_repository(cfg.signaling.image.repository),
                redis_url=self.cache.connection_urls[cfg.signaling.redis_group],
                turn_shared_secret=self.turn.shared_secret,
                turn_uris=self.turn.turn_uris,
                # Signaling WebSockets enter through the NLB (ws.<domain>). The ALB's target
                # groups serve the API/admin deployments, which this release does not own.
                alb_target_group_arn=None,
                nlb_target_group_arn=self.nlb_signaling_target_group_arn,
                lb_subnet_cidrs=[str(c) for c in self.network.plan.public],
                vpc_cidr=str(cfg.network.cidr),
                node_selector=self.cluster.signaling_node_selector,
                tolerations=self.cluster.signaling_tolerations,
                # The adapter must serve websocket_connections before the HPA asks for it.
                depends_on=[
                    self.cluster.lb_controller,
                    self.cluster.monitoring_crds,
                    *([self.monitoring.adapter] if self.monitoring else []),
                    *self.image_cache_deps,
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.apps = self._apps(cfg, regional)

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
            "appReleases": {n: r.name for n, r in self.apps.releases.items()},
            "appRoleArns": {n: r.role.arn for n, r in self.apps.roles.items()},
            "ghcrCacheCredentialSecretArn": self.image_cache.credential_secret_arn if self.image_cache else None,
            "monitoringNamespace": self.monitoring.namespace if self.monitoring else None,
            "grafanaAdminSecretName": self.monitoring.grafana_admin_secret_name if self.monitoring else None,
            # edge
            "domain": self.domain,
            "zoneId": self.zone_id,
            "nameServers": self.dns.name_servers,
            "distributionArn": self.distribution_arn,
            "distributionDomainName": self.distribution_domain_name,
            "webBucketName": self.cdn.web_bucket_name,
            "publicUrls": self.public_urls,
            "albArn": self.edge.alb_arn,
            "albDnsName": self.edge.alb_dns_name,
            "albSecurityGroupId": self.alb_security_group_id,
            "albTargetGroupArns": self.alb_target_group_arns,
            "nlbArn": self.edge.nlb_arn,
            "nlbDnsName": self.edge.nlb_dns_name,
            "nlbStaticIps": self.edge.nlb_static_ips,
            "nlbSecurityGroupId": self.nlb_security_group_id,
            "nlbSignalingTargetGroupArn": self.nlb_signaling_target_group_arn,
            "nlbTurnTargetGroupArn": self.nlb_turn_target_group_arn,
            "originSecretArn": self.origin_secret_arn,
            "webAclArn": self.waf.web_acl_arn,
            # us-east-1 topic of the CloudFront/WAF alarms; nothing subscribes to it (nor to alarmTopicArn).
            "globalAlarmTopicArn": self.edge_alarms.global_alarm_topic_arn if self.edge_alarms else None,
        }
        if self.migration:
            self.outputs.update(
                {
                    "vpnConnectionId": self.migration.vpn_connection_id,
                    "vpnTunnelIps": self.migration.vpn_tunnel_ips,
                    "vpnCustomerGatewayConfiguration": self.migration.vpn_customer_gateway_configuration,
                    "dmsReplicationTaskArn": self.migration.dms_replication_task_arn,
                    "minioMirrorSecretArn": self.migration.minio_mirror_secret_arn,
                    "cutoverName": self.migration.cutover_name,
                    "cutoverWeights": self.migration.dns_weights,
                }
            )
        self.register_outputs(self.outputs)

    def _image_cache(self, cfg: StackConfig, regional: pulumi.ResourceOptions) -> ImageCache | None:
        self.image_cache_deps: list[pulumi.Resource] = []
        if not cfg.delivery.ghcr_cache:
            return None
        token = pulumi.Output.secret(cfg.ghcr_token.get_secret_value()) if cfg.ghcr_token is not None else None
        cache = ImageCache(
            f"{cfg.stage}-image-cache",
            ImageCacheArgs(
                stage=cfg.stage,
                ghcr_username=cfg.delivery.ghcr_username,
                ghcr_token=token,
                account_id=self.account_id,
                region=cfg.region,
                node_role_name=self.cluster.node_role.name,
            ),
            opts=regional,
        )
        # Releases pull through the rule, with the node role allowed to create the cached repositories.
        self.image_cache_deps = [cache.rule, cache.node_policy]
        return cache

    def image_repository(self, repository: str) -> pulumi.Input[str]:
        """Where pods pull `repository` from: the stage's pull-through cache for ghcr.io."""
        if self.image_cache is None:
            return repository
        stage, region = self.cfg.stage, self.cfg.region
        return self.account_id.apply(lambda acct: cached_repository(repository, acct, region, stage))

    def _apps(self, cfg: StackConfig, regional: pulumi.ResourceOptions) -> Apps:
        """The Spring apps: one co-talk release per app, bound to its ALB host's target group."""
        return Apps(
            f"{cfg.stage}-apps",
            AppsArgs(
                stage=cfg.stage,
                region=cfg.region,
                account_id=self.account_id,
                apps=cfg.apps,
                database=cfg.database,
                k8s_provider=self.cluster.k8s_provider,
                namespace=cfg.signaling.namespace,
                namespace_deps=[self.signaling.namespace],
                cluster_name=self.cluster.name,
                cluster_arn=self.cluster.arn,
                pod_identity_agent=self.cluster.addons["eks-pod-identity-agent"],
                alb_target_group_arns=self.alb_target_group_arns,
                lb_subnet_cidrs=[str(c) for c in self.network.plan.public],
                data_subnet_cidrs=[str(c) for c in self.network.plan.isolated],
                vpc_cidr=str(cfg.network.cidr),
                db_address=self.database.address,
                db_reader_endpoints=self.database.reader_endpoints,
                db_username=cfg.database.master_username,
                db_password=self.database.master_password.result,
                db_instance_identifier=self.database.instance.identifier,
                redis_urls=self.cache.connection_urls,
                files_bucket_name=self.files.bucket_name,
                files_bucket_arn=self.files.bucket_arn,
                files_key_arn=self.data_key.arn,
                alarm_topic_arn=self.alarm_topic.arn,
                image_repositories={n: self.image_repository(a.image.repository) for n, a in cfg.apps.items()},
                node_selector=self.cluster.api_node_selector,
                tolerations=self.cluster.api_tolerations,
                system_node_selector={POOL_LABEL: "system"},
                rollouts_chart_version=cfg.delivery.argo_rollouts_chart_version,
                monitoring=cfg.monitoring.enabled,
                prometheus_address=f"http://{PROMETHEUS_SERVICE}.{MONITORING_NAMESPACE}.svc:{PROMETHEUS_PORT}",
                high_availability=cfg.protect_data,
                depends_on=[
                    self.cluster.lb_controller,
                    self.cluster.monitoring_crds,
                    *([self.monitoring.stack] if self.monitoring else []),
                    *self.image_cache_deps,
                ],
            ),
            opts=regional,
        )

    def _migration(self, cfg: StackConfig, regional: pulumi.ResourceOptions) -> Migration | None:
        """The NAS-to-AWS bridge, only while `migration.enabled`."""
        cutover = cfg.cutover_name
        if cfg.migration is None or cutover is None or cfg.dms_source_password is None:
            return None
        stage = cfg.stage
        return Migration(
            f"{stage}-migration",
            MigrationArgs(
                stage=stage,
                region=cfg.region,
                account_id=self.account_id,
                config=cfg.migration,
                source_password=pulumi.Output.secret(cfg.dms_source_password.get_secret_value()),
                protect=cfg.protect_data,
                vpc_id=self.network.vpc_id,
                vpc_cidr=str(cfg.network.cidr),
                private_subnet_ids=[s.id for s in self.network.private_subnets],
                private_route_table_ids=[t.id for t in self.network.private_route_tables],
                isolated_route_table_ids=[self.network.isolated_route_table.id],
                kms_key_arn=self.data_key.arn,
                alarm_topic_arn=self.alarm_topic.arn,
                files_bucket_arn=self.files.bucket_arn,
                zone_id=self.zone_id,
                cutover_name=cutover,
                distribution_domain_name=self.distribution_domain_name,
                distribution_hosted_zone_id=self.cdn.distribution_hosted_zone_id,
                secrets_endpoint_security_group_id=(
                    self.network.endpoint_security_group.id
                    if self.network.endpoint_security_group is not None and "secretsmanager" in cfg.network.interface_endpoints
                    else None
                ),
            ),
            opts=regional,
        )

    def _edge(self, cfg: StackConfig, regional: pulumi.ResourceOptions) -> None:
        """DNS + certificates, WAF (us-east-1), load balancers, CloudFront."""
        stage, edge = cfg.stage, cfg.edge
        self.dns = Dns(
            f"{stage}-dns",
            DnsArgs(
                stage=stage,
                domain=edge.domain,
                hosted_zone_id=edge.hosted_zone_id,
                us_east_1_provider=self.aws_us_east_1,
                protect=cfg.protect_data,
            ),
            opts=regional,
        )
        bypass = None
        if edge.load_test_bypass and cfg.load_test_bypass_token is not None:
            bypass = pulumi.Output.secret(cfg.load_test_bypass_token.get_secret_value())
        self.waf = Waf(
            f"{stage}-waf",
            WafArgs(
                stage=stage,
                us_east_1_provider=self.aws_us_east_1,
                auth_per_minute=edge.rate_limits.auth_per_minute,
                websocket_per_second=edge.rate_limits.websocket_per_second,
                general_per_second=edge.rate_limits.general_per_second,
                auth_paths=edge.rate_limits.auth_paths,
                websocket_paths=edge.rate_limits.websocket_paths,
                log_retention_days=edge.log_retention_days,
                allow_list=[str(c) for c in edge.allow_list],
                restrict_to_allow_list=edge.restrict_to_allow_list,
                bypass_token=bypass,
            ),
            opts=regional,
        )
        self.edge = Edge(
            f"{stage}-edge",
            EdgeArgs(
                stage=stage,
                region=cfg.region,
                account_id=self.account_id,
                domain=edge.domain,
                zone_id=self.dns.zone_id,
                vpc_id=self.network.vpc_id,
                vpc_cidr=str(cfg.network.cidr),
                azs=cfg.network.azs,
                public_subnet_ids=[s.id for s in self.network.public_subnets],
                certificate_arn=self.dns.regional_certificate_arn,
                alb_hosts=edge.alb_hosts,
                apex_aliases=[cfg.cutover_name] if cfg.cutover_name else [],
                alb_deletion_protection=edge.alb_deletion_protection,
                nlb_deletion_protection=edge.nlb_deletion_protection,
                nlb_static_ips=edge.nlb_static_ips,
                # Stages behind an allow-list keep the NLB to the same ranges.
                nlb_ingress_cidrs=[str(c) for c in edge.allow_list] if edge.restrict_to_allow_list else ["0.0.0.0/0"],
                turn_tls_port=cfg.turn.tls_port,
                turn_port=cfg.turn.listening_port,
                log_retention_days=edge.log_retention_days,
                protect=cfg.protect_data,
            ),
            opts=regional,
        )
        self.cdn = Cdn(
            f"{stage}-cdn",
            CdnArgs(
                stage=stage,
                account_id=self.account_id,
                domain=edge.domain,
                zone_id=self.dns.zone_id,
                certificate_arn=self.dns.cloudfront_certificate_arn,
                web_acl_arn=self.waf.web_acl_arn,
                alb_dns_name=self.edge.alb_dns_name,
                alb_host_names=[h.name for h in edge.alb_hosts],
                origin_header_name=self.edge.origin_header_name,
                origin_secret_value=self.edge.origin_secret_value,
                price_class=edge.price_class,
                content_security_policy=edge.content_security_policy,
                log_retention_days=edge.log_retention_days,
                protect=cfg.protect_data,
                files_bucket_regional_domain_name=self.files.bucket_regional_domain_name,
                # The migration's cutover name (its weighted records are the migration's).
                extra_aliases=[cfg.cutover_name] if cfg.cutover_name else [],
            ),
            opts=regional,
        )
        # Alarms on the edge: ALB/NLB to the regional topic, CloudFront/WAF to a us-east-1 topic.
        self.edge_alarms: EdgeAlarms | None = None
        if edge.alarms.enabled:
            self.edge_alarms = EdgeAlarms(
                f"{stage}-edge-alarms",
                EdgeAlarmsArgs(
                    stage=stage,
                    account_id=self.account_id,
                    config=edge.alarms,
                    alarm_topic_arn=self.alarm_topic.arn,
                    us_east_1_provider=self.aws_us_east_1,
                    alb_arn_suffix=self.edge.alb_arn_suffix,
                    alb_target_group_arn_suffixes=self.edge.alb_target_group_arn_suffixes,
                    nlb_arn_suffix=self.edge.nlb_arn_suffix,
                    nlb_target_group_arn_suffixes=self.edge.nlb_target_group_arn_suffixes,
                    distribution_id=self.cdn.distribution_id,
                    web_acl_name=self.waf.web_acl_name,
                    protect=cfg.protect_data,
                ),
                opts=regional,
            )
        # What the other tiers bind to.
        self.zone_id = self.dns.zone_id
        self.domain = edge.domain
        self.alb_target_group_arns = self.edge.alb_target_group_arns
        self.nlb_signaling_target_group_arn = self.edge.nlb_signaling_target_group_arn
        self.nlb_turn_target_group_arn = self.edge.nlb_turn_target_group_arn
        self.alb_security_group_id = self.edge.alb_security_group_id
        self.nlb_security_group_id = self.edge.nlb_security_group_id
        self.distribution_arn = self.cdn.distribution_arn
        self.distribution_domain_name = self.cdn.distribution_domain_name
        self.origin_secret_arn = self.edge.origin_secret_arn
        self.public_urls = {
            **self.cdn.public_urls,
            "signaling": self.edge.signaling_url,
            "turns": self.edge.turns_url,
        }
