"""The in-cluster monitoring stack: kube-prometheus-stack (Prometheus, Alertmanager,
Grafana, node-exporter, kube-state-metrics, the operator) and prometheus-adapter,
which serves the signaling HPA's `websocket_connections` Pods metric through the
custom metrics API (custom.metrics.k8s.io).

The CRDs come from the cluster's `prometheus-operator-crds` release (skip_crds here).
Grafana's admin password is a pulumi_random password in a Kubernetes Secret that
Grafana reads through `admin.existingSecret`: it never passes through Helm values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_random as random
from pulumi_kubernetes.core import v1 as core
from pulumi_kubernetes.helm import v3 as helm

from components.config import MonitoringConfig

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


@dataclass
class MonitoringArgs:
    stage: str
    k8s_provider: pulumi.ProviderResource
    config: MonitoringConfig
    # The gp3 StorageClass (EbsCsi) Prometheus' volume claim names.
    storage_class_name: str
    # Where the stack's pods land (the cluster's system node group).
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # The metric the signaling pods export and their scrape job (the ServiceMonitor's
    # jobLabel: the chart name). The adapter serves it under the same name.
    connections_metric: str = "websocket_connections"
    connections_job: str = "signaling"
    # The CRDs release, the node groups and the storage driver.
    depends_on: Sequence[pulumi.Resource] = ()


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
        # Routing alerts to the stage's SNS topic is not wired yet: Alertmanager keeps the
        # chart's null receiver (alerts show in its UI and in Grafana).
        "alertmanager": {
            "alertmanagerSpec": {
                "nodeSelector": system,
                "resources": _resources("20m", "64Mi", "128Mi"),
            }
        },
        "grafana": {
            "enabled": True,
            "nodeSelector": system,
            "resources": _resources("50m", "128Mi", "512Mi"),
            # The admin login comes from a Secret made by Pulumi; no password in values.
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": GRAFANA_USER_KEY, "passwordKey": GRAFANA_PASSWORD_KEY},
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
    """Namespace + Grafana admin Secret + kube-prometheus-stack + prometheus-adapter.

    Exposes `.namespace` (name Output), `.grafana_admin_secret_name`, `.stack` and
    `.adapter` (the releases; the signaling release waits for the adapter).
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:monitoring:Monitoring", name, None, opts)
        cfg = args.config
        stage = args.stage
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.k8s_provider)
        labels = {"app.kubernetes.io/part-of": "voip", "stage": stage}

        self.namespace_resource = core.Namespace(
            f"{stage}-monitoring-ns",
            metadata={
                # The signaling chart's NetworkPolicy admits scrapes from this namespace by name.
                "name": NAMESPACE,
                "labels": {
                    **labels,
                    # node-exporter reads the host (hostNetwork, hostPID, hostPath mounts).
                    "pod-security.kubernetes.io/enforce": "privileged",
                },
            },
            opts=k8s_opts,
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
                provider=args.k8s_provider,
                additional_secret_outputs=["data", "stringData"],
                # A fixed name (Grafana refers to it): replace by delete-then-create.
                delete_before_replace=True,
            ),
        )
        self.grafana_admin_secret_name = GRAFANA_ADMIN_SECRET

        self.stack_values = stack_values(args)
        self.stack = helm.Release(
            f"{stage}-kube-prometheus-stack",
            name=STACK_RELEASE,
            chart="kube-prometheus-stack",
            version=cfg.kube_prometheus_stack_chart_version,
            repository_opts=helm.RepositoryOptsArgs(repo=CHARTS_REPO),
            namespace=self.namespace,
            create_namespace=False,
            # The cluster's prometheus-operator-crds release installs them (and upgrades them;
            # Helm never upgrades a chart's crds/ directory).
            skip_crds=True,
            values=self.stack_values,
            atomic=True,
            cleanup_on_fail=True,
            # First install pulls a dozen images and binds the volume.
            timeout=900,
            max_history=5,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[self.grafana_admin_secret, *args.depends_on])),
        )

        self.adapter_values = adapter_values(args)
        self.adapter = helm.Release(
            f"{stage}-prometheus-adapter",
            name=ADAPTER_RELEASE,
            chart="prometheus-adapter",
            version=cfg.prometheus_adapter_chart_version,
            repository_opts=helm.RepositoryOptsArgs(repo=CHARTS_REPO),
            namespace=self.namespace,
            create_namespace=False,
            values=self.adapter_values,
            atomic=True,
            cleanup_on_fail=True,
            timeout=300,
            max_history=5,
            # Its queries go to the stack's Prometheus.
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[self.stack])),
        )

        self.register_outputs(
            {
                "namespace": self.namespace,
                "grafanaAdminSecretName": self.grafana_admin_secret_name,
                "stackStatus": self.stack.status,
                "adapterStatus": self.adapter.status,
            }
        )
