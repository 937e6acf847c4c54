"""The time of a first `pulumi up` of a stage: the critical path through the plan's dependency
graph, each resource weighted with the typical time AWS (or Helm) takes to create one of its type.

Pulumi creates a resource as soon as everything it depends on exists (dependsOn: explicit
`depends_on` plus every resource whose outputs feed its inputs; its provider), in parallel up to
the engine's parallelism (unbounded by default), so the longest weighted chain is the wall time.
Figures are typical, not worst cases; each row names its source. Run `tools plan` to see the
chain (CONTRACTS.md: `first_up_minutes: N`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# type -> (minutes, source). Types not listed take DEFAULT_MINUTES (an API call or two).
# "TF" = the Terraform AWS provider's default create timeout for the resource (the upper bound the
# Pulumi provider waits, its docs), "AWS" = the service's user guide, "field" = what creations in
# ap-northeast-2 typically take (several runs, the order of magnitude the guides state).
CREATE_MINUTES: dict[str, tuple[float, str]] = {
    "aws:eks/cluster:Cluster": (10.0, "AWS EKS user guide: control plane 'takes several minutes'; field 8-12 min (TF timeout 30m)"),
    "aws:eks/nodeGroup:NodeGroup": (4.0, "field 3-5 min until nodes are Ready (TF timeout 60m)"),
    "aws:eks/addon:Addon": (1.5, "field 1-2 min until ACTIVE (TF timeout 20m)"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (0.2, "API call"),
    "aws:eks/accessEntry:AccessEntry": (0.2, "API call"),
    "aws:rds/instance:Instance": (10.0, "AWS RDS user guide: 'can take several minutes'; field 8-12 min single-AZ (TF timeout 40m)"),
    "aws:elasticache/replicationGroup:ReplicationGroup": (10.0, "field 8-12 min single node (TF timeout 60m)"),
    "aws:cloudfront/distribution:Distribution": (5.0, "AWS CloudFront: changes propagate 'within minutes'; field 3-6 min to Deployed"),
    "aws:cloudfront/vpcOrigin:VpcOrigin": (12.0, "AWS CloudFront VPC origins guide: 'up to 15 minutes' to Deployed"),
    "aws:acm/certificateValidation:CertificateValidation": (3.0, "field 1-5 min once the CNAME resolves (TF timeout 75m)"),
    "aws:ec2/natGateway:NatGateway": (2.0, "field 1-3 min until available (TF timeout 10m)"),
    "aws:lb/loadBalancer:LoadBalancer": (3.0, "field 2-4 min until active (TF timeout 10m)"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (1.0, "gateway <1 min, interface 1-2 min (TF timeout 10m)"),
    "aws:ec2/instance:Instance": (1.0, "field ~1 min to running (TF timeout 10m)"),
    "aws:route53/zone:Zone": (1.0, "Route 53 waits for INSYNC, ~1 min"),
    "aws:route53/record:Record": (1.0, "Route 53 waits for INSYNC, ~1 min (AWS Route 53 docs: 'within 60 seconds')"),
    "aws:route53/healthCheck:HealthCheck": (0.2, "API call"),
    "aws:wafv2/webAcl:WebAcl": (0.5, "field <1 min"),
    "aws:dms/replicationInstance:ReplicationInstance": (12.0, "field 10-15 min (TF timeout 40m)"),
    "aws:ec2/vpnConnection:VpnConnection": (6.0, "field 5-8 min to available (TF timeout 40m)"),
    "aws:ec2/vpnGateway:VpnGateway": (1.0, "field ~1 min attached"),
    "aws:iam/role:Role": (0.2, "API call; the provider retries through IAM propagation"),
    "aws:kms/key:Key": (0.3, "API call + policy propagation"),
    "aws:codebuild/project:Project": (0.3, "API call"),
    "kubernetes:helm.sh/v3:Release": (2.0, "Helm install waiting for ready pods (field 1-3 min; timeout 300 s)"),
    "kubernetes:core/v1:Namespace": (0.1, "API call"),
}
DEFAULT_MINUTES = (0.1, "an API call (a few seconds)")


def _minutes(r: Mapping[str, Any]) -> tuple[float, str]:
    typ, props = r["type"], r.get("props") or {}
    if typ == "aws:rds/instance:Instance":
        if props.get("snapshotIdentifier"):
            return 15.0, "restored from a snapshot (field 10-20 min for tens of GB; blocks load lazily afterwards)"
        if props.get("replicateSourceDb"):
            return 12.0, "read replica: a snapshot of the primary restored (field 10-15 min)"
        if props.get("multiAz"):
            return 15.0, "Multi-AZ: the standby is built from a snapshot of the primary (field 12-18 min)"
    if typ == "aws:elasticache/replicationGroup:ReplicationGroup" and int(props.get("numCacheClusters") or 1) > 1:
        return 14.0, "with replicas: nodes added one by one after the primary (field 12-16 min)"
    if typ == "kubernetes:helm.sh/v3:Release" and str(props.get("chart", "")).endswith("kube-prometheus-stack"):
        return 4.0, "kube-prometheus-stack: Prometheus, Grafana, node-exporter, PVC bound (field 3-5 min)"
    if typ.startswith("pulumi:providers:"):
        return 0.0, "no cloud call"
    return CREATE_MINUTES.get(typ, DEFAULT_MINUTES)


@dataclass(frozen=True)
class Step:
    urn: str
    type: str
    name: str
    minutes: float
    source: str


@dataclass(frozen=True)
class CriticalPath:
    steps: tuple[Step, ...]

    @property
    def total(self) -> float:
        return sum(s.minutes for s in self.steps)

    @property
    def minutes(self) -> int:
        """Whole minutes, rounded up (what `tools plan` prints)."""
        return math.ceil(round(self.total, 6))


def dependencies(plan: Mapping[str, Any]) -> dict[str, set[str]]:
    """urn -> the custom resources (and providers) that must exist before it is created."""
    resources = plan["resources"]
    by_urn = {r["urn"]: r for r in resources}
    custom_children: dict[str, list[str]] = {}
    for r in resources:
        if r.get("parent"):
            custom_children.setdefault(r["parent"], []).append(r["urn"])

    def expand(urn: str) -> set[str]:
        # Depending on a component means depending on everything under it.
        r = by_urn.get(urn)
        if r is None:
            return set()
        if r["custom"]:
            return {urn}
        out: set[str] = set()
        for child in custom_children.get(urn, []):
            out |= expand(child)
        return out

    graph: dict[str, set[str]] = {}
    for r in resources:
        if not r["custom"]:
            continue
        deps: set[str] = set()
        for d in [*(r.get("dependsOn") or []), *([r["provider"]] if r.get("provider") else [])]:
            deps |= expand(d)
        deps.discard(r["urn"])
        graph[r["urn"]] = deps
    return graph


def critical_path(plan: Mapping[str, Any], graph: dict[str, set[str]] | None = None) -> CriticalPath:
    graph = graph if graph is not None else dependencies(plan)
    by_urn = {r["urn"]: r for r in plan["resources"]}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}

    def visit(urn: str, trail: frozenset[str] = frozenset()) -> float:
        if urn in finish:
            return finish[urn]
        if urn in trail:
            raise ValueError(f"dependency cycle through {urn}")
        best, best_dep = 0.0, None
        for dep in sorted(graph.get(urn, ())):
            if dep in graph:
                t = visit(dep, trail | {urn})
                if t > best:
                    best, best_dep = t, dep
        finish[urn] = best + _minutes(by_urn[urn])[0]
        via[urn] = best_dep
        return finish[urn]

    for urn in graph:
        visit(urn)
    end = max(sorted(finish), key=lambda u: finish[u]) if finish else None
    steps: list[Step] = []
    while end is not None:
        r = by_urn[end]
        minutes, source = _minutes(r)
        steps.append(Step(end, r["type"], r["name"], minutes, source))
        end = via[end]
    return CriticalPath(tuple(reversed(steps)))


def render(path: CriticalPath, *, limit_short: float = 0.5) -> list[str]:
    """`first_up_minutes: N` and the chain (steps under `limit_short` minutes are counted, not listed)."""
    lines = [
        f"first_up_minutes: {path.minutes}",
        f"first_up_chain ({len(path.steps)} resources, the longest chain of a first `pulumi up`; tools/critical_path.py):",
    ]
    clock, folded = 0.0, 0
    for s in path.steps:
        clock += s.minutes
        if s.minutes < limit_short:
            folded += 1
            continue
        after = f", after {folded} quick steps" if folded else ""
        lines.append(f"  {clock:5.1f} min  {s.type.rsplit(':', 1)[-1]} {s.name} (+{s.minutes:g}{after})")
        folded = 0
    return lines
