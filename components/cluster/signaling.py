"""The signaling server's release: namespace, the Kubernetes Secrets holding
REDIS_URL and the TURN shared secret, and the Helm release of charts/signaling.

The Secrets are built from Pulumi secret Outputs (encrypted in state); the release
values carry only the Secrets' names, never their contents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.core import v1 as core

from components.cluster.releases import helm_release, part_of_labels, stage_namespace
from components.cluster.valkey import redis_egress_values
from components.config import SignalingConfig
from components.context import StageContext

CHART_PATH = "./charts/signaling"
RELEASE_NAME = "signaling"
REDIS_SECRET = f"{RELEASE_NAME}-redis"
REDIS_SECRET_KEY = "url"
TURN_SECRET = f"{RELEASE_NAME}-turn"
TURN_SECRET_KEY = "shared-secret"


@dataclass
class SignalingArgs:
    ctx: StageContext
    k8s_provider: pulumi.ProviderResource
    config: SignalingConfig
    redis_url: pulumi.Input[str]  # secret Output from the cache tier
    turn_shared_secret: pulumi.Input[str]  # secret Output from the TURN tier
    turn_uris: Sequence[str] | pulumi.Input[Sequence[str]]
    # Where wss://ws.<domain> enters (edge.signalingEntry): the NLB's target group, or the ALB's
    # ws.<domain> one behind CloudFront; the chart binds the pods to whichever is set.
    nlb_target_group_arn: pulumi.Input[str] | None
    # Public subnets' CIDRs: the load balancers' addresses (NetworkPolicy ingress).
    lb_subnet_cidrs: Sequence[str]
    # Egress: Redis (isolated subnets) and the TURN nodes both live inside the VPC.
    vpc_cidr: str
    # Where REDIS_URL points when it is not the VPC's ElastiCache (the NAS Redis over the VPN
    # during the migration's dual run, or the in-cluster Valkey): (CIDRs or pod selectors, port), the
    # only Redis egress the NetworkPolicy allows.
    redis_egress: tuple[Sequence[str | Mapping[str, Any]], int] | None = None
    # Where the pods land (the cluster's signaling node group label and taint).
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # Where nodes pull the image (the stage's pull-through cache); None: config's repository.
    image_repository: pulumi.Input[str] | None = None
    tolerations: Sequence[Mapping[str, str]] = ()
    # The LB controller release (TargetGroupBinding CRDs) and the monitoring CRDs.
    depends_on: Sequence[pulumi.Resource] = ()
    # The ALB's ws.<domain> target group (edge.signalingEntry cdn), see nlb_target_group_arn.
    alb_target_group_arn: pulumi.Input[str] | None = None
    # Appended to the ALB binding's name (AppsArgs.alb_binding_suffix).
    alb_binding_suffix: str = ""


def release_values(args: SignalingArgs) -> dict[str, Any]:
    """The chart values: config and other components' outputs, no secret material."""
    cfg = args.config
    redis_cidrs, redis_port = args.redis_egress or ([args.vpc_cidr], args.ctx.ports.redis)
    repository = args.image_repository if args.image_repository is not None else cfg.image.repository
    image: dict[str, Any] = {"repository": repository, "tag": cfg.image.tag, "digest": cfg.image.digest or ""}
    return {
        "image": image,
        "autoscaling": {
            "enabled": True,
            "minReplicas": cfg.replicas.min,
            "maxReplicas": cfg.replicas.max,
            "targetCPUUtilizationPercentage": cfg.target_cpu_percent,
            "targetConnectionsPerPod": cfg.connections_per_pod,
            "connectionsMetricEnabled": cfg.connections_metric,
        },
        "ports": {"websocket": args.ctx.ports.signaling_http, "metrics": args.ctx.ports.signaling_metrics},
        "terminationGracePeriodSeconds": cfg.termination_grace_seconds,
        "preStopSleepSeconds": cfg.pre_stop_sleep_seconds,
        "existingSecrets": {
            "redis": {"name": REDIS_SECRET, "key": REDIS_SECRET_KEY},
            "turn": {"name": TURN_SECRET, "key": TURN_SECRET_KEY},
        },
        "turn": {"uris": args.turn_uris},
        "nodeSelector": dict(args.node_selector),
        "tolerations": [dict(t) for t in args.tolerations],
        "networkPolicy": {
            "enabled": True,
            "loadBalancerCidrs": list(args.lb_subnet_cidrs),
            "redis": redis_egress_values(redis_cidrs, redis_port),
            "turn": {"cidrs": [args.vpc_cidr], "ports": list(args.ctx.ports.turn_client_ports)},
        },
        "targetGroupBindings": {
            # The ALB's host target groups serve the apps; this release binds only the ws.<domain> one.
            "alb": {"targetGroupArn": args.alb_target_group_arn or ""}
            | ({"nameSuffix": args.alb_binding_suffix} if args.alb_target_group_arn is not None and args.alb_binding_suffix else {}),
            "nlb": {"targetGroupArn": args.nlb_target_group_arn or ""},
        },
        "monitoring": {
            "serviceMonitor": {"enabled": cfg.monitoring},
            "prometheusRule": {"enabled": cfg.monitoring},
            "dashboard": {"enabled": cfg.monitoring},
        },
    }


class Signaling(pulumi.ComponentResource):
    """Namespace + Secrets + the `charts/signaling` release. Exposes `.namespace`,
    `.release`, `.redis_secret`, `.turn_secret`."""

    def __init__(self, name: str, args: SignalingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:signaling:Signaling", name, None, opts)
        cfg = args.config
        stage = args.ctx.stage
        labels = part_of_labels(stage)
        self.namespace = stage_namespace(
            f"{stage}-signaling-ns",
            name=cfg.namespace,
            stage=stage,
            labels={
                # The chart's pods meet the restricted Pod Security Standard; enforce it.
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                # The LB controller injects target-health readiness gates: a rollout waits
                # until new pods are healthy in the target groups before old ones stop.
                "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
            },
            parent=self,
            provider=args.k8s_provider,
        )
        ns = self.namespace.metadata.name
        secret_opts = pulumi.ResourceOptions(
            parent=self.namespace,
            provider=args.k8s_provider,
            additional_secret_outputs=["data", "stringData"],
            # Fixed names (the chart refers to them): replace by delete-then-create.
            delete_before_replace=True,
        )
        self.redis_secret, self.turn_secret = (
            core.Secret(
                f"{stage}-signaling-{label}",
                metadata={"name": name, "namespace": ns, "labels": labels},
                type="Opaque",
                string_data={key: pulumi.Output.secret(value)},
                opts=secret_opts,
            )
            for label, name, key, value in (
                ("redis", REDIS_SECRET, REDIS_SECRET_KEY, args.redis_url),
                ("turn", TURN_SECRET, TURN_SECRET_KEY, args.turn_shared_secret),
            )
        )

        self.values = release_values(args)
        self.release = helm_release(
            f"{stage}-signaling",
            name=RELEASE_NAME,
            chart=CHART_PATH,
            namespace=ns,
            values=self.values,
            timeout=cfg.release_timeout_seconds,
            max_history=10,
            create_namespace=False,
            parent=self,
            provider=args.k8s_provider,
            depends_on=[self.redis_secret, self.turn_secret, *args.depends_on],
        )

        self.register_outputs({"namespace": ns, "releaseName": self.release.name, "releaseStatus": self.release.status})
