"""Node autoscaling: the Kubernetes Cluster Autoscaler for the EKS managed node groups.

The signaling HPA adds pods; without this nothing adds the nodes they need (they stay
Pending) and nothing removes idle nodes at night. The autoscaler finds the node groups'
Auto Scaling groups by the tags EKS puts on them (`k8s.io/cluster-autoscaler/enabled`,
`k8s.io/cluster-autoscaler/<cluster>`) and moves only their desired capacity, between each
group's minSize and maxSize (the node group config stays the ceiling). Credentials come
from EKS Pod Identity; it may change only this cluster's groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.cluster.pod_identity import ClusterAccess, PodRoles
from components.cluster.releases import helm_release
from components.config import AutoscalerConfig
from components.context import StageContext
from components.iam import allow, policy_document

CLUSTER_AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
CLUSTER_AUTOSCALER_CHART = "cluster-autoscaler"
CLUSTER_AUTOSCALER_NAMESPACE = "kube-system"
# Fixed (the chart would derive one from the release name): the Pod Identity association names it.
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"

# What the autoscaler reads to build its node templates (instance types, launch templates,
# managed node group labels/taints when a group is at zero). These Describe calls accept no
# resource-level scoping.
READ_ACTIONS = (
    "autoscaling:Describe*",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
)
# eks:DescribeNodegroup takes a nodegroup ARN: only this cluster's groups.
NODEGROUP_READ_ACTIONS = ("eks:DescribeNodegroup",)


def nodegroups_arn(cluster_arn: str) -> str:
    """`arn:aws:eks:R:A:cluster/NAME` -> `arn:aws:eks:R:A:nodegroup/NAME/*/*` (every group of that cluster)."""
    prefix, name = cluster_arn.split(":cluster/", 1)
    return f"{prefix}:nodegroup/{name}/*/*"


# What it changes: desired capacity, and the one instance it drained on scale-down.
WRITE_ACTIONS = ("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup")


@dataclass
class NodeAutoscalerArgs:
    ctx: StageContext
    config: AutoscalerConfig
    # The EKS cluster: its name drives auto-discovery and the write condition, its ARN the trust.
    cluster: ClusterAccess
    # Where the autoscaler runs (the system node group): never on the nodes it may remove
    # for lack of work, and not among the signaling pods.
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # How long a drained pod may take to stop before the node is removed anyway: at least
    # the signaling pods' grace period (their WebSockets drain in it).
    max_graceful_termination_seconds: int = 600
    # The node groups and CoreDNS: the release's pods need nodes and DNS to become Ready.
    depends_on: Sequence[pulumi.Resource] = ()


class NodeAutoscaler(pulumi.ComponentResource):
    """Cluster Autoscaler Helm release + its Pod Identity role and association.

    Exposes `.role`, `.pod_identity`, `.release`, `.service_account` (the name the release
    creates and the association binds).
    """

    def __init__(self, name: str, args: NodeAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:cluster:NodeAutoscaler", name, None, opts)
        stage, cfg = args.ctx.stage, args.config
        self.service_account = CLUSTER_AUTOSCALER_SERVICE_ACCOUNT

        identity = PodRoles(args.ctx.account_id, args.cluster, CLUSTER_AUTOSCALER_NAMESPACE, parent=self).role(
            f"{stage}-cluster-autoscaler",
            CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
            description=f"{stage}: Kubernetes Cluster Autoscaler (pod identity)",
            policy=pulumi.Output.all(args.cluster.name, args.cluster.arn).apply(lambda v: _autoscaler_policy(*v)),
        )
        self.role, policy, self.pod_identity = identity.role, identity.policy, identity.association

        self.release = helm_release(
            f"{stage}-cluster-autoscaler",
            chart=CLUSTER_AUTOSCALER_CHART,
            version=cfg.chart_version,
            repo=CLUSTER_AUTOSCALER_REPO,
            namespace=CLUSTER_AUTOSCALER_NAMESPACE,
            values=pulumi.Output.from_input(args.cluster.name).apply(
                lambda cluster: release_values(
                    cluster, args.ctx.region, cfg, dict(args.node_selector), args.ctx.protect, args.max_graceful_termination_seconds
                )
            ),
            parent=self,
            provider=args.cluster.k8s_provider,
            # The association and the policy first: the pods' first AWS call must succeed.
            depends_on=[self.pod_identity, policy, *args.depends_on],
        )

        self.register_outputs({"roleArn": self.role.arn, "serviceAccount": self.service_account})


def release_values(
    cluster_name: str,
    region: str,
    cfg: AutoscalerConfig,
    node_selector: dict[str, str],
    high_availability: bool,
    max_graceful_termination_seconds: int = 600,
) -> dict:
    """The chart values (chart defaults for everything not named here)."""
    image = {"image": {"tag": cfg.image_tag}} if cfg.image_tag else {}
    return {
        # The autoscaler release matching the cluster's minor (config checks it) when the
        # newest chart still ships an older app version.
        **image,
        "cloudProvider": "aws",
        # Pods cannot reach IMDS (launch templates: hop limit 1): the region is given.
        "awsRegion": region,
        # Finds the ASGs tagged k8s.io/cluster-autoscaler/enabled + k8s.io/cluster-autoscaler/<name>.
        "autoDiscovery": {"clusterName": cluster_name},
        "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
        # The autoscaler's own --leader-elect (default true) keeps one of two replicas active.
        "replicaCount": 2 if high_availability else 1,
        "nodeSelector": node_selector,
        "extraArgs": {
            # Node groups spread over the AZs stay balanced when they grow.
            "balance-similar-node-groups": True,
            # kube-system pods (CoreDNS, controllers) have PDBs; they must not pin a node forever.
            "skip-nodes-with-system-pods": False,
            # Grow the group that leaves the least CPU/memory idle.
            "expander": "least-waste",
            "scale-down-enabled": cfg.scale_down_enabled,
            "scale-down-unneeded-time": f"{cfg.scale_down_unneeded_minutes}m",
            "max-graceful-termination-sec": max_graceful_termination_seconds,
        },
        # The autoscaler's documented footprint for a small cluster; it must not be evicted first.
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _autoscaler_policy(cluster_name: str, cluster_arn: str) -> str:
    return policy_document(
        [
            allow("Discover", list(READ_ACTIONS), "*"),
            allow("DescribeOwnNodeGroups", list(NODEGROUP_READ_ACTIONS), nodegroups_arn(cluster_arn)),
            # EKS tags every managed node group's ASG k8s.io/cluster-autoscaler/<cluster>=owned:
            # another cluster's (or a hand-made) group cannot be resized or emptied.
            allow(
                "ScaleOwnNodeGroups",
                list(WRITE_ACTIONS),
                "*",
                StringEquals={f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"},
            ),
        ]
    )
