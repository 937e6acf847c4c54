"""charts/signaling rendered by real Helm (helm-python-sdk, in-process) with each stack's
release values (taken from the plan, as Pulumi passes them), validated against the
Kubernetes schemas, and scanned once by checkov."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from components.config import ClusterConfig
from tests.harness import STACKS, stack_plan
from tests.helm_charts import assert_lint_clean, by_kind, render_chart, the

h = pytest.importorskip("helm_python")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "signaling"
# The schemas of the Kubernetes minor the clusters run (cluster.version default).
K8S_VERSION = ClusterConfig.model_fields["version"].default
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "TargetGroupBinding"}
TG_ARN = "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/{}/73e2d6bc24d8a067"


def release_values(stack: str) -> dict:
    plan = stack_plan(stack)
    (rel,) = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r["props"]["chart"] == "./charts/signaling"]
    return copy.deepcopy(rel["props"]["values"])


def render(values: dict, namespace: str = "voip") -> list[dict]:
    return render_chart(CHART, values, "signaling", namespace)


@pytest.fixture(scope="module", params=STACKS)
def rendered(request):
    values = release_values(request.param)
    return request.param, values, by_kind(render(values, namespace=stack_plan(request.param)["config"]["signaling"]["namespace"]))


# ------------------------------------------------------------------ lint + schema


def test_lint_clean():
    assert_lint_clean(CHART, release_values("production"))


def test_core_objects_valid_against_kubernetes_schemas(rendered):
    _, _, kinds = rendered
    core = [o for kind, objs in kinds.items() if kind not in CRD_KINDS for o in objs]
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy", "ConfigMap"} <= {
        o["kind"] for o in core
    }
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


# ------------------------------------------------------------------ the operating envelope


def test_hpa_bounds_and_metrics(rendered):
    stack, values, kinds = rendered
    spec = the(kinds, "HorizontalPodAutoscaler")["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": the(kinds, "Deployment")["metadata"]["name"]}
    bounds = (spec["minReplicas"], spec["maxReplicas"])
    assert bounds == (values["autoscaling"]["minReplicas"], values["autoscaling"]["maxReplicas"])
    if stack == "production":
        assert bounds == (3, 20)
    metrics = {m["type"]: m for m in spec["metrics"]}
    assert metrics["Resource"]["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    # Seed 000: 1000 WebSocket connections per pod (served by prometheus-adapter).
    assert values["autoscaling"]["connectionsMetricEnabled"] is True
    assert set(metrics) == {"Resource", "Pods"}
    assert metrics["Pods"]["pods"]["metric"]["name"] == "websocket_connections"
    assert metrics["Pods"]["pods"]["target"] == {"type": "AverageValue", "averageValue": "1000"}
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] >= 300
    assert down["selectPolicy"] == "Min"
    assert all(p["type"] == "Pods" and p["value"] <= 2 for p in down["policies"])  # never a burst
    # The HPA owns the replica count: the Deployment does not set one.
    assert "replicas" not in the(kinds, "Deployment")["spec"]


def test_connections_metric_only_when_enabled():
    values = release_values("production")
    values["autoscaling"]["connectionsMetricEnabled"] = False
    (hpa,) = by_kind(render(values))["HorizontalPodAutoscaler"]
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]


def test_chart_kube_version_allows_the_prestop_sleep_action():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.30.0-0"


def container(kinds):
    (c,) = the(kinds, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def test_probes_on_the_metrics_port(rendered):
    _, _, kinds = rendered
    c = container(kinds)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"websocket": 8080, "metrics": 9090}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert c["startupProbe"]["httpGet"]["port"] == "metrics"
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 30


def test_resources_env_and_secrets_by_reference(rendered):
    stack, values, kinds = rendered
    c = container(kinds)
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    env = {e["name"]: e for e in c["env"]}
    assert env["SERVER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    secret_names = {s["props"]["metadata"]["name"]: s for s in stack_plan(stack).of_type("kubernetes:core/v1:Secret")}
    for var in ("REDIS_URL", "TURN_SHARED_SECRET"):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert "value" not in env[var]
        assert ref["name"] in secret_names  # a Secret Pulumi creates
    if values["image"]["digest"]:
        assert c["image"].endswith("@" + values["image"]["digest"])


def test_security_context(rendered):
    _, _, kinds = rendered
    pod = the(kinds, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = container(kinds)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] >= 10000


def test_grace_period_and_prestop_drain(rendered):
    _, values, kinds = rendered
    pod = the(kinds, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == values["terminationGracePeriodSeconds"] == 30
    sleep = container(kinds)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 0 < sleep < pod["terminationGracePeriodSeconds"]
    env = {e["name"]: e.get("value") for e in container(kinds)["env"]}
    assert int(env["SHUTDOWN_DRAIN_SECONDS"]) == pod["terminationGracePeriodSeconds"] - sleep


def test_pdb_and_topology_spread(rendered):
    _, _, kinds = rendered
    pdb = the(kinds, "PodDisruptionBudget")["spec"]
    selector = the(kinds, "Deployment")["spec"]["selector"]["matchLabels"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"] == selector
    spread = {t["topologyKey"]: t for t in the(kinds, "Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"]}
    assert spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["topology.kubernetes.io/zone"]["maxSkew"] == 1
    assert "kubernetes.io/hostname" in spread
    assert all(t["labelSelector"]["matchLabels"] == selector for t in spread.values())


def test_pods_land_on_the_signaling_nodes(rendered):
    _, values, kinds = rendered
    pod = the(kinds, "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == values["nodeSelector"] and pod["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"] and pod["tolerations"]


def test_network_policy(rendered):
    _, values, kinds = rendered
    spec = the(kinds, "NetworkPolicy")["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    lb = [r for r in spec["ingress"] if any("ipBlock" in f for f in r["from"])]
    (lb_rule,) = lb
    assert {f["ipBlock"]["cidr"] for f in lb_rule["from"]} == set(values["networkPolicy"]["loadBalancerCidrs"])
    for rule in spec["ingress"]:
        assert rule["from"], "an ingress rule without sources admits everyone"
    egress_ports = {(p["port"], p["protocol"]) for r in spec["egress"] for p in r["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (6379, "TCP"), (3478, "UDP"), (5349, "TCP")} <= egress_ports
    for rule in spec["egress"]:
        assert rule["to"] and all("0.0.0.0/0" != (t.get("ipBlock") or {}).get("cidr") for t in rule["to"])


def test_monitoring_objects(rendered):
    _, _, kinds = rendered
    sm = the(kinds, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert sm["spec"]["selector"]["matchLabels"].items() <= the(kinds, "Service")["metadata"]["labels"].items()
    rules = {r["alert"]: r for g in the(kinds, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert {"HighWebSocketConnections", "SignalingServerDown", "HighErrorRate"} <= set(rules)
    # TURN rules live with the monitoring side, on coturn's real metric names (test_alert_rules.py).
    assert not {"TurnBandwidthHigh", "TurnSessionsHigh"} & set(rules)
    assert re.search(r"websocket_connections\{.*\} > 5000$", rules["HighWebSocketConnections"]["expr"])
    assert rules["HighWebSocketConnections"]["for"] == "5m"
    assert rules["SignalingServerDown"]["expr"].startswith('up{job="signaling"')
    assert re.search(r"> 10$", rules["HighErrorRate"]["expr"])
    # The postmortem: alert when no pod is scraped at all, not only when one is down.
    assert rules["SignalingTargetsMissing"]["expr"].startswith("absent(")
    dashboard = the(kinds, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    panels = json.loads(dashboard["data"]["signaling.json"])["panels"]
    assert {"Active Connections", "Message Rate", "TURN Bandwidth", "Error Rate"} <= {p["title"] for p in panels}


def test_no_target_group_binding_without_arns(rendered):
    _, values, kinds = rendered
    if not values["targetGroupBindings"]["alb"]["targetGroupArn"] and not values["targetGroupBindings"]["nlb"]["targetGroupArn"]:
        assert "TargetGroupBinding" not in kinds


# ------------------------------------------------------------------ variants of the values


def test_target_group_bindings_when_arns_given():
    values = release_values("production")
    values["targetGroupBindings"] = {
        "alb": {"targetGroupArn": TG_ARN.format("prod-ws-alb")},
        "nlb": {"targetGroupArn": TG_ARN.format("prod-ws-nlb")},
    }
    kinds = by_kind(render(values))
    tgbs = {t["metadata"]["name"]: t for t in kinds["TargetGroupBinding"]}
    assert set(tgbs) == {"signaling-alb", "signaling-nlb"}
    service = the(kinds, "Service")
    for name, tgb in tgbs.items():
        assert tgb["apiVersion"] == "elbv2.k8s.aws/v1beta1"
        assert tgb["spec"]["targetType"] == "ip"
        assert tgb["spec"]["serviceRef"] == {"name": service["metadata"]["name"], "port": "websocket"}
        assert tgb["spec"]["targetGroupARN"] == values["targetGroupBindings"][name.rsplit("-", 1)[1]]["targetGroupArn"]


def test_monitoring_flags_guard_each_object():
    values = release_values("production")
    values["monitoring"] = {"serviceMonitor": {"enabled": False}, "prometheusRule": {"enabled": True}, "dashboard": {"enabled": False}}
    kinds = by_kind(render(values))
    assert "ServiceMonitor" not in kinds and "ConfigMap" not in kinds and "PrometheusRule" in kinds


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"replicaCount": "three"}, "replicaCount"),
        ({"autoscaling": {"minReplicas": "three"}}, "minReplicas"),
        ({"image": {"tag": "latest"}}, "tag"),
        ({"replicas": 3}, "replicas"),  # unknown key (a typo of replicaCount)
        ({"networkPolicy": {"loadBalancerCidrs": ["10.0.0.0/33"]}}, "loadBalancerCidrs"),
        ({"targetGroupBindings": {"alb": {"targetGroupArn": "not-an-arn"}}}, "targetGroupArn"),
        ({"autoscaling": {"minReplicas": 10, "maxReplicas": 5}}, "minReplicas"),
        ({"terminationGracePeriodSeconds": 10, "preStopSleepSeconds": 10}, "preStopSleepSeconds"),
    ],
)
def test_bad_values_fail_the_render(patch, message):
    with pytest.raises(h.HelmError) as err:
        render(patch)
    assert message in str(err.value)


# ------------------------------------------------------------------ checkov (once, production)


def readme_skips() -> dict[str, str]:
    text = (CHART / "README.md").read_text()
    section = text.split("## Checkov skips", 1)[1]
    return dict(re.findall(r"^\| (CKV2?_K8S_[0-9]+) \| (.+?) \|$", section, flags=re.M))
