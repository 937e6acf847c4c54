"""Where logs and traces live once the pod is gone (docs/monitoring.md, "Logs and traces").

Logs: every container's stdout on every node -> Fluent Bit (aws-for-fluent-bit DaemonSet,
kubernetes filter merges JSON lines into `data`) -> one CloudWatch Logs group per stage,
`/voip/<stage>/pods`, encrypted with the stage's data key, retention from config. Queryable
with Logs Insights even while the cluster itself is down.

Traces: the Spring apps' Brave reporter posts Zipkin v2 spans to the OpenTelemetry collector
(`otel-collector.monitoring:9411`, unchanged protocol) -> probabilistic sampling from config ->
OTLP -> Tempo (single binary) -> S3 bucket `<stage>-voip-traces-<account>`, block retention
from config (plus a lifecycle expiry a day later as a backstop). Grafana reads Tempo (and
CloudWatch Logs) through provisioned datasources.

Both writers get EKS Pod Identity roles as narrow as the others: Fluent Bit may write streams
of its one log group, Tempo may read/write/delete objects of its one bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi_kubernetes.helm import v3 as helm

from components.cluster.pod_identity import ClusterAccess, PodRoles
from components.cluster.releases import helm_release
from components.config import MonitoringConfig, TracesConfig
from components.context import StageContext
from components.edge.edge_buckets import EdgeBucket, EdgeBucketArgs
from components.iam import allow, key_via_service, policy_document


@dataclass(frozen=True)
class Chart:
    """A telemetry chart: the release it becomes (its Services are named after it), the chart
    and the chart repository."""

    release: str
    chart: str
    repo: str


FLUENT_BIT = Chart("aws-for-fluent-bit", "aws-for-fluent-bit", "https://aws.github.io/eks-charts")
COLLECTOR = Chart("otel-collector", "opentelemetry-collector", "https://open-telemetry.github.io/opentelemetry-helm-charts")
# The chart moved here from grafana/helm-charts (2026-02).
TEMPO = Chart("tempo", "tempo", "https://grafana-community.github.io/helm-charts")
FLUENT_BIT_SERVICE_ACCOUNT = "fluent-bit"
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib"  # has the zipkin receiver
TEMPO_SERVICE_ACCOUNT = "tempo"
TEMPO_OTLP_PORT = 4317
TEMPO_HTTP_PORT = 3200


@dataclass
class TelemetryArgs:
    ctx: StageContext
    # monitoring.logs and monitoring.traces.
    config: MonitoringConfig
    cluster: ClusterAccess
    namespace: str  # the monitoring namespace (a fixed name: the releases' Service names derive from it)
    # The stage's S3 server-access-log target (bucket name, key prefix); None: no access logs.
    access_log_target: tuple[pulumi.Input[str], str] | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()


def pods_log_group_name(stage: str) -> str:
    return f"/voip/{stage}/pods"


def pods_log_group_arn(region: str, account_id: str, stage: str) -> str:
    return f"arn:aws:logs:{region}:{account_id}:log-group:{pods_log_group_name(stage)}"


def fluent_bit_policy(log_group_arn: str) -> str:
    """Streams of the one log group; no CreateLogGroup (Pulumi owns the group, its KMS and retention)."""
    return policy_document(
        [
            allow(
                "WritePodLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                [log_group_arn, f"{log_group_arn}:log-stream:*"],
            )
        ]
    )


def tempo_policy(bucket_arn: str, key_arn: str, region: str) -> str:
    """Objects of the one bucket (the compactor deletes expired blocks), the key through S3 only."""
    return policy_document(
        [
            allow("ListTraceBucket", "s3:ListBucket", bucket_arn),
            allow(
                "TraceBlocks",
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"],
                f"{bucket_arn}/*",
            ),
            key_via_service("EncryptBlocks", ["kms:GenerateDataKey", "kms:Decrypt"], key_arn, "s3", region),
        ]
    )


def fluent_bit_values(region: str, log_group: str) -> dict[str, Any]:
    return {
        "serviceAccount": {"create": True, "name": FLUENT_BIT_SERVICE_ACCOUNT},
        # Parse JSON lines (Spring's Logstash encoder, signaling) into `data`; drop the raw
        # copy (it would double the ingested bytes).
        "filter": {"mergeLog": "On", "mergeLogKey": "data", "keepLog": "Off", "k8sLoggingParser": "On", "k8sLoggingExclude": "On"},
        "cloudWatchLogs": {
            "enabled": True,
            "region": region,
            "logGroupName": log_group,
            # Fallback name when the template cannot be filled (a record without kubernetes metadata).
            "logStreamPrefix": "node-",
            "logStreamTemplate": "$kubernetes['namespace_name'].$kubernetes['pod_name'].$kubernetes['container_name']",
            # The group is Pulumi's (retention, KMS): never created by Fluent Bit.
            "autoCreateGroup": False,
        },
        "cloudWatch": {"enabled": False},
        "firehose": {"enabled": False},
        "kinesis": {"enabled": False},
        "elasticsearch": {"enabled": False},
        # Every node, the tainted signaling nodes too.
        "tolerations": [{"operator": "Exists"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "250Mi"}},
    }


def collector_config(sampling_percent: float, tempo_endpoint: str, zipkin_port: int) -> dict[str, Any]:
    """The whole collector config (chart value `alternateConfig`: not merged with the chart's)."""
    return {
        "extensions": {"health_check": {"endpoint": "${env:MY_POD_IP}:13133"}},
        "receivers": {
            # Brave's Zipkin v2 reporter, unchanged; OTLP for anything newer.
            "zipkin": {"endpoint": f"${{env:MY_POD_IP}}:{zipkin_port}"},
            "otlp": {"protocols": {"grpc": {"endpoint": "${env:MY_POD_IP}:4317"}}},
        },
        "processors": {
            "memory_limiter": {"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 25},
            # Head sampling by trace ID: all spans of a kept trace are kept.
            "probabilistic_sampler": {"sampling_percentage": sampling_percent},
            "batch": {},
        },
        "exporters": {"otlp/tempo": {"endpoint": tempo_endpoint, "tls": {"insecure": True}}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {
                    "receivers": ["zipkin", "otlp"],
                    "processors": ["memory_limiter", "probabilistic_sampler", "batch"],
                    "exporters": ["otlp/tempo"],
                }
            },
        },
    }


def collector_values(cfg: TracesConfig, tempo_endpoint: str, zipkin_port: int, node_selector: Mapping[str, str]) -> dict[str, Any]:
    ports = {
        name: {"enabled": False}
        for name in ("jaeger-compact", "jaeger-thrift", "jaeger-grpc", "otlp-http")  # receivers not configured
    }
    return {
        "mode": "deployment",
        "fullnameOverride": COLLECTOR.release,
        "image": {"repository": COLLECTOR_IMAGE, "tag": cfg.collector_image_tag},
        "alternateConfig": collector_config(cfg.sampling_percent, tempo_endpoint, zipkin_port),
        "ports": {
            **ports,
            "zipkin": {"enabled": True, "containerPort": zipkin_port, "servicePort": zipkin_port, "hostPort": None},
            "otlp": {"enabled": True, "hostPort": None},
        },
        "nodeSelector": dict(node_selector),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }


def tempo_values(cfg: TracesConfig, bucket: str, region: str, node_selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "fullnameOverride": TEMPO.release,
        "serviceAccount": {"create": True, "name": TEMPO_SERVICE_ACCOUNT},
        "nodeSelector": dict(node_selector),
        "tempo": {
            "reportingEnabled": False,
            # No 1 GiB heap ballast: the container's memory limit is 1 GiB.
            "memBallastSizeMbs": 0,
            "retention": f"{cfg.retention_days * 24}h",
            # Credentials from the default chain (EKS Pod Identity); the bucket's default KMS key encrypts.
            "storage": {
                "trace": {
                    "backend": "s3",
                    "s3": {"bucket": bucket, "endpoint": f"s3.{region}.amazonaws.com", "region": region},
                    "wal": {"path": "/var/tempo/wal"},
                }
            },
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{TEMPO_OTLP_PORT}"}}}},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        },
    }


def grafana_datasources(region: str, namespace: str, logs: bool, traces: bool) -> list[dict[str, Any]]:
    """kube-prometheus-stack `grafana.additionalDataSources`: Tempo and CloudWatch (Logs Insights)."""
    out: list[dict[str, Any]] = []
    if traces:
        out.append(
            {
                "name": "Tempo",
                "type": "tempo",
                "uid": "tempo",
                "access": "proxy",
                "url": f"http://{TEMPO.release}.{namespace}.svc:{TEMPO_HTTP_PORT}",
            }
        )
    if logs:
        # Credentials from Grafana's Pod Identity role (`default` = the SDK's chain).
        out.append(
            {"name": "CloudWatch", "type": "cloudwatch", "uid": "cloudwatch", "jsonData": {"authType": "default", "defaultRegion": region}}
        )
    return out


def grafana_logs_policy(log_group_arn: str) -> str:
    """Grafana's CloudWatch datasource: Logs Insights queries on the pods' log group only."""
    return policy_document(
        [
            allow(
                "QueryPodLogs",
                ["logs:StartQuery", "logs:GetLogEvents", "logs:FilterLogEvents", "logs:GetLogGroupFields"],
                [log_group_arn, f"{log_group_arn}:log-stream:*"],
            ),
            # The group picker and query results: this account's groups in the region.
            allow(
                "ListGroupsAndResults",
                ["logs:DescribeLogGroups", "logs:GetQueryResults"],
                log_group_arn.split(":log-group:", 1)[0] + ":log-group:*",
            ),
            # Acts on a query id, not on a resource.
            allow("StopQuery", "logs:StopQuery", "*"),
        ]
    )


class Telemetry(pulumi.ComponentResource):
    """Exposes `.log_group` / `.fluent_bit` (None when logs are off), `.traces_bucket`,
    `.tempo`, `.collector` (None when traces are off), `.zipkin_endpoint`."""

    def __init__(self, name: str, args: TelemetryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:monitoring:Telemetry", name, None, opts)
        ctx, logs, traces = args.ctx, args.config.logs, args.config.traces
        stage, namespace = ctx.stage, args.namespace
        pod_roles = PodRoles(ctx.account_id, args.cluster, namespace, parent=self)

        def release(resource_name: str, chart: Chart, version: str, *, values: pulumi.Input[dict], depends_on: list) -> helm.Release:
            """Every telemetry release: into the monitoring namespace, 600 s to settle."""
            return helm_release(
                resource_name,
                name=chart.release,
                chart=chart.chart,
                version=version,
                repo=chart.repo,
                values=values,
                timeout=600,
                depends_on=depends_on,
                parent=self,
                provider=args.cluster.k8s_provider,
                namespace=namespace,
                create_namespace=False,
            )

        self.log_group: aws.cloudwatch.LogGroup | None = None
        self.fluent_bit: helm.Release | None = None
        if logs.enabled:
            self.log_group = aws.cloudwatch.LogGroup(
                f"{stage}-pod-logs",
                name=pods_log_group_name(stage),
                retention_in_days=logs.retention_days,
                kms_key_id=ctx.data_key_arn,
                log_group_class=logs.log_class,
                opts=pulumi.ResourceOptions(parent=self, protect=ctx.protect),
            )
            writer = pod_roles.role(
                f"{stage}-fluent-bit",
                FLUENT_BIT_SERVICE_ACCOUNT,
                description=f"{stage}: Fluent Bit writes pod logs to {pods_log_group_name(stage)}",
                policy=self.log_group.arn.apply(fluent_bit_policy),
            )
            self.fluent_bit = release(
                f"{stage}-fluent-bit",
                FLUENT_BIT,
                logs.fluent_bit_chart_version,
                values=fluent_bit_values(ctx.region, pods_log_group_name(stage)),
                depends_on=[writer.association, writer.policy, *args.depends_on],
            )

        self.traces_bucket: EdgeBucket | None = None
        self.tempo: helm.Release | None = None
        self.collector: helm.Release | None = None
        self.zipkin_endpoint: str | None = None
        if traces.enabled:
            bucket_name = pulumi.Output.from_input(ctx.account_id).apply(lambda a: f"{stage}-voip-traces-{a}")
            self.traces_bucket = EdgeBucket(
                f"{stage}-traces",
                EdgeBucketArgs(
                    bucket_name=bucket_name,
                    # Tempo's compactor deletes blocks at the retention; the lifecycle rule is the backstop.
                    expire_days=traces.retention_days + 1,
                    force_destroy=not ctx.protect,
                    kms_key_arn=ctx.data_key_arn,
                    access_log_target=(
                        (args.access_log_target[0], f"{args.access_log_target[1]}traces/") if args.access_log_target else None
                    ),
                ),
                parent=self,
            )
            store = pod_roles.role(
                f"{stage}-tempo",
                TEMPO_SERVICE_ACCOUNT,
                description=f"{stage}: Tempo stores trace blocks in its bucket",
                policy=pulumi.Output.all(self.traces_bucket.arn, ctx.data_key_arn).apply(lambda a: tempo_policy(a[0], a[1], ctx.region)),
            )
            self.tempo = release(
                f"{stage}-tempo",
                TEMPO,
                traces.tempo_chart_version,
                values=bucket_name.apply(lambda b: tempo_values(traces, b, ctx.region, args.node_selector)),
                depends_on=[store.association, store.policy, self.traces_bucket.bucket, *args.depends_on],
            )
            self.collector = release(
                f"{stage}-otel-collector",
                COLLECTOR,
                traces.collector_chart_version,
                values=collector_values(traces, f"{TEMPO.release}.{namespace}.svc:{TEMPO_OTLP_PORT}", ctx.ports.zipkin, args.node_selector),
                # Not after Tempo: the collector retries its exports until Tempo answers.
                depends_on=list(args.depends_on),
            )
            self.zipkin_endpoint = f"http://{COLLECTOR.release}.{namespace}.svc:{ctx.ports.zipkin}/api/v2/spans"

        self.register_outputs(
            {
                "podLogGroup": self.log_group.name if self.log_group else None,
                "tracesBucket": self.traces_bucket.name if self.traces_bucket else None,
                "zipkinEndpoint": self.zipkin_endpoint,
            }
        )
