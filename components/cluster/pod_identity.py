"""EKS Pod Identity: a role (trusted through components/iam.py), its inline policy and the
association, for each pod role of the stage (the LB controller, the Cluster Autoscaler,
Alertmanager)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import pod_identity_trust_output


@dataclass(frozen=True)
class ClusterAccess:
    """What a component running on the cluster needs of it (the cluster tier's output): its
    name and ARN (Pod Identity trust and association), the Kubernetes provider, and the pod
    identity agent add-on (credentials only work once it runs)."""

    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    k8s_provider: pulumi.ProviderResource
    pod_identity_agent: pulumi.Resource | None = None


@dataclass
class PodIdentityRole:
    """A role that one service account of the cluster assumes through EKS Pod Identity."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    association: aws.eks.PodIdentityAssociation


@dataclass(frozen=True)
class PodRoles:
    """Where one component's pod roles live: the account, the cluster, the namespace of its
    service accounts, and the component that parents the roles."""

    account_id: pulumi.Input[str]
    cluster: ClusterAccess
    namespace: str
    parent: pulumi.Resource

    def role(self, prefix: str, service_account: str, *, description: str, policy: pulumi.Input[str]) -> PodIdentityRole:
        """`<prefix>-role` trusted by `namespace/service_account` only, its inline `<prefix>-policy`,
        and `<prefix>-pod-identity` binding them (after the pod identity agent add-on: the agent
        injects credentials at pod creation). Policy and association hang off the role."""
        cluster, namespace = self.cluster, self.namespace
        role = aws.iam.Role(
            f"{prefix}-role",
            description=description,
            assume_role_policy=pod_identity_trust_output(self.account_id, cluster.arn, namespace, service_account),
            opts=pulumi.ResourceOptions(parent=self.parent),
        )
        inline = aws.iam.RolePolicy(f"{prefix}-policy", role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=role))
        association = aws.eks.PodIdentityAssociation(
            f"{prefix}-pod-identity",
            cluster_name=cluster.name,
            namespace=namespace,
            service_account=service_account,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(
                parent=role, depends_on=[cluster.pod_identity_agent] if cluster.pod_identity_agent is not None else []
            ),
        )
        return PodIdentityRole(role, inline, association)
