"""EKS Pod Identity: the one trust policy every pod role of the stage uses (the LB
controller, the EBS CSI driver, the Cluster Autoscaler, Alertmanager)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_trust(account_id: str, cluster_arn: str, namespace: str, service_account: str) -> str:
    """Only `namespace/service_account` of this cluster may assume the role. EKS Pod Identity
    tags the session with eks-cluster-arn, kubernetes-namespace and kubernetes-service-account;
    the cluster ARN (not its name) also pins the account and the region."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {
                        "StringEquals": {
                            "aws:SourceAccount": account_id,
                            "aws:RequestTag/eks-cluster-arn": cluster_arn,
                            "aws:RequestTag/kubernetes-namespace": namespace,
                            "aws:RequestTag/kubernetes-service-account": service_account,
                        }
                    },
                }
            ],
        }
    )


def pod_identity_trust_output(
    account_id: pulumi.Input[str], cluster_arn: pulumi.Input[str], namespace: str, service_account: str
) -> pulumi.Output[str]:
    """`pod_identity_trust` over Inputs (the account id and cluster ARN are Outputs)."""
    return pulumi.Output.all(account_id, cluster_arn).apply(lambda a: pod_identity_trust(a[0], a[1], namespace, service_account))


@dataclass
class PodIdentityRole:
    """A role that one service account of the cluster assumes through EKS Pod Identity."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    association: aws.eks.PodIdentityAssociation


def pod_identity_role(
    prefix: str,
    *,
    description: str,
    account_id: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    cluster_arn: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy: pulumi.Input[str],
    parent: pulumi.Resource,
    pod_identity_agent: pulumi.Resource | None = None,
) -> PodIdentityRole:
    """`<prefix>-role` trusted by `namespace/service_account` only, its inline `<prefix>-policy`,
    and `<prefix>-pod-identity` binding them (after the pod identity agent add-on: the agent
    injects credentials at pod creation). Policy and association hang off the role."""
    role = aws.iam.Role(
        f"{prefix}-role",
        description=description,
        assume_role_policy=pod_identity_trust_output(account_id, cluster_arn, namespace, service_account),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    inline = aws.iam.RolePolicy(f"{prefix}-policy", role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=role))
    association = aws.eks.PodIdentityAssociation(
        f"{prefix}-pod-identity",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions(parent=role, depends_on=[pod_identity_agent] if pod_identity_agent is not None else []),
    )
    return PodIdentityRole(role, inline, association)
