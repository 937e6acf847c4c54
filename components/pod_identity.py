"""EKS Pod Identity: the one trust policy every pod role of the stage uses (the LB
controller, the EBS CSI driver, the Cluster Autoscaler, Alertmanager)."""

from __future__ import annotations

import json

import pulumi

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
