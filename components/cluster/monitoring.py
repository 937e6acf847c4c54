"""The in-cluster monitoring stack: kube-prometheus-stack (Prometheus, Alertmanager,
Grafana, node-exporter, kube-state-metrics, the operator) and prometheus-adapter,
which serves the signaling HPA's `websocket_connections` Pods metric through the
custom metrics API (custom.metrics.k8s.io).

The CRDs come from the cluster's `prometheus-operator-crds` release (skip_crds here).
Grafana's admin password is a pulumi_random password in a Kubernetes Secret that
Grafana reads through `admin.existingSecret`: it never passes through Helm values.

Alertmanager routes every alert to the stage's SNS alarm topic (the one every CloudWatch
alarm of the stage uses) with its native `sns_configs`; its credentials come from EKS Pod
Identity (a role allowed only sns:Publish on that topic and the KMS calls SNS makes with the
publisher's credentials on the topic's key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pulumi_kubernetes import apiextensions
from pulumi_kubernetes.core import v1 as core

from components.cluster.alert_rules import TURN_JOB
from components.cluster.pod_identity import ClusterAccess, PodRoles
from components.cluster.releases import helm_release, part_of_labels, stage_namespace
from components.cluster.telemetry import grafana_logs_policy
from components.config import MonitoringConfig
from components.context import StageContext
from components.iam import allow, key_via_service, policy_document

NAMESPACE = "monitoring"
CHARTS_REPO = "https://prometheus-community.github.io/helm-charts"
STACK_RELEASE = "kube-prometheus-stack"
ADAPTER_RELEASE = "prometheus-adapter"
# fullnameOverride: fixes the Services' names (the adapter points at Prometheus by name).
STACK_FULLNAME = "kube-prometheus-stack"
PROMETHEUS_SERVICE = f"{STACK_FULLNAME}-prometheus"
PROMETHEUS_PORT = 9090
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"
# The signaling chart labels its dashboard ConfigMap so (monitoring.dashboard.labels).
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
# Alertmanager's service account: the chart's own derived name (<fullname>-alertmanager),
# set explicitly so the Pod Identity association cannot drift from it.
ALERTMANAGER_SERVICE_ACCOUNT = f"{STACK_FULLNAME}-alertmanager"
# Severity -> receiver: critical pages (the critical topic), warning goes to chat (the alarm topic).
SNS_RECEIVER = "sns-warning"
CRITICAL_RECEIVER = "sns-critical"
NULL_RECEIVER = "null"
GRAFANA_SERVICE_ACCOUNT = f"{STACK_FULLNAME}-grafana"
# The monitoring side's rules (apps, TURN) and the TURN scrape.
RULES_NAME = "voip-alerts"
TURN_SCRAPE_NAME = "turn-nodes"
# The chart's always-firing alerts: Watchdog proves the pipeline works, InfoInhibitor only
# feeds an inhibit rule. Paging on-call with them would be noise.
SILENT_ALERTS = ("Watchdog", "InfoInhibitor")


@dataclass
class MonitoringArgs:
    ctx: StageContext
    config: MonitoringConfig
    # Alertmanager's Pod Identity role (alertsToSns) trusts this cluster.
    cluster: ClusterAccess
    # The gp3 StorageClass (EbsCsi) Prometheus' volume claim names.
    storage_class_name: str
    # Critical alerts page through this topic (notifications); None: everything to the alarm topic.
    critical_topic_arn: pulumi.Input[str] | None = None
    # The rule groups the monitoring side installs (components/cluster/alert_rules.py).
    rule_groups: Sequence[Mapping[str, Any]] = ()
    # The TURN nodes Prometheus scrapes on ctx.ports.turn_metrics: (node name, private IP).
    turn_targets: Sequence[tuple[str, pulumi.Input[str]]] = ()
    # Grafana datasources beyond Prometheus (Tempo, CloudWatch), and the log group its
    # CloudWatch datasource may query (None: no Grafana AWS role).
    grafana_datasources: Sequence[Mapping[str, Any]] = ()
    grafana_log_group_arn: pulumi.Input[str] | None = None
    # Where the stack's pods land (the cluster's system node group).
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # The metric the signaling pods export and their scrape job (the ServiceMonitor's
    # jobLabel: the chart name). The adapter serves it under the same name.
    connections_metric: str = "websocket_connections"
    connections_job: str = "signaling"
    # The CRDs release, the node groups and the storage driver.
    depends_on: Sequence[pulumi.Resource] = ()


def _sns_receiver(name: str, stage: str, region: str, topic_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "name": name,
        "sns_configs": [
            {
                "send_resolved": True,
                "topic_arn": topic_arn,
                # Credentials from the default chain (EKS Pod Identity); the region is
                # given (pods cannot reach IMDS).
                "sigv4": {"region": region},
                "subject": sns_subject(stage),
                "message": sns_message(stage),
            }
        ],
    }


def alertmanager_config(
    stage: str, region: str, topic_arn: pulumi.Input[str] | None, critical_topic_arn: pulumi.Input[str] | None = None
) -> dict[str, Any]:
    """Alertmanager's config (chart value `alertmanager.config`, which replaces the chart's).

    Routes by severity: `critical` -> the critical topic (pages), `warning` and anything
    unlabelled -> the alarm topic (chat), `info` -> null. `topic_arn` None: everything goes to
    the null receiver (the chart's behaviour). Schema:
    https://prometheus.io/docs/alerting/latest/configuration/ (`<route>`, `<sns_config>`,
    `<sigv4_config>`)."""
    routes = [{"receiver": NULL_RECEIVER, "matchers": [f'alertname = "{name}"']} for name in SILENT_ALERTS]
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    if topic_arn is not None:
        receivers.append(_sns_receiver(SNS_RECEIVER, stage, region, topic_arn))
        if critical_topic_arn is not None:
            receivers.append(_sns_receiver(CRITICAL_RECEIVER, stage, region, critical_topic_arn))
            routes.append({"receiver": CRITICAL_RECEIVER, "matchers": ['severity = "critical"']})
        routes += [
            {"receiver": SNS_RECEIVER, "matchers": ['severity = "warning"']},
            # The chart's info-level Kubernetes rules: visible in Alertmanager, sent to nobody.
            {"receiver": NULL_RECEIVER, "matchers": ['severity = "info"']},
        ]
    return {
        "global": {"resolve_timeout": "5m"},
        # The chart's default inhibitions, kept: a critical alert mutes the same alert's
        # warning/info, InfoInhibitor mutes info alerts of its namespace.
        "inhibit_rules": [
            {
                "source_matchers": ["severity = critical"],
                "target_matchers": ["severity =~ warning|info"],
                "equal": ["namespace", "alertname"],
            },
            {"source_matchers": ["severity = warning"], "target_matchers": ["severity = info"], "equal": ["namespace", "alertname"]},
            {"source_matchers": ["alertname = InfoInhibitor"], "target_matchers": ["severity = info"], "equal": ["namespace"]},
            {"target_matchers": ["alertname = InfoInhibitor"]},
            # The matching critical of a warning with another name: several instances of one app
            # down mutes the per-instance warning of that app.
            {
                "source_matchers": ["alertname = MultipleInstancesDown"],
                "target_matchers": ["alertname = InstanceDown"],
                "equal": ["namespace", "job"],
            },
        ],
        "route": {
            "receiver": SNS_RECEIVER if topic_arn is not None else NULL_RECEIVER,
            # One notification per alert name and namespace; a flapping group re-notifies at
            # most every 5 minutes, a standing one every 4 hours.
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "receivers": receivers,
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }


def sns_subject(stage: str) -> str:
    """E-mail subject (SNS: ASCII, one line, at most 100 characters): stage, status, alert name."""
    return (
        f"[{stage}] "
        + '{{ .Status | toUpper }}{{ if eq .Status "firing" }} ({{ .Alerts.Firing | len }}){{ end }}: {{ .GroupLabels.alertname }}'
    )


def sns_message(stage: str) -> str:
    """One short block per alert: name, severity, stage, namespace, summary."""
    return (
        "{{ range .Alerts }}"
        "{{ .Status | toUpper }} {{ .Labels.alertname }}\n"
        "severity: {{ .Labels.severity }}\n"
        f"stage: {stage}\n"
        "namespace: {{ .Labels.namespace }}\n"
        "summary: {{ .Annotations.summary }}\n\n"
        "{{ end }}"
    )


def alertmanager_policy(topic_arns: Sequence[str], key_arn: str, region: str) -> str:
    """Publish to the alarm topics; SNS encrypts with the topic's key using the publisher's
    credentials, so the publisher needs GenerateDataKey* and Decrypt on it, through SNS only."""
    return policy_document(
        [
            allow("PublishAlerts", "sns:Publish", list(topic_arns)),
            key_via_service("EncryptForTheTopic", ["kms:GenerateDataKey*", "kms:Decrypt"], key_arn, "sns", region),
        ]
    )


def stack_values(args: MonitoringArgs) -> dict[str, Any]:
    """kube-prometheus-stack values: config and names, no secret material."""
    cfg = args.config
    system = dict(args.node_selector)
    gib = cfg.prometheus_storage_gib
    mem = cfg.prometheus_memory_mib
    return {
        "fullnameOverride": STACK_FULLNAME,
        # The cluster's prometheus-operator-crds release owns the CRDs.
        "crds": {"enabled": False},
        # EKS manages the control plane: its scheduler, controller manager and etcd are not
        # scrapeable, and the kube-proxy add-on serves metrics on localhost only. Scraping
        # them would only raise TargetDown alerts.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheusOperator": {
            "nodeSelector": system,
            "resources": _resources("50m", "64Mi", "256Mi"),
            "admissionWebhooks": {"patch": {"nodeSelector": system}},
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": cfg.prometheus_retention,
                # Trim by size before the volume fills (Prometheus stops ingesting on a full disk).
                "retentionSize": f"{int(gib * 0.85)}GB",
                # Select ServiceMonitors, PodMonitors, Probes and PrometheusRules from every
                # namespace, not only those labelled for this release (the signaling chart's).
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "scrapeConfigSelectorNilUsesHelmValues": False,
                "serviceMonitorNamespaceSelector": {},
                "podMonitorNamespaceSelector": {},
                "ruleNamespaceSelector": {},
                "nodeSelector": system,
                "resources": _resources("200m", f"{mem}Mi", f"{2 * mem}Mi"),
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": args.storage_class_name,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{gib}Gi"}},
                        }
                    }
                },
            }
        },
        "alertmanager": {
            "serviceAccount": {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT},
            "config": alertmanager_config(
                args.ctx.stage, args.ctx.region, args.ctx.alarm_topic_arn if cfg.alerts_to_sns else None, args.critical_topic_arn
            ),
            "alertmanagerSpec": {
                "nodeSelector": system,
                "resources": _resources("20m", "64Mi", "128Mi"),
            },
        },
        "grafana": {
            "enabled": True,
            "nodeSelector": system,
            "resources": _resources("50m", "128Mi", "512Mi"),
            # The admin login comes from a Secret made by Pulumi; no password in values.
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": GRAFANA_USER_KEY, "passwordKey": GRAFANA_PASSWORD_KEY},
            # Named so its Pod Identity association (CloudWatch Logs datasource) cannot drift.
            "serviceAccount": {"create": True, "name": GRAFANA_SERVICE_ACCOUNT},
            "additionalDataSources": [dict(d) for d in args.grafana_datasources],
            # Dashboards are ConfigMaps (the signaling chart's and the stack's own): nothing to persist.
            "persistence": {"enabled": False},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": DASHBOARD_LABEL_VALUE,
                    "searchNamespace": "ALL",
                },
            },
        },
        "kubeStateMetrics": {"enabled": True},
        "kube-state-metrics": {"nodeSelector": system, "resources": _resources("20m", "64Mi", "256Mi")},
        "nodeExporter": {"enabled": True},
        # A DaemonSet on every node: the signaling nodes' taint too.
        "prometheus-node-exporter": {"tolerations": [{"operator": "Exists"}], "resources": _resources("20m", "32Mi", "64Mi")},
    }


def adapter_rule(metric: str, job: str) -> dict[str, Any]:
    """The custom-metrics rule: `metric` of each signaling pod, as a Pods metric of the same name."""
    return {
        "seriesQuery": f'{metric}{{job="{job}",namespace!="",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": f"^{metric}$", "as": metric},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }


def adapter_values(args: MonitoringArgs) -> dict[str, Any]:
    cfg = args.config
    return {
        "replicas": cfg.adapter_replicas,
        "nodeSelector": dict(args.node_selector),
        "resources": _resources("50m", "128Mi", "256Mi"),
        "prometheus": {"url": f"http://{PROMETHEUS_SERVICE}.{NAMESPACE}.svc", "port": PROMETHEUS_PORT, "path": ""},
        # Only what the HPA reads. No `resource` rules: metrics-server serves metrics.k8s.io,
        # and a second APIService for it would fight over the registration.
        "rules": {"default": False, "custom": [adapter_rule(args.connections_metric, args.connections_job)], "external": []},
        "podDisruptionBudget": {"enabled": cfg.adapter_replicas > 1, "maxUnavailable": 1},
    }


def _resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    # No CPU limit (throttling hurts scrapes); memory limited so a leak cannot starve the node.
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


class Monitoring(pulumi.ComponentResource):
    """Namespace + Grafana admin Secret + kube-prometheus-stack + prometheus-adapter, and
    (config.alertsToSns) Alertmanager's Pod Identity role and association.

    Exposes `.namespace` (name Output), `.grafana_admin_secret_name`, `.stack` and
    `.adapter` (the releases; the signaling release waits for the adapter),
    `.alertmanager_service_account`, `.alertmanager_role` and `.alertmanager_pod_identity`
    (None when alerts are not sent to SNS).
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:monitoring:Monitoring", name, None, opts)
        stage, cfg = args.ctx.stage, args.config
        labels = part_of_labels(stage)
        self.namespace_resource = stage_namespace(
            f"{stage}-monitoring-ns",
            # The signaling chart's NetworkPolicy admits scrapes from this namespace by name.
            name=NAMESPACE,
            stage=stage,
            # node-exporter reads the host (hostNetwork, hostPID, hostPath mounts).
            labels={"pod-security.kubernetes.io/enforce": "privileged"},
            parent=self,
            provider=args.cluster.k8s_provider,
        )
        self.namespace = self.namespace_resource.metadata.name

        password = random.RandomPassword(
            f"{stage}-grafana-admin-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.grafana_admin_secret = core.Secret(
            f"{stage}-grafana-admin",
            metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": self.namespace, "labels": labels},
            type="Opaque",
            string_data={GRAFANA_USER_KEY: "admin", GRAFANA_PASSWORD_KEY: pulumi.Output.secret(password.result)},
            opts=pulumi.ResourceOptions(
                parent=self.namespace_resource,
                provider=args.cluster.k8s_provider,
                additional_secret_outputs=["data", "stringData"],
                # A fixed name (Grafana refers to it): replace by delete-then-create.
                delete_before_replace=True,
            ),
        )
        self.grafana_admin_secret_name = GRAFANA_ADMIN_SECRET

        # Alertmanager's AWS identity: publish to the alarm topic, nothing else.
        self.alertmanager_service_account = ALERTMANAGER_SERVICE_ACCOUNT
        self.alertmanager_role: aws.iam.Role | None = None
        self.alertmanager_pod_identity: aws.eks.PodIdentityAssociation | None = None
        alerting: list[pulumi.Resource] = []
        pod_roles = PodRoles(args.ctx.account_id, args.cluster, NAMESPACE, parent=self)
        if cfg.alerts_to_sns:
            identity = pod_roles.role(
                f"{stage}-alertmanager",
                ALERTMANAGER_SERVICE_ACCOUNT,
                description=f"{stage}: Alertmanager publishes alerts to the alarm topic (pod identity)",
                policy=pulumi.Output.all(args.ctx.data_key_arn, args.ctx.alarm_topic_arn, *_present(args.critical_topic_arn)).apply(
                    lambda a: alertmanager_policy(a[1:], a[0], args.ctx.region)
                ),
            )
            self.alertmanager_role, policy = identity.role, identity.policy
            self.alertmanager_pod_identity = identity.association
            # Both before the release: the agent injects credentials at pod creation only.
            alerting = [self.alertmanager_pod_identity, policy]

        # Grafana's CloudWatch datasource queries the pods' log group through Pod Identity.
        self.grafana_role: aws.iam.Role | None = None
        if args.grafana_log_group_arn is not None:
            grafana = pod_roles.role(
                f"{stage}-grafana",
                GRAFANA_SERVICE_ACCOUNT,
                description=f"{stage}: Grafana queries the pods' log group (CloudWatch datasource)",
                policy=pulumi.Output.from_input(args.grafana_log_group_arn).apply(grafana_logs_policy),
            )
            self.grafana_role = grafana.role
            alerting += [grafana.association, grafana.policy]

        self.stack_values = stack_values(args)
        # Both charts come from the prometheus-community repository, into this namespace.
        in_cluster = {
            "parent": self,
            "provider": args.cluster.k8s_provider,
            "repo": CHARTS_REPO,
            "namespace": self.namespace,
            "create_namespace": False,
        }
        self.stack = helm_release(
            f"{stage}-kube-prometheus-stack",
            name=STACK_RELEASE,
            chart="kube-prometheus-stack",
            version=cfg.kube_prometheus_stack_chart_version,
            # The cluster's prometheus-operator-crds release installs them (and upgrades them;
            # Helm never upgrades a chart's crds/ directory).
            skip_crds=True,
            values=self.stack_values,
            # First install pulls a dozen images and binds the volume.
            timeout=900,
            depends_on=[self.grafana_admin_secret, *alerting, *args.depends_on],
            **in_cluster,
        )

        self.rules, self.turn_scrape = self._rules_and_scrapes(
            args, pulumi.ResourceOptions(parent=self, provider=args.cluster.k8s_provider, depends_on=[self.stack])
        )

        self.adapter_values = adapter_values(args)
        self.adapter = helm_release(
            f"{stage}-prometheus-adapter",
            name=ADAPTER_RELEASE,
            chart="prometheus-adapter",
            version=cfg.prometheus_adapter_chart_version,
            values=self.adapter_values,
            # Its queries go to the stack's Prometheus.
            depends_on=[self.stack],
            **in_cluster,
        )

        self.register_outputs(
            {
                "namespace": self.namespace,
                "grafanaAdminSecretName": self.grafana_admin_secret_name,
                "alertmanagerServiceAccount": self.alertmanager_service_account,
                "alertmanagerRoleArn": self.alertmanager_role.arn if self.alertmanager_role else None,
                "grafanaRoleArn": self.grafana_role.arn if self.grafana_role else None,
                "stackStatus": self.stack.status,
                "adapterStatus": self.adapter.status,
            }
        )

    def _rules_and_scrapes(
        self, args: MonitoringArgs, opts: pulumi.ResourceOptions
    ) -> tuple[apiextensions.CustomResource | None, apiextensions.CustomResource | None]:
        """The monitoring side's PrometheusRule (apps + TURN) and the TURN nodes' ScrapeConfig
        (a static list of the nodes' private addresses, job `turn`, one `node` label each)."""
        stage, labels = args.ctx.stage, part_of_labels(args.ctx.stage)
        rules = None
        if args.rule_groups:
            rules = apiextensions.CustomResource(
                f"{stage}-alert-rules",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata={"name": RULES_NAME, "namespace": NAMESPACE, "labels": labels},
                spec={"groups": [dict(g) for g in args.rule_groups]},
                opts=opts,
            )
        scrape = None
        if args.turn_targets:
            port = args.ctx.ports.turn_metrics
            scrape = apiextensions.CustomResource(
                f"{stage}-turn-scrape",
                api_version="monitoring.coreos.com/v1alpha1",
                kind="ScrapeConfig",
                metadata={"name": TURN_SCRAPE_NAME, "namespace": NAMESPACE, "labels": labels},
                spec={
                    "jobName": TURN_JOB,
                    "metricsPath": "/metrics",
                    "scrapeInterval": "30s",
                    "staticConfigs": [
                        {"targets": [pulumi.Output.from_input(ip).apply(lambda a: f"{a}:{port}")], "labels": {"node": node}}
                        for node, ip in args.turn_targets
                    ],
                },
                opts=opts,
            )
        return rules, scrape


def _present(value: pulumi.Input[str] | None) -> list[pulumi.Input[str]]:
    return [] if value is None else [value]
