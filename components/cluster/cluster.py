"""The stage's EKS cluster: control plane, IAM, KMS, logs, access entries, Graviton
managed node groups with launch templates, add-ons, pod identity, the AWS Load
Balancer Controller and the Kubernetes provider every in-cluster resource uses.

Raw `pulumi_aws` resources only (no remote component packages), so every child is
visible to tests and policies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_kubernetes.provider import Provider as K8sProvider

from components.cloudwatch import log_group
from components.cluster.pod_identity import ClusterAccess, PodRoles
from components.cluster.releases import helm_release
from components.config import ClusterConfig, NodeGroupConfig
from components.context import StageContext
from components.data.keys import account_administers_statement, logs_statement
from components.iam import allow, policy_document, service_trust

# Graviton, Amazon Linux 2023 (EKS picks the AMI matching the node group's version).
AMI_TYPE = "AL2023_ARM_64_STANDARD"
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
POOL_LABEL = "voip.example.com/pool"
SIGNALING_TAINT_KEY = "voip.example.com/dedicated"
LB_CONTROLLER_NAMESPACE = "kube-system"
LB_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
LB_CONTROLLER_REPO = "https://aws.github.io/eks-charts"
PROMETHEUS_CRDS_REPO = "https://prometheus-community.github.io/helm-charts"
METRICS_SERVER_REPO = "https://kubernetes-sigs.github.io/metrics-server/"
AWS_MANAGED = "arn:aws:iam::aws:policy"


@dataclass
class ClusterArgs:
    ctx: StageContext
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    # Private subnets: control-plane ENIs and every node live here.
    subnet_ids: Sequence[pulumi.Input[str]] | pulumi.Input[Sequence[pulumi.Input[str]]]
    config: ClusterConfig
    # The ALB and NLB security groups: admitted to the pods' ports on the node SG.
    lb_security_group_ids: Sequence[pulumi.Input[str]]
    # Node (and pod) egress beyond the VPC and HTTPS: (port, CIDR, why) over TCP. The migration's
    # dual run adds the NAS Redis here (inline: the group's rules are all inline).
    extra_node_egress: Sequence[tuple[int, str, str]] = ()


class Cluster(pulumi.ComponentResource):
    """EKS control plane + node groups + add-ons + LB controller + k8s provider.

    Exposes `.name`, `.endpoint`, `.arn`, `.node_security_group_id` (the SG every node
    and pod ENI carries; the data tier admits its ports from it), `.cluster_security_group_id`,
    `.k8s_provider`, `.lb_controller`, `.monitoring_crds`, `.metrics_server`, `.oidc_issuer`,
    `.signaling_node_selector` / `.signaling_tolerations` (where signaling pods land),
    `.api_node_selector` / `.api_tolerations` (where the apps land: the API pool, or the signaling
    pool where apiNodes is null), `.node_groups` (the groups that exist).
    """

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:cluster:Cluster", name, None, opts)
        self.args = args
        cfg = args.config
        stage = args.ctx.stage
        self.cluster_name = f"{stage}-eks"
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.ctx.protect)

        # ------------------------------------------------------------- KMS + logs
        log_group_name = f"/aws/eks/{self.cluster_name}/cluster"
        self.kms_key = aws.kms.Key(
            f"{stage}-eks-key",
            description=f"{self.cluster_name}: envelope encryption of Kubernetes Secrets and control-plane logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args.ctx.account_id).apply(lambda acct: _key_policy(acct, args.ctx.region, log_group_name)),
            opts=protected,
        )
        aws.kms.Alias(
            f"{stage}-eks-key-alias",
            name=f"alias/{self.cluster_name}",
            target_key_id=self.kms_key.key_id,
            opts=pulumi.ResourceOptions(parent=self.kms_key, protect=False),
        )
        # EKS writes to exactly this name; created first so retention and encryption apply.
        self.log_group = log_group(f"{stage}-eks-control-plane-logs", log_group_name, cfg.log_retention_days, self.kms_key.arn, protected)

        # ------------------------------------------------------------- cluster IAM
        self.cluster_role = aws.iam.Role(
            f"{stage}-eks-cluster-role",
            description=f"{self.cluster_name} control plane",
            assume_role_policy=service_trust("eks.amazonaws.com", args.ctx.account_id, tag_session=True),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{stage}-eks-cluster-policy",
            role=self.cluster_role.name,
            policy_arn=f"{AWS_MANAGED}/AmazonEKSClusterPolicy",
            opts=pulumi.ResourceOptions(parent=self.cluster_role),
        )
        # Envelope encryption: the control plane uses the key through its role.
        cluster_kms = aws.iam.RolePolicy(
            f"{stage}-eks-cluster-kms",
            role=self.cluster_role.id,
            policy=self.kms_key.arn.apply(
                lambda arn: policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                            "Resource": arn,
                        }
                    ]
                )
            ),
            opts=pulumi.ResourceOptions(parent=self.cluster_role),
        )

        # ------------------------------------------------------------- control plane
        public = [str(c) for c in cfg.public_access_cidrs]
        self.cluster = aws.eks.Cluster(
            f"{stage}-eks",
            name=self.cluster_name,
            version=cfg.version,
            role_arn=self.cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids,
                endpoint_private_access=True,
                # Empty list: private endpoint only (reach it over VPN / from the VPC).
                endpoint_public_access=bool(public),
                public_access_cidrs=public or None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The identity running `pulumi up` installs the Helm releases below; the
                # admins of the stage get explicit access entries.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.kms_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            # Managed add-ons only (below, versions pinned): no unmanaged copies to fight.
            bootstrap_self_managed_addons=False,
            # Standard support only: extended support costs 6x the control-plane price.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(ip_family="ipv4"),
            deletion_protection=args.ctx.protect,
            tags={"Name": self.cluster_name},
            opts=pulumi.ResourceOptions(parent=self, protect=args.ctx.protect, depends_on=[self.log_group, cluster_policy, cluster_kms]),
        )
        self.name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.arn = self.cluster.arn
        self.cluster_security_group_id = self.cluster.vpc_config.cluster_security_group_id
        self.oidc_issuer = self.cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer if ids and ids[0].oidcs else None)

        # People and CI through access entries (authenticationMode API, nothing in aws-auth).
        # Not protected (the cluster's protect would pass down): entries change with the team.
        access_grants = self._access_entries(stage, cfg, args.ctx.account_id, pulumi.ResourceOptions(parent=self.cluster, protect=False))

        # ------------------------------------------------------------- node networking
        self.node_security_group = self._node_security_group(stage, args)
        self.node_security_group_id = self.node_security_group.id

        # ------------------------------------------------------------- add-ons before nodes
        # Nodes cannot become Ready without the CNI and kube-proxy; pod identity must run
        # before any pod asks for credentials.
        versions = cfg.addons
        self.addons: dict[str, aws.eks.Addon] = {}
        for addon, version, config in (
            # The VPC CNI enforces the NetworkPolicy objects (the signaling chart has one).
            ("vpc-cni", versions.vpc_cni, {"enableNetworkPolicy": "true"}),
            ("kube-proxy", versions.kube_proxy, None),
            ("eks-pod-identity-agent", versions.eks_pod_identity_agent, None),
        ):
            self.addons[addon] = self._addon(stage, addon, version, config, [])

        # ------------------------------------------------------------- node groups
        self.node_role = aws.iam.Role(
            f"{stage}-eks-node-role",
            description=f"{self.cluster_name} managed node groups",
            assume_role_policy=service_trust("ec2.amazonaws.com"),
            opts=child,
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{stage}-eks-node-{policy}",
                role=self.node_role.name,
                policy_arn=f"{AWS_MANAGED}/{policy}",
                opts=pulumi.ResourceOptions(parent=self.node_role),
            )
            # The CNI policy stays on the node role so nodes can bootstrap networking
            # before pod identity runs; hop limit 1 keeps it away from ordinary pods.
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy")
        ]

        self.signaling_node_selector = {POOL_LABEL: "signaling"}
        self.signaling_tolerations = [{"key": SIGNALING_TAINT_KEY, "operator": "Equal", "value": "signaling", "effect": "NoSchedule"}]
        node_deps = [*node_policies, *self.addons.values()]
        self.system_nodes = self._node_group(stage, "system", cfg.system_nodes, args, node_deps, taint=False)
        self.signaling_nodes = self._node_group(stage, "signaling", cfg.signaling_nodes, args, node_deps, taint=True)
        self.node_groups = [self.system_nodes, self.signaling_nodes]
        # The Spring apps' pool, tainted for them (SPOT allowed where data is not protected); without
        # one (apiNodes: null, data-free stages only) the apps share the signaling nodes.
        self.api_nodes: aws.eks.NodeGroup | None = None
        self.api_node_selector, self.api_tolerations = self.signaling_node_selector, self.signaling_tolerations
        if cfg.api_nodes is not None:
            self.api_node_selector = {POOL_LABEL: "api"}
            self.api_tolerations = [{"key": SIGNALING_TAINT_KEY, "operator": "Equal", "value": "api", "effect": "NoSchedule"}]
            self.api_nodes = self._node_group(stage, "api", cfg.api_nodes, args, node_deps, taint=True)
            self.node_groups.append(self.api_nodes)

        # CoreDNS needs nodes to schedule on; creating it earlier leaves it DEGRADED.
        self.addons["coredns"] = self._addon(stage, "coredns", versions.coredns, None, self.node_groups)

        # ------------------------------------------------------------- k8s provider
        self.kubeconfig = pulumi.Output.all(self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority).apply(
            lambda a: _kubeconfig(a[0], a[1], a[2]["data"] if isinstance(a[2], dict) else a[2].data, args.ctx.region)
        )
        self.k8s_provider = K8sProvider(
            f"{stage}-k8s",
            kubeconfig=self.kubeconfig,
            # Fail loudly rather than diffing against an unreachable cluster.
            delete_unreachable=False,
            # Whoever runs `up` (the CI deploy role unless it created the cluster) needs its entry first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster, *access_grants]),
        )

        # ------------------------------------------------------------- LB controller
        # Least privilege for what the controller does here: bind pods to the stage's target
        # groups. It may read ELB/EC2 state and (de)register targets in target groups tagged
        # with this stage; it may not create or change load balancers.
        # What the components running on the cluster need of it.
        self.access = ClusterAccess(self.cluster.name, self.cluster.arn, self.k8s_provider, self.addons["eks-pod-identity-agent"])
        lb_identity = PodRoles(args.ctx.account_id, self.access, LB_CONTROLLER_NAMESPACE, parent=self).role(
            f"{stage}-lb-controller",
            LB_CONTROLLER_SERVICE_ACCOUNT,
            description=f"{self.cluster_name}: AWS Load Balancer Controller (pod identity)",
            policy=pulumi.Output.from_input(args.ctx.account_id).apply(lambda acct: _lb_controller_policy(acct, args.ctx.region, stage)),
        )
        self.lb_controller_role, pod_identity = lb_identity.role, lb_identity.association
        in_cluster = {"parent": self, "provider": self.k8s_provider}
        self.lb_controller = helm_release(
            f"{stage}-aws-load-balancer-controller",
            chart="aws-load-balancer-controller",
            version=cfg.lb_controller_chart_version,
            repo=LB_CONTROLLER_REPO,
            namespace=LB_CONTROLLER_NAMESPACE,
            values={
                "clusterName": self.cluster.name,
                # Pods cannot reach IMDS (hop limit 1): region and VPC are given, not discovered.
                "region": args.ctx.region,
                "vpcId": args.vpc_id,
                "replicaCount": cfg.lb_controller_replicas,
                "serviceAccount": {"create": True, "name": LB_CONTROLLER_SERVICE_ACCOUNT},
                # Only TargetGroupBindings of Pulumi-owned target groups: no Service
                # type=LoadBalancer takeover, no load balancers created from the cluster.
                "enableServiceMutatorWebhook": False,
                "nodeSelector": {POOL_LABEL: "system"},
                "podDisruptionBudget": {"maxUnavailable": 1},
            },
            timeout=600,
            depends_on=[pod_identity, *self.node_groups, self.addons["coredns"]],
            **in_cluster,
        )

        in_kube_system = {**in_cluster, "namespace": "kube-system"}
        # The monitoring CRDs (ServiceMonitor, PrometheusRule) the signaling chart
        # renders, so its release installs before the monitoring stack exists.
        self.monitoring_crds = helm_release(
            f"{stage}-prometheus-operator-crds",
            chart="prometheus-operator-crds",
            version=cfg.prometheus_crds_chart_version,
            repo=PROMETHEUS_CRDS_REPO,
            depends_on=self.node_groups,
            **in_kube_system,
        )

        # The resource metrics API (metrics.k8s.io) the HPA's CPU target reads: EKS does not
        # install it, and without it the signaling HPA never scales.
        self.metrics_server = helm_release(
            f"{stage}-metrics-server",
            chart="metrics-server",
            version=cfg.metrics_server_chart_version,
            repo=METRICS_SERVER_REPO,
            values={"nodeSelector": {POOL_LABEL: "system"}},
            depends_on=[*self.node_groups, self.addons["coredns"]],
            **in_kube_system,
        )

        self.register_outputs(
            {
                "name": self.cluster.name,
                "endpoint": self.cluster.endpoint,
                "arn": self.cluster.arn,
                "nodeSecurityGroupId": self.node_security_group_id,
                "clusterSecurityGroupId": self.cluster_security_group_id,
                "oidcIssuer": self.oidc_issuer,
                "nodeRoleArn": self.node_role.arn,
            }
        )

    # ------------------------------------------------------------------ helpers

    def _access_entries(
        self, stage: str, cfg: ClusterConfig, account_id: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> list[aws.eks.AccessPolicyAssociation]:
        """One entry per principal, pinned by its exact ARN, with one cluster-scoped access policy."""
        access = cfg.access
        grants: list[tuple[str, str, str]] = [(f"admin-{_slug(r)}", r, ADMIN_POLICY) for r in access.admins]
        grants += [(f"viewer-{_slug(r)}", r, VIEW_POLICY) for r in access.viewers]
        if access.ci_access:
            ci = access.ci_roles or stage
            if access.creator != "ci":  # else EKS made the deploy role admin when it created the cluster
                grants.append(("ci-deploy", ci_role_name(ci, "deploy"), ADMIN_POLICY))
            grants.append(("ci-preview", ci_role_name(ci, "preview"), VIEW_POLICY))
        out = []
        for suffix, ref, policy in grants:
            arn = pulumi.Output.from_input(account_id).apply(lambda acct, ref=ref: role_arn(ref, acct))
            entry = aws.eks.AccessEntry(
                f"{stage}-eks-{suffix}", cluster_name=self.cluster.name, principal_arn=arn, type="STANDARD", opts=opts
            )
            out.append(
                aws.eks.AccessPolicyAssociation(
                    f"{stage}-eks-{suffix}-policy",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=policy,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=pulumi.ResourceOptions(parent=entry, protect=False),
                )
            )
        return out

    def _node_security_group(self, stage: str, args: ClusterArgs) -> aws.ec2.SecurityGroup:
        """The SG of every node (and so of every pod ENI: VPC CNI secondary IPs share it).

        Node <-> control plane and node <-> node traffic rides on the EKS cluster SG,
        which the launch templates attach too; this SG carries what is ours: the load
        balancers into the pods' ports, and it is the source the data tier admits.
        """
        ingress = []
        lb_sgs = list(args.lb_security_group_ids)
        if lb_sgs:
            ports = args.ctx.ports
            for port, what in (
                (ports.signaling_http, "WebSocket and app HTTP"),
                (ports.signaling_metrics, "health checks /ready"),
                (ports.app_management, "health checks of the app Actuator"),
            ):
                ingress.append(
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp", from_port=port, to_port=port, security_groups=lb_sgs, description=f"{what} from the ALB/NLB"
                    )
                )
        # (protocol, port, cidr, why); protocol "-1" with port 0: all traffic.
        egress = [
            ("-1", 0, args.vpc_cidr, "Inside the VPC (Redis, RDS, TURN, endpoints)"),
            ("tcp", 443, "0.0.0.0/0", "HTTPS to AWS APIs and registries via NAT"),
            *(("tcp", port, cidr, why) for port, cidr, why in args.extra_node_egress),
        ]
        return aws.ec2.SecurityGroup(
            f"{stage}-eks-nodes-sg",
            vpc_id=args.vpc_id,
            description=f"{self.cluster_name} nodes and pods",
            ingress=ingress,
            egress=[
                aws.ec2.SecurityGroupEgressArgs(protocol=protocol, from_port=port, to_port=port, cidr_blocks=[cidr], description=why)
                for protocol, port, cidr, why in egress
            ],
            tags={"Name": f"{stage}-eks-nodes", f"kubernetes.io/cluster/{self.cluster_name}": "owned"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _addon(self, stage: str, addon: str, version: str, config: dict | None, deps: list) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{stage}-eks-{addon}",
            cluster_name=self.cluster.name,
            addon_name=addon,
            addon_version=version,
            configuration_values=json.dumps(config) if config else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            # Add-ons are configuration, not data: not protected like the cluster they hang under.
            opts=pulumi.ResourceOptions(parent=self.cluster, protect=False, depends_on=deps),
        )

    def _node_group(self, stage: str, kind: str, ng: NodeGroupConfig, args: ClusterArgs, deps: list, *, taint: bool) -> aws.eks.NodeGroup:
        name = f"{stage}-{kind}"
        lt = aws.ec2.LaunchTemplate(
            f"{name}-nodes-lt",
            name=f"{name}-nodes",
            description=f"{self.cluster_name} {kind} nodes: IMDSv2 only, encrypted gp3 root",
            update_default_version=True,
            # IMDSv2 only, one hop: the node reaches IMDS, containers behind it cannot
            # (pods get AWS credentials through pod identity instead).
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=ng.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            # A launch template that names SGs replaces EKS's default: keep the cluster SG.
            vpc_security_group_ids=[self.cluster_security_group_id, self.node_security_group.id],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=rt, tags={"Name": f"{name}-node", "stage": stage})
                for rt in ("instance", "volume", "network-interface")
            ],
            tags={"Name": f"{name}-nodes"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_group_name=name,
            node_role_arn=self.node_role.arn,
            subnet_ids=args.subnet_ids,
            version=self.cluster.version,
            ami_type=AMI_TYPE,
            capacity_type=ng.capacity_type,
            instance_types=list(ng.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=ng.min_size, desired_size=ng.desired_size, max_size=ng.max_size),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=lt.id, version=lt.latest_version.apply(str)),
            labels={POOL_LABEL: kind},
            taints=[aws.eks.NodeGroupTaintArgs(key=SIGNALING_TAINT_KEY, value=kind, effect="NO_SCHEDULE")] if taint else None,
            tags={"Name": f"{name}-nodes"},
            opts=pulumi.ResourceOptions(
                parent=lt,
                depends_on=deps,
                # An autoscaler (or a human) moves desired size; `pulumi up` must not undo it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )


# ---------------------------------------------------------------------- documents


ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Read-only on every namespace, Secrets excluded.
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
# voip-bootstrap's CI roles (bootstrap/account/github.py): path and names.
CI_ROLE_PATH = "voip-ci"


def ci_role_name(stage: str, kind: str) -> str:
    return f"{CI_ROLE_PATH}/voip-infra-{stage}-{kind}"


def role_arn(ref: str, account_id: str) -> str:
    """A config role reference (ARN, or name with path in the stage's account) as its exact ARN."""
    return ref if ref.startswith("arn:") else f"arn:aws:iam::{account_id}:role/{ref}"


def _slug(ref: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", ref.rsplit("/", 1)[-1].lower())[:40]


def _key_policy(account_id: str, region: str, log_group_name: str) -> str:
    return policy_document(
        [
            account_administers_statement(account_id, sid="AccountAdministers"),
            logs_statement(account_id, region, log_group_name, sid="ControlPlaneLogs"),
        ]
    )


def _lb_controller_policy(account_id: str, region: str, stage: str) -> str:
    return policy_document(
        [
            allow(
                "Discover",
                [
                    "ec2:DescribeAccountAttributes",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInternetGateways",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeTags",
                    "ec2:DescribeVpcs",
                    "elasticloadbalancing:DescribeListenerAttributes",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeLoadBalancerAttributes",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTags",
                    "elasticloadbalancing:DescribeTargetGroupAttributes",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth",
                ],
                "*",
            ),
            # Pulumi owns the target groups; the controller only moves pod IPs in
            # and out of the ones carrying this stage's tag.
            allow(
                "BindStageTargetGroups",
                ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                f"arn:aws:elasticloadbalancing:{region}:{account_id}:targetgroup/*/*",
                StringEquals={"aws:ResourceTag/stage": stage},
            ),
        ]
    )


def _kubeconfig(name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no static token in state)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )
