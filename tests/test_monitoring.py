"""The monitoring tier under mocks, per stack: kube-prometheus-stack and prometheus-adapter
releases (remote charts: their arguments are asserted, not rendered), Grafana's admin
Secret, the EBS CSI driver and gp3 StorageClass, and the wiring to the signaling chart,
which IS rendered by real Helm to read the metric name its HPA asks for."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from components.config_loader import ConfigError, load_stack_config
from tests.harness import config_errors, release, stack_plan, stack_raw, variant, with_overrides
from tests.resource_types import ADDON, ASSOCIATION, NODE_GROUP, RELEASE, ROLE, ROLE_POLICY, TOPIC

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "signaling"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "kubernetes:core/v1:Namespace"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
REPO = "https://prometheus-community.github.io/helm-charts"


def stack_release(plan):
    return release(plan, "kube-prometheus-stack")


def adapter_release(plan):
    return release(plan, "prometheus-adapter")


def mon_cfg(plan):
    return plan["config"]["monitoring"]


def system_node_group(plan):
    (ng,) = [r for r in plan.of_type(NODE_GROUP) if r["props"]["nodeGroupName"].endswith("-system")]
    return ng


def signaling_node_group(plan):
    (ng,) = [r for r in plan.of_type(NODE_GROUP) if r["props"]["nodeGroupName"].endswith("-signaling")]
    return ng


def chart_defaults():
    return yaml.safe_load((CHART / "values.yaml").read_text())


# ------------------------------------------------------------------ releases


def test_releases_pinned_from_config_in_the_monitoring_namespace(plan):
    cfg = mon_cfg(plan)
    kps, adapter = stack_release(plan), adapter_release(plan)
    assert kps["props"]["version"] == cfg["kubePrometheusStackChartVersion"]
    assert adapter["props"]["version"] == cfg["prometheusAdapterChartVersion"]
    for rel in (kps, adapter):
        p = rel["props"]
        assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", p["version"]), "an exact version, never a range"
        assert p["repositoryOpts"] == {"repo": REPO}
        assert p["namespace"] == "monitoring"
        assert p["createNamespace"] is False
        assert p["atomic"] is True and p["cleanupOnFail"] is True
        assert rel["provider"].endswith(f"::{plan['stack']}-k8s"), "through the cluster's k8s provider"
    (ns,) = [n for n in plan.of_type(NAMESPACE) if n["props"]["metadata"]["name"] == "monitoring"]
    assert ns["urn"] in kps["dependsOn"] and ns["urn"] in adapter["dependsOn"]


def test_crds_come_from_the_cluster_release_not_the_stack(plan):
    kps = stack_release(plan)
    assert kps["props"]["skipCrds"] is True
    assert kps["props"]["values"]["crds"] == {"enabled": False}
    crds = release(plan, "prometheus-operator-crds")
    assert crds["urn"] in kps["dependsOn"], "the operator starts only once its CRDs exist"
    # kube-prometheus-stack 91.x runs prometheus-operator v0.94, whose CRDs prometheus-operator-crds 32.x ships.
    assert kps["props"]["version"].split(".")[0] == "91"
    assert crds["props"]["version"].split(".")[0] == "32"


def test_monitoring_namespace_is_the_one_the_signaling_network_policy_admits(plan):
    assert stack_release(plan)["props"]["namespace"] == chart_defaults()["networkPolicy"]["monitoringNamespace"]
    sig = release(plan, "./charts/signaling")["props"]["values"]
    assert "monitoringNamespace" not in sig["networkPolicy"], "the chart default is the one compared above"
    assert plan["outputs"]["monitoringNamespace"] == "monitoring"


# ------------------------------------------------------------------ Prometheus


def test_prometheus_retention_volume_and_selectors(plan):
    cfg = mon_cfg(plan)
    spec = stack_release(plan)["props"]["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == cfg["prometheusRetention"]
    gib = cfg["prometheusStorageGib"]
    assert int(spec["retentionSize"].removesuffix("GB")) < gib, "trims by size before the volume fills"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == f"{gib}Gi"
    assert claim["accessModes"] == ["ReadWriteOnce"]
    # The claim names the gp3 StorageClass this program creates, and it waits for it.
    (sc,) = [s for s in plan.of_type(STORAGE_CLASS) if s["props"]["metadata"]["name"] == claim["storageClassName"]]
    assert sc["props"]["provisioner"] == "ebs.csi.aws.com"
    assert sc["props"]["parameters"]["type"] == "gp3" and sc["props"]["parameters"]["encrypted"] == "true"
    assert sc["props"]["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["urn"] in stack_release(plan)["dependsOn"]
    # ServiceMonitors and PrometheusRules of every namespace (the signaling chart's carry no release label).
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
    assert spec["serviceMonitorNamespaceSelector"] == {} and spec["ruleNamespaceSelector"] == {}
    mem = cfg["prometheusMemoryMib"]
    assert spec["resources"]["requests"]["memory"] == f"{mem}Mi"
    assert spec["resources"]["limits"]["memory"] == f"{2 * mem}Mi"


def test_volumes_retained_where_the_stage_holds_data(plan):
    (sc,) = plan.of_type(STORAGE_CLASS)
    assert sc["props"]["reclaimPolicy"] == ("Retain" if plan["config"]["protectData"] else "Delete")


def test_eks_managed_control_plane_is_not_scraped(plan):
    values = stack_release(plan)["props"]["values"]
    for part in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert values[part] == {"enabled": False}
    assert values["nodeExporter"]["enabled"] is True and values["kubeStateMetrics"]["enabled"] is True


# ------------------------------------------------------------------ Grafana


def test_grafana_admin_comes_from_a_pulumi_secret(plan):
    grafana = stack_release(plan)["props"]["values"]["grafana"]
    admin = grafana["admin"]
    (secret,) = [s for s in plan.of_type(SECRET) if s["props"]["metadata"]["name"] == admin["existingSecret"]]
    assert secret["props"]["metadata"]["namespace"] == stack_release(plan)["props"]["namespace"]
    assert secret["props"]["stringData"] == "[secret]", "the whole stringData is a Pulumi secret"
    assert {admin["userKey"], admin["passwordKey"]} == {"admin-user", "admin-password"}
    assert "adminPassword" not in grafana and "adminUser" not in grafana
    assert secret["urn"] in stack_release(plan)["dependsOn"]
    (pw,) = [r for r in plan.of_type("random:index/randomPassword:RandomPassword") if r["name"].endswith("-grafana-admin-password")]
    assert pw["urn"] in secret["dependsOn"]
    assert plan["outputs"]["grafanaAdminSecretName"] == admin["existingSecret"]


def test_no_secret_material_in_release_values(plan):
    (pw,) = [r for r in plan.of_type("random:index/randomPassword:RandomPassword") if r["name"].endswith("-grafana-admin-password")]
    # The mock's deterministic value of that password (tools/mocks.py): it must appear nowhere.
    mock_value = ("mock" + hashlib.sha256(pw["name"].encode()).hexdigest())[: int(pw["props"]["length"])]
    for rel in (stack_release(plan), adapter_release(plan)):
        text = json.dumps(rel["props"]["values"])
        assert "[secret]" not in text
        assert mock_value not in text
        assert not re.search(r'"[a-zA-Z]*[pP]assword"\s*:', text), "no password key at all"


def test_grafana_loads_the_signaling_dashboard_from_every_namespace(plan):
    sidecar = stack_release(plan)["props"]["values"]["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    assert sidecar["searchNamespace"] == "ALL"
    # The chart's dashboard ConfigMap carries exactly this label.
    labels = chart_defaults()["monitoring"]["dashboard"]["labels"]
    assert labels == {sidecar["label"]: sidecar["labelValue"]}


# ------------------------------------------------------------------ the adapter and the HPA


def rendered_signaling(stack):
    h = pytest.importorskip("helm_python")
    rel = release(stack_plan(stack), "./charts/signaling")
    values = copy.deepcopy(rel["props"]["values"])
    manifests = h.Chart.load(str(CHART)).render(values=values, name=rel["props"]["name"], namespace="voip")
    return [doc for text in manifests.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def signaling_objects():
    return rendered_signaling("production")


def the(objs, kind):
    (obj,) = [o for o in objs if o["kind"] == kind]
    return obj


def test_adapter_serves_the_metric_the_signaling_hpa_reads(plan, signaling_objects):
    hpa = the(signaling_objects, "HorizontalPodAutoscaler")
    (pods_metric,) = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    values = adapter_release(plan)["props"]["values"]
    (rule,) = values["rules"]["custom"]
    assert rule["name"]["as"] == pods_metric
    assert re.fullmatch(rule["name"]["matches"], pods_metric)
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    # The series it reads: the metric the pods export, from the job the ServiceMonitor names
    # (jobLabel -> the Service's label of that name), the one the chart's alerts query too.
    series = re.fullmatch(r'(\w+)\{job="([\w-]+)",namespace!="",pod!=""\}', rule["seriesQuery"])
    assert series, rule["seriesQuery"]
    monitor = the(signaling_objects, "ServiceMonitor")
    service = the(signaling_objects, "Service")
    assert series.group(2) == service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    rules = {r["alert"]: r for g in the(signaling_objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert rules["HighWebSocketConnections"]["expr"].startswith(series.group(1) + "{")
    assert values["rules"]["default"] is False


def test_adapter_points_at_the_stack_prometheus(plan):
    kps = stack_release(plan)["props"]
    prom = adapter_release(plan)["props"]["values"]["prometheus"]
    # kube-prometheus-stack names Prometheus' Service "<fullname>-prometheus" on 9090.
    assert prom["url"] == f"http://{kps['values']['fullnameOverride']}-prometheus.{kps['namespace']}.svc"
    assert prom["port"] == 9090
    assert stack_release(plan)["urn"] in adapter_release(plan)["dependsOn"]


def test_adapter_does_not_take_over_the_resource_metrics_api(plan):
    # metrics-server (cluster.py) serves metrics.k8s.io; a resource rule would register a rival APIService.
    rules = adapter_release(plan)["props"]["values"]["rules"]
    assert "resource" not in rules
    release(plan, "metrics-server")


def test_adapter_replicas_and_disruption_budget(plan):
    values = adapter_release(plan)["props"]["values"]
    n = mon_cfg(plan)["adapterReplicas"]
    assert values["replicas"] == n
    assert values["podDisruptionBudget"]["enabled"] is (n > 1)
    if plan["stack"] == "production":
        assert n >= 2, "production's HPA must not lose its metric during a node drain"


def test_signaling_release_does_not_wait_for_the_adapter(plan):
    # An HPA retries a metric that is not served yet: waiting for the adapter only lengthened a
    # first `up` (tools critical_path). The CRDs its ServiceMonitor/PrometheusRule need: yes.
    sig = release(plan, "./charts/signaling")
    assert adapter_release(plan)["urn"] not in sig["dependsOn"]
    crds = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["props"]["chart"] == "prometheus-operator-crds"]
    assert crds and crds[0]["urn"] in sig["dependsOn"]
    assert sig["props"]["values"]["autoscaling"]["connectionsMetricEnabled"] is plan["config"]["signaling"]["connectionsMetric"]


# ------------------------------------------------------------------ placement and size


def test_stack_pods_land_on_the_system_nodes(plan):
    system = system_node_group(plan)["props"]["labels"]
    kps = stack_release(plan)["props"]["values"]
    selectors = [
        kps["prometheusOperator"]["nodeSelector"],
        kps["prometheusOperator"]["admissionWebhooks"]["patch"]["nodeSelector"],
        kps["prometheus"]["prometheusSpec"]["nodeSelector"],
        kps["alertmanager"]["alertmanagerSpec"]["nodeSelector"],
        kps["grafana"]["nodeSelector"],
        kps["kube-state-metrics"]["nodeSelector"],
        adapter_release(plan)["props"]["values"]["nodeSelector"],
    ]
    for selector in selectors:
        assert selector and selector.items() <= system.items()
    (addon,) = [a for a in plan.of_type(ADDON) if a["props"]["addonName"] == "aws-ebs-csi-driver"]
    assert json.loads(addon["props"]["configurationValues"])["controller"]["nodeSelector"].items() <= system.items()


def test_node_exporter_runs_on_the_tainted_signaling_nodes(plan):
    (taint,) = signaling_node_group(plan)["props"]["taints"]
    tolerations = stack_release(plan)["props"]["values"]["prometheus-node-exporter"]["tolerations"]

    def tolerates(t):
        effect_ok = t.get("effect") in (None, "", {"NO_SCHEDULE": "NoSchedule"}[taint["effect"]])
        if t.get("operator") == "Exists":
            return effect_ok and t.get("key") in (None, "", taint["key"])
        return effect_ok and t.get("key") == taint["key"] and t.get("value") == taint["value"]

    assert any(tolerates(t) for t in tolerations)


def _mib(quantity: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi)", quantity).groups()
    return float(number) * (1024 if unit == "Gi" else 1)


def test_memory_requests_fit_dev_system_node():
    plan = stack_plan("dev")
    kps = stack_release(plan)["props"]["values"]
    requests = [
        kps["prometheus"]["prometheusSpec"]["resources"],
        kps["prometheusOperator"]["resources"],
        kps["alertmanager"]["alertmanagerSpec"]["resources"],
        kps["grafana"]["resources"],
        kps["kube-state-metrics"]["resources"],
        kps["prometheus-node-exporter"]["resources"],
        adapter_release(plan)["props"]["values"]["resources"],
    ]
    total = sum(_mib(r["requests"]["memory"]) for r in requests)
    # Dev runs one t4g.medium system node (4 GiB, ~3.3 GiB allocatable) shared with CoreDNS,
    # the LB controller, metrics-server and the CSI controller: the stack keeps under 1.5 GiB.
    assert plan["config"]["cluster"]["systemNodes"]["instanceTypes"] == ["t4g.medium"]
    assert total <= 1536, total
    for r in requests:
        assert _mib(r["limits"]["memory"]) >= _mib(r["requests"]["memory"])


# ------------------------------------------------------------------ EBS CSI driver


def test_ebs_csi_driver_addon_with_least_privilege_pod_identity(plan):
    (addon,) = [a for a in plan.of_type(ADDON) if a["props"]["addonName"] == "aws-ebs-csi-driver"]
    assert addon["props"]["addonVersion"] == mon_cfg(plan)["ebsCsiDriverAddonVersion"]
    (assoc,) = addon["props"]["podIdentityAssociations"]
    assert assoc["serviceAccount"] == "ebs-csi-controller-sa"
    (role,) = [r for r in plan.of_type("aws:iam/role:Role") if r["name"].endswith("-ebs-csi-role")]
    assert assoc["roleArn"].endswith("/" + role["id"]) or assoc["roleArn"].endswith("/" + role["props"].get("name", role["id"]))
    trust = json.loads(role["props"]["assumeRolePolicy"])
    (stmt,) = trust["Statement"]
    assert stmt["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    cond = stmt["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/kubernetes-service-account"] == "ebs-csi-controller-sa"
    assert cond["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    # Pinned by ARN: the cluster's name, in this account and region (components/iam.py).
    assert (
        cond["aws:RequestTag/eks-cluster-arn"]
        == f"arn:aws:eks:{plan['config']['aws:region']}:123456789012:cluster/{plan['outputs']['clusterName']}"
    )
    (attach,) = [a for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a["name"].endswith("-ebs-csi-policy")]
    assert attach["props"]["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    # Nodes to run on and the pod identity agent for credentials, before the add-on.
    (agent,) = [a for a in plan.of_type(ADDON) if a["props"]["addonName"] == "eks-pod-identity-agent"]
    assert {agent["urn"], system_node_group(plan)["urn"], attach["urn"]} <= set(addon["dependsOn"])


# ------------------------------------------------------------------ config


def test_connections_metric_requires_monitoring():
    raw, _ = stack_raw("dev")
    bad = with_overrides(raw, {"voip-infra:monitoring": {"enabled": False}, "voip-infra:apps": {"api": {"canary": {"enabled": False}}}})
    with pytest.raises(ConfigError) as info:
        load_stack_config("dev", bad)
    (line,) = info.value.lines
    assert line.startswith("error: voip-infra:signaling.connectionsMetric: needs monitoring.enabled: true")


@pytest.mark.parametrize(
    ("override", "key", "word"),
    [
        ({"prometheusRetention": "15 days"}, "voip-infra:monitoring.prometheusRetention", "Prometheus duration"),
        ({"prometheusStorageGib": 2}, "voip-infra:monitoring.prometheusStorageGib", "greater than or equal to 5"),
        ({"kubePrometheusStackChartVersion": "~91"}, "voip-infra:monitoring.kubePrometheusStackChartVersion", "chart version"),
        ({"adapterReplicas": 0}, "voip-infra:monitoring.adapterReplicas", "greater than or equal to 1"),
        ({"grafanaPassword": "x"}, "voip-infra:monitoring.grafanaPassword", "unknown key"),
        ({"alertsToSns": "maybe"}, "voip-infra:monitoring.alertsToSns", "valid boolean"),
    ],
)
def test_monitoring_config_errors(override, key, word):
    (line,) = config_errors({"voip-infra:monitoring": override})
    assert line.startswith(f"error: {key}: ") and word in line, line


# Shared with tests/test_apps.py (one variant plan): no monitoring stack, so no connections
# metric for signaling and no canary analysis for the app (it rolls out as a Deployment).
MONITORING_OFF = {
    "voip-infra:monitoring": {"enabled": False},
    "voip-infra:signaling": {"connectionsMetric": False},
    "voip-infra:apps": {"api": {"canary": {"enabled": False}}},
}


def test_monitoring_off_builds_no_stack_and_signaling_scales_on_cpu_only():
    plan = variant("dev", MONITORING_OFF)
    charts = {r["props"]["chart"] for r in plan.of_type(RELEASE)}
    assert not charts & {"kube-prometheus-stack", "prometheus-adapter"}
    assert not [r for r in plan["resources"] if r["type"] == "voip:monitoring:Monitoring"]
    sig = release(plan, "./charts/signaling")
    assert sig["props"]["values"]["autoscaling"]["connectionsMetricEnabled"] is False
    assert plan["outputs"]["monitoringNamespace"] is None


def test_prometheus_volume_is_in_the_cost(plan):
    from tools import prices
    from tools.cost import estimate

    report = estimate(plan)
    (line,) = [ln for ln in report.lines if ln.urn == stack_release(plan)["urn"]]
    gib = mon_cfg(plan)["prometheusStorageGib"]
    assert line.priced and abs(line.usd - gib * prices.EBS_GB_MONTH["gp3"]) < 0.01
    assert any("PersistentVolumeClaims" in n for n in report.notes)


def test_monitoring_stack_waits_for_the_node_autoscaler(plan):
    """The system pools are sized to their pods at rest (tools/node_fit.py: dev needs 2 t4g.medium
    for 30 pods at 17 a node); a deploy's surge or a spot reclaim needs a node added, so the
    autoscaler must exist before the monitoring stack's pods ask for room."""
    assert plan["config"]["cluster"].get("autoscaler", {}).get("enabled", True)
    autoscaler = release(plan, "cluster-autoscaler")
    assert autoscaler["urn"] in stack_release(plan)["dependsOn"]


# ------------------------------------------------------------------ Alertmanager -> SNS


def am_config(plan):
    return stack_release(plan)["props"]["values"]["alertmanager"]["config"]


def receiver_of(config, labels):
    """Alertmanager's routing for one alert: the first matching child route (no `continue`
    here), else the root's receiver. Matchers are `name = "value"` or `name = value`."""
    for route in config["route"].get("routes", []):
        assert not route.get("continue"), route
        pairs = [re.fullmatch(r'\s*(\w+)\s*=\s*"?([^"]*)"?\s*', m).groups() for m in route["matchers"]]
        if all(labels.get(k) == v for k, v in pairs):
            return route["receiver"]
    return config["route"]["receiver"]


def signaling_alert_names():
    text = (CHART / "templates" / "prometheusrule.yaml").read_text()
    return re.findall(r"^\s*- alert: (\w+)", text, flags=re.M)


def alertmanager_role(plan):
    (assoc,) = [a for a in plan.of_type(ASSOCIATION) if a["props"]["serviceAccount"] == "kube-prometheus-stack-alertmanager"]
    role = plan.by_id(assoc["props"]["roleArn"].rsplit("/", 1)[-1])
    assert role["type"] == ROLE
    return assoc, role


def test_alerts_go_to_the_stages_alarm_topic_in_its_region(plan):
    config = am_config(plan)
    (sns,) = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    (target,) = sns["sns_configs"]
    # The very topic every CloudWatch alarm of the stage uses (not the us-east-1 edge topic).
    assert target["topic_arn"] == plan["outputs"]["alarmTopicArn"]
    (topic,) = [t for t in plan.of_type(TOPIC) if target["topic_arn"].endswith(":" + t["props"]["name"])]
    assert topic["name"] == f"{plan['stack']}-alarms"
    assert target["topic_arn"].startswith(f"arn:aws:sns:{plan['config']['aws:region']}:")
    assert target["sigv4"] == {"region": plan["config"]["aws:region"]}
    # Credentials from Pod Identity, never from keys in values.
    assert not {"access_key", "secret_key", "role_arn", "profile"} & set(target["sigv4"])
    assert target["send_resolved"] is True
    route = config["route"]
    assert route["group_by"] == ["alertname", "namespace"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("30s", "5m", "4h")
    # Short text: alert name, severity, stage, summary.
    assert f"[{plan['stack']}]" in target["subject"] and ".GroupLabels.alertname" in target["subject"]
    assert "\n" not in target["subject"]
    for part in (".Labels.alertname", ".Labels.severity", f"stage: {plan['stack']}", ".Annotations.summary"):
        assert part in target["message"], part
    for text in (target["subject"], target["message"]):
        assert text.count("{{") == text.count("}}")
        assert text.count("{{ range") + text.count("{{ if") == text.count("{{ end }}")


def test_watchdog_goes_to_null_and_every_signaling_alert_to_sns(plan):
    config = am_config(plan)
    (null,) = [r for r in config["receivers"] if r["name"] == "null"]
    assert set(null) == {"name"}  # a receiver with no integration drops the notification
    assert receiver_of(config, {"alertname": "Watchdog", "severity": "none"}) == "null"
    assert receiver_of(config, {"alertname": "InfoInhibitor", "severity": "none", "namespace": "kube-system"}) == "null"
    names = signaling_alert_names()
    assert {"HighWebSocketConnections", "SignalingServerDown", "SignalingTargetsMissing"} <= set(names)
    for name in names:
        # Severity decides: critical pages (the critical topic), warning goes to chat (the alarm topic).
        assert receiver_of(config, {"alertname": name, "severity": "critical", "namespace": "signaling"}) == "sns-critical", name
        assert receiver_of(config, {"alertname": name, "severity": "warning", "namespace": "signaling"}) == "sns-warning", name


def test_alertmanager_role_publishes_to_the_topic_only(plan):
    assoc, role = alertmanager_role(plan)
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p["parent"] == role["urn"]]
    assert policy["props"]["role"] == role["id"]
    assert not [
        p for p in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if p["props"]["role"] in (role["id"], role["name"])
    ]
    statements = json.loads(policy["props"]["policy"])["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    (publish,) = [s for s in statements if s["Action"] == "sns:Publish"]
    # Exactly the two topics its receivers name: the alarm topic (warning) and the critical topic.
    receivers = [c["topic_arn"] for r in am_config(plan)["receivers"] for c in r.get("sns_configs", [])]
    assert publish["Resource"] == [plan["outputs"]["alarmTopicArn"], plan["outputs"]["criticalTopicArn"]] == receivers
    # The KMS actions SNS needs from a publisher, on the topics' own key (followed from the topics).
    (kms,) = [s for s in statements if s is not publish]
    assert set(kms["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    for arn in publish["Resource"]:
        (topic,) = [t for t in plan.of_type(TOPIC) if arn.endswith(":" + t["props"]["name"])]
        key = plan.by_id(topic["props"]["kmsMasterKeyId"].rsplit("/", 1)[-1])
        assert key["type"] == "aws:kms/key:Key"
        assert kms["Resource"] == topic["props"]["kmsMasterKeyId"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"sns.{plan['config']['aws:region']}.amazonaws.com"}}


def test_alertmanager_pod_identity_binds_the_charts_service_account(plan):
    assoc, role = alertmanager_role(plan)
    kps = stack_release(plan)
    sa = kps["props"]["values"]["alertmanager"]["serviceAccount"]
    assert sa["create"] is True
    assert assoc["props"]["serviceAccount"] == sa["name"] == "kube-prometheus-stack-alertmanager"
    assert assoc["props"]["namespace"] == kps["props"]["namespace"]
    assert assoc["props"]["clusterName"] == plan["outputs"]["clusterName"]
    (trust,) = json.loads(role["props"]["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    cond = trust["Condition"]["StringEquals"]
    assert cond["aws:SourceAccount"] == "123456789012"
    assert (
        cond["aws:RequestTag/eks-cluster-arn"]
        == f"arn:aws:eks:{plan['config']['aws:region']}:123456789012:cluster/{plan['outputs']['clusterName']}"
    )
    assert cond["aws:RequestTag/kubernetes-namespace"] == kps["props"]["namespace"]
    assert cond["aws:RequestTag/kubernetes-service-account"] == sa["name"]
    # Agent -> association (and the policy) -> release: the pod gets working credentials at start.
    (agent,) = [a for a in plan.of_type(ADDON) if a["props"]["addonName"] == "eks-pod-identity-agent"]
    assert agent["urn"] in assoc["dependsOn"]
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p["parent"] == role["urn"]]
    assert {assoc["urn"], policy["urn"]} <= set(kps["dependsOn"])


def test_alerts_to_sns_off_keeps_the_null_receiver_and_no_role():
    from tests.test_autoscaler import BOTH_OFF  # the same variant plan (the autoscaler is off in it too)

    assert BOTH_OFF["voip-infra:monitoring"]["alertsToSns"] is False
    plan = variant("dev", BOTH_OFF)
    config = am_config(plan)
    assert config["route"]["receiver"] == "null"
    assert [r["name"] for r in config["receivers"]] == ["null"]
    assert "sns_configs" not in json.dumps(config)
    assert not [a for a in plan.of_type(ASSOCIATION) if "alertmanager" in a["props"]["serviceAccount"]]
    assert not [r for r in plan.of_type(ROLE) if "alertmanager" in r["name"]]
    # The rest of the stack is unchanged.
    assert stack_release(plan)["props"]["values"]["prometheus"] == stack_release(stack_plan("dev"))["props"]["values"]["prometheus"]
