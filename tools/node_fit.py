"""Pod density and requests against each managed node group, from a plan file.

For every node group: the pods that land on it (DaemonSets once per node of every group whose
taints they tolerate; Deployments and StatefulSets by their node selector, at their steady-state
replica count: the HPA's minReplicas for our charts) must fit `maxPods x desiredSize`, and their
CPU and memory requests must fit `allocatable x desiredSize`; the biggest single pod must fit one
node beside the DaemonSets. Steady state only: a rolling update's surge pods and the canary's
extra pods come and go, and the Cluster Autoscaler adds a node for them up to maxSize.

Used by tests/test_node_fit.py over every stage's plan; not on the plan path (imports yaml).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"
ADDON = "aws:eks/addon:Addon"

# instance type -> (vCPUs, memory GiB, ENIs, IPv4 addresses per ENI), from the EC2 instance type
# pages (networking: "Maximum network interfaces" / "IPv4 addresses per interface"). The VPC CNI
# without prefix delegation gives a node ENIs x (IPs - 1) + 2 pods: the formula of
# amazon-eks-ami's eni-max-pods.txt (t4g.medium 3 x 5 + 2 = 17).
INSTANCES: dict[str, tuple[int, float, int, int]] = {
    "t4g.micro": (2, 1, 2, 2),
    "t4g.small": (2, 2, 3, 4),
    "t4g.medium": (2, 4, 3, 6),
    "t4g.large": (2, 8, 3, 12),
    "t4g.xlarge": (4, 16, 4, 15),
    "t4g.2xlarge": (8, 32, 4, 15),
    **{
        f"{fam}.medium": (1, mem, 2, 4)
        for fam, mem in (("c7g", 2), ("c6g", 2), ("c6gn", 2), ("c7gn", 2), ("m7g", 4), ("m6g", 4), ("r7g", 8))
    },
    **{
        f"{fam}.large": (2, mem, 3, 10)
        for fam, mem in (("c7g", 4), ("c6g", 4), ("c6gn", 4), ("c7gn", 4), ("m7g", 8), ("m6g", 8), ("r7g", 16))
    },
    **{
        f"{fam}.xlarge": (4, mem, 4, 15)
        for fam, mem in (("c7g", 8), ("c6g", 8), ("c6gn", 8), ("c7gn", 8), ("m7g", 16), ("m6g", 16), ("r7g", 32))
    },
    **{
        f"{fam}.2xlarge": (8, mem, 4, 15)
        for fam, mem in (("c7g", 16), ("c6g", 16), ("c6gn", 16), ("c7gn", 16), ("m7g", 32), ("m6g", 32), ("r7g", 64))
    },
    **{
        f"{fam}.4xlarge": (16, mem, 8, 30)
        for fam, mem in (("c7g", 32), ("c6g", 32), ("c6gn", 32), ("c7gn", 32), ("m7g", 64), ("m6g", 64), ("r7g", 128))
    },
}

# The EKS AMIs' kubelet reservation (amazon-eks-ami bootstrap.sh / nodeadm, the same formula in
# eksctl pkg/nodebootstrap/reserved.go): kube-reserved memory = 255 Mi + 11 Mi x maxPods; CPU =
# 6 % of the first core + 1 % of the second + 0.5 % of cores 3-4 + 0.25 % of the rest; plus the
# kubelet's evictionHard memory.available 100 Mi. No system-reserved. Memory is the nominal GiB:
# the kernel reports a little less, so the real allocatable is slightly lower than this.
EVICTION_MIB = 100
_CPU_STEPS = ((1000, 0.06), (2000, 0.01), (4000, 0.005), (10**9, 0.0025))


@dataclass(frozen=True)
class Node:
    cpu_m: int
    mem_mi: int
    pods: int


def node(instance_type: str) -> Node:
    """What one node of `instance_type` offers pods (allocatable CPU, memory and pod slots)."""
    if instance_type not in INSTANCES:
        raise ValueError(f"{instance_type}: not in tools/node_fit.py INSTANCES (add its vCPUs, GiB, ENIs and IPs per ENI)")
    vcpu, gib, enis, ips = INSTANCES[instance_type]
    pods = enis * (ips - 1) + 2
    cpu, reserved, lower = vcpu * 1000, 0.0, 0
    for upper, fraction in _CPU_STEPS:
        reserved += (min(cpu, upper) - lower) * fraction
        if cpu <= upper:
            break
        lower = upper
    return Node(cpu_m=cpu - int(reserved), mem_mi=int(gib * 1024) - (255 + 11 * pods) - EVICTION_MIB, pods=pods)


@dataclass(frozen=True)
class Workload:
    """A pod template of a third-party chart or add-on: where in the release's values its node
    selector / tolerations, replica count and resources live, and the chart's defaults."""

    name: str
    at: tuple[str, ...]  # the values holding nodeSelector and tolerations
    replicas: tuple[str, ...] | None  # None: a DaemonSet
    default_replicas: int
    resources: tuple[str, ...]
    cpu_m: int  # the chart's default request; 0 where the chart sets none
    mem_mi: int
    sidecar_cpu_m: int = 0  # containers the values here do not size
    sidecar_mem_mi: int = 0
    tolerate_all: bool = False  # the chart's default tolerations (operator: Exists)


def _w(name: str, at: str, replicas: str | None, default: int, resources: str, cpu: int = 0, mem: int = 0, **kw: Any) -> Workload:
    split = lambda s: tuple(s.split(".")) if s else ()  # noqa: E731
    return Workload(name, split(at), None if replicas is None else split(replicas), default, split(resources), cpu, mem, **kw)


# Chart defaults at the pinned versions (components/config.py and the cluster components pin
# them); each chart's values.yaml at that tag. "0": the chart sets no request (resources: {}).
CHARTS: dict[str, list[Workload]] = {
    # aws-load-balancer-controller 1.14.0 (aws/eks-charts stable/aws-load-balancer-controller): replicaCount 2, resources {}.
    "aws-load-balancer-controller": [_w("aws-load-balancer-controller", "", "replicaCount", 2, "resources")],
    # metrics-server 3.12.2 (kubernetes-sigs/metrics-server charts/metrics-server): replicas 1, 100m / 200Mi.
    "metrics-server": [_w("metrics-server", "", "replicas", 1, "resources", 100, 200)],
    # cluster-autoscaler 9.59.0 (kubernetes/autoscaler): replicaCount 1, resources {} (ours are set).
    "cluster-autoscaler": [_w("cluster-autoscaler", "", "replicaCount", 1, "resources")],
    # argo-rollouts 2.41.0 (argoproj/argo-helm): controller.replicas 2, resources {} (ours are set).
    "argo-rollouts": [_w("argo-rollouts", "controller", "controller.replicas", 2, "controller.resources")],
    # kube-prometheus-stack 91.5.1 (prometheus-community/helm-charts): one Prometheus, one
    # Alertmanager, one Grafana, one kube-state-metrics, the operator; node-exporter a DaemonSet.
    # The operator adds a config-reloader sidecar to Prometheus and Alertmanager (its flags
    # --config-reloader-cpu-request 10m / --config-reloader-memory-request 50Mi defaults, the
    # operator's docs/operator.md); Grafana's sidecars request nothing.
    "kube-prometheus-stack": [
        _w("prometheus-operator", "prometheusOperator", "prometheusOperator.replicas", 1, "prometheusOperator.resources"),
        _w(
            "prometheus",
            "prometheus.prometheusSpec",
            "prometheus.prometheusSpec.replicas",
            1,
            "prometheus.prometheusSpec.resources",
            sidecar_cpu_m=10,
            sidecar_mem_mi=50,
        ),
        _w(
            "alertmanager",
            "alertmanager.alertmanagerSpec",
            "alertmanager.alertmanagerSpec.replicas",
            1,
            "alertmanager.alertmanagerSpec.resources",
            sidecar_cpu_m=10,
            sidecar_mem_mi=50,
        ),
        _w("grafana", "grafana", "grafana.replicas", 1, "grafana.resources"),
        _w("kube-state-metrics", "kube-state-metrics", "kube-state-metrics.replicas", 1, "kube-state-metrics.resources"),
        _w("prometheus-node-exporter", "prometheus-node-exporter", None, 0, "prometheus-node-exporter.resources"),
    ],
    # prometheus-adapter 5.3.0: replicas 1, resources {} (ours are set).
    "prometheus-adapter": [_w("prometheus-adapter", "", "replicas", 1, "resources")],
    # aws-for-fluent-bit 0.2.0 (aws/eks-charts stable/aws-for-fluent-bit): a DaemonSet, 50m / 50Mi,
    # tolerations [] (ours tolerate every taint: logs of every node).
    "aws-for-fluent-bit": [_w("fluent-bit", "", None, 0, "resources", 50, 50)],
    # opentelemetry-collector 0.182.0 (open-telemetry/opentelemetry-helm-charts): mode deployment, replicaCount 1, resources {}.
    "opentelemetry-collector": [_w("otel-collector", "", "replicaCount", 1, "resources")],
    # tempo 2.2.4 (grafana/helm-charts, single binary): replicas 1, tempo.resources {}; tempoQuery off.
    "tempo": [_w("tempo", "", "replicas", 1, "tempo.resources")],
    # prometheus-operator-crds: CRDs only, no pod.
    "prometheus-operator-crds": [],
}

# The EKS add-ons as EKS installs them (their configuration schema's defaults, `aws eks
# describe-addon-configuration`): the node agents tolerate every taint.
ADDONS: dict[str, list[Workload]] = {
    # aws-node: 25m CPU (the aws-node container; the network-policy agent sets none).
    "vpc-cni": [_w("aws-node", "", None, 0, "resources", 25, 0, tolerate_all=True)],
    # kube-proxy: 100m CPU, no memory request.
    "kube-proxy": [_w("kube-proxy", "", None, 0, "resources", 100, 0, tolerate_all=True)],
    # eks-pod-identity-agent (aws/eks-charts stable/eks-pod-identity-agent): resources {}, tolerations Exists.
    "eks-pod-identity-agent": [_w("eks-pod-identity-agent", "", None, 0, "resources", 0, 0, tolerate_all=True)],
    # CoreDNS: replicaCount 2, 100m / 70Mi each; no node selector, no toleration of our taints.
    "coredns": [_w("coredns", "", "replicaCount", 2, "resources", 100, 70)],
    # aws-ebs-csi-driver (kubernetes-sigs/aws-ebs-csi-driver charts/aws-ebs-csi-driver values.yaml):
    # controller replicaCount 2, its driver container 10m / 40Mi (the sidecars' resources {}); the
    # ebs-csi-node DaemonSet 10m / 40Mi with node.tolerateAllTaints true.
    "aws-ebs-csi-driver": [
        _w("ebs-csi-controller", "controller", "controller.replicaCount", 2, "controller.resources", 10, 40),
        _w("ebs-csi-node", "node", None, 0, "node.resources", 10, 40, tolerate_all=True),
    ],
}


@dataclass(frozen=True)
class Pods:
    name: str
    daemonset: bool
    replicas: int  # per node for a DaemonSet
    cpu_m: int
    mem_mi: int
    selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    tolerate_all: bool = False


def _get(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict):
            return None
        values = values.get(key)
    return values


def _cpu(q: Any) -> int:
    s = str(q)
    return int(float(s[:-1])) if s.endswith("m") else int(float(s) * 1000)


def _mem(q: Any) -> int:
    s = str(q)
    for suffix, mib in (("Gi", 1024), ("Mi", 1), ("G", 1000**3 / 2**20), ("M", 1000**2 / 2**20)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * mib)
    return int(int(s) / 2**20)


def _requests(resources: Any, cpu_m: int, mem_mi: int) -> tuple[int, int]:
    """The values' requests where set, else the chart's default."""
    if isinstance(resources, dict) and resources:
        req = resources.get("requests") or {}
        return (_cpu(req["cpu"]) if "cpu" in req else 0), (_mem(req["memory"]) if "memory" in req else 0)
    return cpu_m, mem_mi


def _from_table(table: list[Workload], values: dict) -> list[Pods]:
    out = []
    for w in table:
        cpu, mem = _requests(_get(values, w.resources), w.cpu_m, w.mem_mi)
        replicas = 1 if w.replicas is None else _get(values, w.replicas)
        out.append(
            Pods(
                name=w.name,
                daemonset=w.replicas is None,
                replicas=int(w.default_replicas if replicas is None else replicas),
                cpu_m=cpu + w.sidecar_cpu_m,
                mem_mi=mem + w.sidecar_mem_mi,
                selector=_get(values, (*w.at, "nodeSelector")) or {},
                tolerations=_get(values, (*w.at, "tolerations")) or [],
                tolerate_all=w.tolerate_all,
            )
        )
    return out


def _merged(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in over.items()}}
    return base if over is None else over


def _our_chart(chart: str, values: dict) -> list[Pods]:
    """Our charts (charts/*): their own values.yaml under the release's values."""
    v = _merged(yaml.safe_load((ROOT / chart / "values.yaml").read_text()), values)
    name = Path(chart).name
    place = {"selector": v.get("nodeSelector") or {}, "tolerations": v.get("tolerations") or []}
    if name == "valkey":
        # One single-pod Deployment per group; memory request = limit = maxmemory + max(64, half)
        # (charts/valkey/templates/_helpers.tpl valkey.memoryLimitMib).
        cpu = _cpu(v["resources"]["cpuRequest"])
        return [
            Pods(f"valkey-{g}", False, 1, cpu, int(c["maxmemoryMib"]) + max(64, int(c["maxmemoryMib"]) // 2), **place)
            for g, c in v["groups"].items()
        ]
    auto = v.get("autoscaling") or {}
    # The HPA keeps minReplicas at rest (co-talk has no switch: its HPA is always on).
    replicas = auto["minReplicas"] if auto.get("enabled", True) and "minReplicas" in auto else v["replicaCount"]
    cpu, mem = _requests(v["resources"], 0, 0)
    return [Pods(name, False, int(replicas), cpu, mem, **place)]


def workloads(plan: dict) -> list[Pods]:
    """Every pod template the plan runs, with its steady-state replica count and requests."""
    out: list[Pods] = []
    for r in plan["resources"]:
        props = r.get("props") or {}
        if r["type"] == RELEASE:
            chart, values = props["chart"], props.get("values") or {}
            if chart.startswith("./charts/"):
                out += _our_chart(chart, values)
            elif chart in CHARTS:
                out += _from_table(CHARTS[chart], values)
            else:
                raise ValueError(f"{r['name']}: chart {chart} is not in tools/node_fit.py CHARTS (add its pods and defaults)")
        elif r["type"] == ADDON:
            name = props["addonName"]
            if name not in ADDONS:
                raise ValueError(f"{r['name']}: add-on {name} is not in tools/node_fit.py ADDONS")
            out += _from_table(ADDONS[name], json.loads(props.get("configurationValues") or "{}"))
    return out


@dataclass(frozen=True)
class Group:
    name: str
    instance_type: str
    nodes: int
    label: dict[str, str]
    taints: list[dict[str, str]]


def groups(plan: dict) -> list[Group]:
    """The managed node groups at desiredSize, sized by their first instance type (the one the
    cost model prices and the smallest listed in our stacks)."""
    return [
        Group(
            name=p["nodeGroupName"],
            instance_type=p["instanceTypes"][0],
            nodes=int(p["scalingConfig"]["desiredSize"]),
            label=p.get("labels") or {},
            taints=p.get("taints") or [],
        )
        for r in plan["resources"]
        if r["type"] == NODE_GROUP
        for p in [r["props"]]
    ]


def _tolerates(pods: Pods, group: Group) -> bool:
    if pods.tolerate_all or any(t.get("operator") == "Exists" and not t.get("key") for t in pods.tolerations):
        return True
    return all(
        any(t.get("key") == taint["key"] and t.get("value") == taint["value"] and t.get("effect") == "NoSchedule" for t in pods.tolerations)
        for taint in group.taints
        if taint["effect"] == "NO_SCHEDULE"
    )


def _lands(pods: Pods, group: Group) -> bool:
    return all(group.label.get(k) == v for k, v in pods.selector.items()) and _tolerates(pods, group)


@dataclass(frozen=True)
class Fit:
    group: Group
    node: Node
    pods: int
    cpu_m: int
    mem_mi: int
    deployed: tuple[Pods, ...]  # the non-DaemonSet pods placed here
    per_node_cpu_m: int  # the DaemonSets' requests on each node
    per_node_mem_mi: int
    placed: tuple[str, ...]

    @property
    def capacity(self) -> Node:
        n = self.group.nodes
        return Node(self.node.cpu_m * n, self.node.mem_mi * n, self.node.pods * n)

    def problems(self) -> list[str]:
        g, cap, out = self.group, self.capacity, []
        where = f"{g.name} ({g.nodes} x {g.instance_type})"
        if self.pods > cap.pods:
            out.append(f"{where}: {self.pods} pods > {cap.pods} ({self.node.pods} a node)")
        if self.cpu_m > cap.cpu_m:
            out.append(f"{where}: CPU requests {self.cpu_m}m > allocatable {cap.cpu_m}m")
        if self.mem_mi > cap.mem_mi:
            out.append(f"{where}: memory requests {self.mem_mi}Mi > allocatable {cap.mem_mi}Mi")
        for b in self.deployed:
            if b.cpu_m + self.per_node_cpu_m > self.node.cpu_m or b.mem_mi + self.per_node_mem_mi > self.node.mem_mi:
                out.append(f"{where}: one {b.name} pod ({b.cpu_m}m, {b.mem_mi}Mi) does not fit a node beside the DaemonSets")
        return out

    def summary(self) -> str:
        cap = self.capacity
        return (
            f"{self.group.name} {self.group.nodes} x {self.group.instance_type}: pods {self.pods}/{cap.pods}, "
            f"CPU {self.cpu_m}/{cap.cpu_m}m, memory {self.mem_mi}/{cap.mem_mi}Mi"
        )


def fit(plan: dict) -> tuple[list[Fit], list[str]]:
    """Each node group's load against its capacity, and the pods no group admits."""
    gs, all_pods = groups(plan), workloads(plan)
    fits, homeless = [], []
    landing = {id(p): [g for g in gs if _lands(p, g)] for p in all_pods}
    for p in all_pods:
        if not landing[id(p)] and (p.replicas or p.daemonset):
            homeless.append(f"{p.name}: no node group matches its node selector {p.selector} and tolerations")
    for g in gs:
        here = [p for p in all_pods if g in landing[id(p)]]
        ds = [p for p in here if p.daemonset]
        # A Deployment that more than one group admits is counted on each (conservative; ours pin one pool).
        deps = [p for p in here if not p.daemonset and p.replicas]
        fits.append(
            Fit(
                group=g,
                node=node(g.instance_type),
                pods=sum(p.replicas for p in deps) + len(ds) * g.nodes,
                cpu_m=sum(p.replicas * p.cpu_m for p in deps) + sum(p.cpu_m for p in ds) * g.nodes,
                mem_mi=sum(p.replicas * p.mem_mi for p in deps) + sum(p.mem_mi for p in ds) * g.nodes,
                deployed=tuple(deps),
                per_node_cpu_m=sum(p.cpu_m for p in ds),
                per_node_mem_mi=sum(p.mem_mi for p in ds),
                placed=tuple(f"{p.name} x{p.replicas}" for p in deps) + tuple(f"{p.name} (DaemonSet)" for p in ds),
            )
        )
    return fits, homeless
