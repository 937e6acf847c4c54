"""The stage's cache groups as Valkey pods in the cluster (`cache.placement: cluster`): one
unreplicated Deployment + ClusterIP Service per group from `charts/valkey`, so the cache sleeps
with the nodes instead of billing an ElastiCache node around the clock.

Same contract as the ElastiCache Cache (components/data/cache.py): `connection_urls[group]`
(secret Outputs) and `primary_endpoints[group]`, so the platform hands either to signaling and
the apps. What differs (docs/data.md "In-cluster cache"): plain redis:// inside the cluster
(AUTH + NetworkPolicy, no TLS), no replica, no snapshot, no CloudWatch alarm (a Prometheus alert).
Only stages without protectData may run it (components/config.py CacheConfig).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_random as random
from pulumi_kubernetes.core import v1 as core

from components.cluster.pod_identity import ClusterAccess
from components.cluster.releases import helm_release, part_of_labels, stage_namespace
from components.config import CacheConfig
from components.context import StageContext

CHART_PATH = "./charts/valkey"
RELEASE_NAME = "valkey"
NAMESPACE = "cache"
AUTH_SECRET = "valkey-auth"
# The official image, pinned by tag (stages holding data never run it). valkey.io/download/8.1
# (read 2026-11-30): 8.1.11, released 2026-10-26, the newest 8.x patch of the valkey8 family the
# config's engineVersion belongs to; ElastiCache's 8.2 is its managed build of the same major.
IMAGE_REPOSITORY = "docker.io/valkey/valkey"
IMAGE_TAG = "8.1.11"
# The clients' pods: the signaling release and every co-talk app release (their charts' name label).
SIGNALING_POD_LABELS = {"app.kubernetes.io/name": "signaling", "app.kubernetes.io/instance": "signaling"}
APP_POD_LABELS = {"app.kubernetes.io/name": "co-talk"}


def service_host(group: str) -> str:
    return f"{RELEASE_NAME}-{group}.{NAMESPACE}.svc.cluster.local"


def group_selector(group: str) -> dict[str, str]:
    """The labels of a group's pods, exactly its Service's selector: a client's egress names
    these (the VPC CNI policy controller admits a Service's ClusterIP only for that selector)."""
    return {"app.kubernetes.io/name": RELEASE_NAME, "app.kubernetes.io/instance": RELEASE_NAME, "app.kubernetes.io/component": group}


def redis_egress_values(targets: Sequence[str | Mapping[str, Any]], port: int) -> dict[str, Any]:
    """A client chart's `networkPolicy.redis`: CIDRs (ElastiCache's subnets, the NAS over the VPN)
    and pod selectors (in-cluster groups: a ClusterIP is not in any subnet's CIDR). `pods` only
    when there are some, so the values of ElastiCache stages stay as they were."""
    values: dict[str, Any] = {"cidrs": [t for t in targets if isinstance(t, str)], "port": port}
    pods = [dict(t) for t in targets if not isinstance(t, str)]
    return {**values, "pods": pods} if pods else values


def connection_url(password: str, host: str, port: int) -> str:
    """redis:// (no TLS inside the cluster) with the group's password and the `default` user."""
    return f"redis://:{quote(password, safe='')}@{host}:{port}"


@dataclass(kw_only=True)
class InClusterCacheArgs:
    ctx: StageContext
    config: CacheConfig
    cluster: ClusterAccess
    # The namespace of the signaling release and the apps (the only clients admitted).
    client_namespace: str
    # Where the pods land: the system node group, beside the other add-ons.
    node_selector: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()


def release_values(args: InClusterCacheArgs) -> dict[str, Any]:
    """The chart values: config only; the passwords stay in the Secret the chart names."""
    return {
        "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG, "pullPolicy": "Always"},
        "port": args.ctx.ports.redis,
        "groups": {
            g: {"maxmemoryMib": gcfg.maxmemory_mib, "maxmemoryPolicy": gcfg.maxmemory_policy} for g, gcfg in args.config.groups.items()
        },
        "existingSecret": {"name": AUTH_SECRET},
        "nodeSelector": dict(args.node_selector),
        "networkPolicy": {
            "clients": [
                {"namespace": args.client_namespace, "matchLabels": SIGNALING_POD_LABELS},
                {"namespace": args.client_namespace, "matchLabels": APP_POD_LABELS},
            ]
        },
    }


class InClusterCache(pulumi.ComponentResource):
    """Namespace, the AUTH Secret (one random password per group) and the `charts/valkey`
    release. Exposes `connection_urls[g]` (secret), `primary_endpoints[g]`, `egress[g]` (the
    pod selector a client's NetworkPolicy admits) and `.release`."""

    def __init__(self, name: str, args: InClusterCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:cluster:InClusterCache", name, None, opts)
        stage, provider, port = args.ctx.stage, args.cluster.k8s_provider, args.ctx.ports.redis
        self.namespace = stage_namespace(
            f"{stage}-cache-ns",
            name=NAMESPACE,
            stage=stage,
            # The chart's pods meet the restricted Pod Security Standard; enforce it.
            labels={"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"},
            parent=self,
            provider=provider,
        )
        # Alphanumeric, like the ElastiCache AUTH tokens: safe in a URL and on a command line.
        passwords = {
            g: random.RandomPassword(f"{stage}-{g}-valkey-password", length=64, special=False, opts=pulumi.ResourceOptions(parent=self))
            for g in args.config.groups
        }
        self.secret = core.Secret(
            f"{stage}-cache-auth",
            metadata={"name": AUTH_SECRET, "namespace": self.namespace.metadata.name, "labels": part_of_labels(stage)},
            type="Opaque",
            string_data={g: pulumi.Output.secret(p.result) for g, p in passwords.items()},
            opts=pulumi.ResourceOptions(
                parent=self.namespace, provider=provider, additional_secret_outputs=["data", "stringData"], delete_before_replace=True
            ),
        )
        self.values = release_values(args)
        self.release = helm_release(
            f"{stage}-valkey",
            name=RELEASE_NAME,
            chart=CHART_PATH,
            namespace=self.namespace.metadata.name,
            values=self.values,
            create_namespace=False,
            parent=self,
            provider=provider,
            depends_on=[self.secret, *args.depends_on],
        )
        self.primary_endpoints: dict[str, pulumi.Output[str]] = {g: pulumi.Output.from_input(service_host(g)) for g in passwords}
        self.connection_urls: dict[str, pulumi.Output[str]] = {
            g: pulumi.Output.secret(p.result.apply(lambda pw, g=g: connection_url(pw, service_host(g), port))) for g, p in passwords.items()
        }
        self.egress = {g: {"namespace": NAMESPACE, "matchLabels": group_selector(g)} for g in passwords}
        self.register_outputs(
            {
                "namespace": NAMESPACE,
                "releaseName": self.release.name,
                "primaryEndpoints": self.primary_endpoints,
                "connectionUrls": self.connection_urls,
            }
        )
