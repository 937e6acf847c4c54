"""The Spring Boot apps (co-talk) on the platform: one release of `charts/co-talk` per app
(`co-talk-<name>`), in the signaling namespace, bound to its ALB host's target group.

Per app: a Kubernetes Secret with the database credentials and the Redis URLs (Pulumi secret
Outputs, encrypted in state; the values carry only the Secret's name), a Pod Identity role
scoped to the file bucket and its KMS key, and the Helm release. Shared: Argo Rollouts (the
canary controller, pinned chart, on the system nodes) and a DatabaseConnections alarm at 80 %
of the writer's computed max_connections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.core import v1 as core
from pulumi_kubernetes.helm import v3 as helm

from components.cloudwatch import metric_alarm
from components.cluster.pod_identity import ClusterAccess, PodRoles
from components.cluster.releases import helm_release, part_of_labels
from components.cluster.valkey import redis_egress_values
from components.config import AppConfig, DeliveryConfig
from components.context import StageContext
from components.data.storage import FILES_KEY_PREFIX
from components.db_capacity import alarm_threshold
from components.iam import allow, key_via_service, policy_document

CHART_PATH = "./charts/co-talk"
ROLLOUTS_REPO = "https://argoproj.github.io/argo-helm"
ROLLOUTS_NAMESPACE = "argo-rollouts"


def release_name(app: str) -> str:
    return f"co-talk-{app}"


def secret_name(app: str) -> str:
    return f"{release_name(app)}-config"


def redis_key(use: str) -> str:
    return f"REDIS_{use.upper().replace('-', '_')}_URL"


def jdbc_url(
    hosts: Sequence[str], database: str, *, reader: bool, sslmode: str = "require", secret: str | None = None, region: str = ""
) -> str:
    """pgjdbc URL; the reader spreads connections over the replicas and never writes. With
    `secret`, the AWS Advanced JDBC Wrapper logs in with the credentials of that Secrets Manager
    secret, read at connect time and again after a failed login: a rotated password is picked
    up without a restart."""
    scheme = "jdbc:aws-wrapper:postgresql" if secret else "jdbc:postgresql"
    url = f"{scheme}://{','.join(hosts)}/{database}?sslmode={sslmode}"
    if secret:
        url += f"&wrapperPlugins=awsSecretsManager&secretsManagerSecretId={secret}&secretsManagerRegion={region}"
    if reader:
        url += "&targetServerType=preferSecondary&loadBalanceHosts=true&readOnly=true"
    return url


def app_policy(bucket_arn: str, key_arn: str, region: str, db_secret_arn: str | None = None) -> str:
    """Read/write users' files (the bucket's `files/` keys, which CloudFront serves; no bucket
    configuration), the data key only through S3, and the database secret (read, through
    Secrets Manager) where the apps log in with it."""
    secret = []
    if db_secret_arn:
        secret = [
            allow("DatabaseSecret", "secretsmanager:GetSecretValue", db_secret_arn),
            key_via_service("DatabaseSecretKey", "kms:Decrypt", key_arn, "secretsmanager", region),
        ]
    return policy_document(
        [
            *secret,
            allow("ListFiles", "s3:ListBucket", bucket_arn, StringLike={"s3:prefix": f"{FILES_KEY_PREFIX}*"}),
            allow(
                "Files",
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                f"{bucket_arn}/{FILES_KEY_PREFIX}*",
            ),
            key_via_service("FilesKey", ["kms:Decrypt", "kms:GenerateDataKey"], key_arn, "s3", region),
        ]
    )


@dataclass(frozen=True)
class DatabaseAccess:
    """What the apps need of the data tier's PostgreSQL: where, as whom, and how many
    connections the writer takes (the capacity check's max_connections)."""

    address: pulumi.Input[str]
    port: int
    # host:port of each read replica (none: reads go to the writer).
    reader_endpoints: Sequence[pulumi.Input[str]]
    name: str
    username: str
    password: pulumi.Input[str]  # secret Output; unused where `secret_arn` is set
    # The RDS writer the DatabaseConnections alarm watches, and its computed max_connections.
    identifier: pulumi.Input[str]
    max_connections: int | None
    # Where the NetworkPolicy lets the pods reach it; None: the isolated subnets (RDS).
    cidrs: Sequence[str] | None = None
    # RDS forces TLS; the NAS PostgreSQL of the dual run is reached through the IPsec tunnel.
    sslmode: str = "require"
    # The Secrets Manager secret the apps log in with (RDS: the master secret, which Secrets
    # Manager rotates); None: the username and password go into the app's Kubernetes Secret.
    secret_arn: pulumi.Input[str] | None = None


@dataclass
class AppsArgs:
    ctx: StageContext
    # apps.* (name -> app).
    config: Mapping[str, AppConfig]
    # delivery.* (the Argo Rollouts chart).
    delivery: DeliveryConfig
    cluster: ClusterAccess
    namespace: str
    database: DatabaseAccess
    # ALB host name -> target group ARN (edge).
    alb_target_group_arns: Mapping[str, pulumi.Input[str]]
    lb_subnet_cidrs: Sequence[str]
    data_subnet_cidrs: Sequence[str]
    vpc_cidr: str
    # Redis URL per use (secret Outputs), and where the NetworkPolicy lets the pods reach them:
    # (CIDRs, port), or None for the isolated subnets (ElastiCache).
    redis_urls: Mapping[str, pulumi.Input[str]]
    files_bucket_name: pulumi.Input[str]
    files_bucket_arn: pulumi.Input[str]
    # Image repository per app after the pull-through cache (name -> repository).
    image_repositories: Mapping[str, pulumi.Input[str]]
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, str]]
    system_node_selector: Mapping[str, str]
    # The monitoring tier's Prometheus (canary analysis, ServiceMonitor); None: no monitoring.
    prometheus_address: str | None
    # The telemetry tier's Zipkin endpoint (the OpenTelemetry collector); None: no tracing.
    zipkin_endpoint: str | None = None
    # Appended to the ALB TargetGroupBinding's name ("-internal" behind a VPC origin): a
    # binding's target group cannot change, a new group needs a new binding.
    alb_binding_suffix: str = ""
    redis_egress: tuple[Sequence[str | Mapping[str, Any]], int] | None = None
    # The namespace object (the signaling tier creates it) before the Secrets in it.
    namespace_deps: Sequence[pulumi.Resource] = field(default_factory=tuple)
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


def release_values(args: AppsArgs, name: str, app: AppConfig) -> dict[str, Any]:
    """The chart values: config and other tiers' outputs, no secret material."""
    ports = args.ctx.ports
    db = args.database
    writer = pulumi.Output.concat(db.address, f":{db.port}")
    readers = list(db.reader_endpoints) or [writer]
    res = app.resources
    redis_cidrs, redis_port = args.redis_egress or (args.data_subnet_cidrs, ports.redis)
    return {
        "image": {"repository": args.image_repositories[name], "tag": app.image.tag, "digest": app.image.digest or ""},
        "autoscaling": {
            "minReplicas": app.replicas.min,
            "maxReplicas": app.replicas.max,
            "targetCPUUtilizationPercentage": app.target_cpu_percent,
        },
        "resources": {
            "requests": {"cpu": f"{res.cpu_request_millicores}m", "memory": f"{res.memory_mib}Mi"},
            "limits": {"cpu": f"{res.cpu_limit_millicores}m", "memory": f"{res.memory_mib}Mi"},
        },
        "jvm": {"maxRamPercentage": res.heap_percent, "initialRamPercentage": min(50, res.heap_percent)},
        "ports": {"http": ports.app_http, "management": ports.app_management},
        "terminationGracePeriodSeconds": app.termination_grace_seconds,
        "preStopSleepSeconds": app.pre_stop_sleep_seconds,
        "config": {
            "datasourceUrl": pulumi.Output.all(db.secret_arn, writer).apply(
                lambda a: jdbc_url(a[1:], db.name, reader=False, sslmode=db.sslmode, secret=a[0], region=args.ctx.region)
            ),
            "readerDatasourceUrl": pulumi.Output.all(db.secret_arn, *readers).apply(
                lambda a: jdbc_url(a[1:], db.name, reader=True, sslmode=db.sslmode, secret=a[0], region=args.ctx.region)
            ),
            "datasourceSecretArn": db.secret_arn or "",
            "writerPoolSize": app.database.writer_pool_size,
            "readerPoolSize": app.database.reader_pool_size,
            "filesBucket": args.files_bucket_name,
            "filesPrefix": FILES_KEY_PREFIX,
            "awsRegion": args.ctx.region,
            "redisUses": sorted(args.redis_urls, key=lambda u: (u != "cache", u)),
        },
        "existingSecret": {"name": secret_name(name)},
        "nodeSelector": dict(args.node_selector),
        "tolerations": [dict(t) for t in args.tolerations],
        "networkPolicy": {
            "enabled": True,
            "loadBalancerCidrs": list(args.lb_subnet_cidrs),
            "database": {"cidrs": list(db.cidrs or args.data_subnet_cidrs), "port": db.port},
            "redis": redis_egress_values(redis_cidrs, redis_port),
            "awsApis": {"exceptCidrs": [args.vpc_cidr]},
        },
        # The suffix only where set: today's values (and bindings) stay as they are elsewhere.
        "targetGroupBinding": {"targetGroupArn": args.alb_target_group_arns[app.host]}
        | ({"nameSuffix": args.alb_binding_suffix} if args.alb_binding_suffix else {}),
        "canary": {
            "enabled": app.canary.enabled,
            "steps": list(app.canary.steps),
            "pauseSeconds": app.canary.pause_seconds,
            "maxErrorRatio": app.canary.max_error_percent / 100,
            "prometheusAddress": args.prometheus_address or "",
        },
        "monitoring": {"serviceMonitor": {"enabled": args.prometheus_address is not None}},
        # Brave's Zipkin reporter -> the collector (it samples; the app reports every span).
        "tracing": {
            "zipkinEndpoint": args.zipkin_endpoint or "",
            "collectorNamespace": "monitoring",
            "collectorPort": ports.zipkin,
        },
    }


def rollouts_values(args: AppsArgs) -> dict[str, Any]:
    """argo-rollouts chart values: the controller on the system nodes, its CRDs kept on uninstall."""
    monitored = args.prometheus_address is not None
    return {
        "installCRDs": True,
        "keepCRDs": True,
        "controller": {
            # Leader election: a second replica takes over at once when a node goes.
            "replicas": 2 if args.ctx.protect else 1,
            "nodeSelector": dict(args.system_node_selector),
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "metrics": {"enabled": monitored, "serviceMonitor": {"enabled": monitored}},
        },
        "dashboard": {"enabled": False},
    }


class Apps(pulumi.ComponentResource):
    """Argo Rollouts + per app (Secret, Pod Identity role, release) + the connections alarm.
    Exposes `.releases` (app -> Release), `.values` (app -> values), `.rollouts`, `.roles`."""

    def __init__(self, name: str, args: AppsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:apps:Apps", name, None, opts)
        ctx, provider = args.ctx, args.cluster.k8s_provider
        stage = ctx.stage

        self.rollouts: helm.Release | None = None
        if any(a.canary.enabled for a in args.config.values()):
            self.rollouts = helm_release(
                f"{stage}-argo-rollouts",
                chart="argo-rollouts",
                version=args.delivery.argo_rollouts_chart_version,
                repo=ROLLOUTS_REPO,
                namespace=ROLLOUTS_NAMESPACE,
                create_namespace=True,
                values=rollouts_values(args),
                timeout=600,
                max_history=10,
                parent=self,
                provider=provider,
                depends_on=args.depends_on,
            )

        self.releases: dict[str, helm.Release] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, core.Secret] = {}
        self.roles = {}
        for app_name, app in args.config.items():
            release = release_name(app_name)
            self.secrets[app_name] = core.Secret(
                f"{stage}-{release}-config",
                metadata={"name": secret_name(app_name), "namespace": args.namespace, "labels": part_of_labels(stage)},
                type="Opaque",
                string_data={
                    # Where the apps read the database secret themselves, no copy of it here.
                    **(
                        {}
                        if args.database.secret_arn is not None
                        else {"DB_USERNAME": args.database.username, "DB_PASSWORD": pulumi.Output.secret(args.database.password)}
                    ),
                    **{redis_key(use): pulumi.Output.secret(url) for use, url in args.redis_urls.items()},
                },
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=provider,
                    depends_on=list(args.namespace_deps),
                    additional_secret_outputs=["data", "stringData"],
                    delete_before_replace=True,  # fixed name, the chart refers to it
                ),
            )
            self.roles[app_name] = PodRoles(ctx.account_id, args.cluster, args.namespace, parent=self).role(
                f"{stage}-{release}",
                release,
                description=f"{stage} {release}: users' files in the file bucket, the database secret",
                policy=pulumi.Output.all(args.files_bucket_arn, ctx.data_key_arn, args.database.secret_arn).apply(
                    lambda a: app_policy(a[0], a[1], ctx.region, a[2])
                ),
            )
            self.values[app_name] = release_values(args, app_name, app)
            self.releases[app_name] = helm_release(
                f"{stage}-{release}",
                name=release,
                chart=CHART_PATH,
                namespace=args.namespace,
                values=self.values[app_name],
                timeout=app.release_timeout_seconds,
                max_history=10,
                create_namespace=False,
                parent=self,
                provider=provider,
                depends_on=[
                    self.secrets[app_name],
                    self.roles[app_name].association,
                    *args.depends_on,
                    *([self.rollouts] if self.rollouts is not None else []),
                ],
            )

        # Every pool at its maximum fits 90 % of max_connections (config check); alarm at 80 %.
        limit = args.database.max_connections
        self.connections_alarm = None
        if limit is not None:
            ident = f"{stage}-postgres"
            self.connections_alarm = metric_alarm(
                f"{ident}-connections-high",
                (
                    f"{ident}: connections above 80% of max_connections ({limit}) for 10 minutes; "
                    "pools or pods grew past the capacity plan (apps.*.database, apps.*.replicas)"
                ),
                ctx.alarm_topic_arn,
                pulumi.ResourceOptions(parent=self),
                namespace="AWS/RDS",
                metric_name="DatabaseConnections",
                dimensions={"DBInstanceIdentifier": args.database.identifier},
                statistic="Maximum",
                period=300,
                evaluation_periods=2,
                threshold=alarm_threshold(limit),
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="missing",
            )

        self.register_outputs(
            {
                "releases": {n: r.name for n, r in self.releases.items()},
                "connectionsAlarm": self.connections_alarm.name if self.connections_alarm else None,
                "roleArns": {n: r.role.arn for n, r in self.roles.items()},
            }
        )
