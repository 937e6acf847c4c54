"""IAM policy documents and their statements. Trust: every role of the stage is assumed by one
AWS service or, through EKS Pod Identity, by one service account of the cluster."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi

POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def policy_document(statements: list) -> str:
    """An IAM policy document (identity, trust, key, bucket or topic policy), version 2012-10-17."""
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def allow(sid: str, actions: str | Sequence[str], resources: str | Sequence[str], **condition: dict) -> dict:
    """One Allow statement, keys in IAM's order. `condition` by operator, e.g.
    `StringEquals={"aws:SourceAccount": account}`."""
    statement: dict = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def log_streams_write(log_group_arn: str) -> dict:
    """Write the streams of one log group (a Lambda's or a build's); Pulumi owns the group."""
    return allow("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group_arn}:*")


def key_via_service(sid: str, actions: str | Sequence[str], key_arn: str, service: str, region: str) -> dict:
    """Use of a KMS key only through `service` (s3, sns, secretsmanager) in `region`."""
    return allow(sid, actions, key_arn, StringEquals={"kms:ViaService": f"{service}.{region}.amazonaws.com"})


def _document(statement: dict) -> str:
    return policy_document([statement])


def service_trust(
    service: pulumi.Input[str], account_id: pulumi.Input[str] | None = None, *, tag_session: bool = False
) -> pulumi.Output[str]:
    """`service` (e.g. vpc-flow-logs.amazonaws.com) may assume the role. With `account_id`,
    only on behalf of this account (aws:SourceAccount, the confused-deputy guard); services
    that assume roles without a source account (EC2 instance profiles) get none."""

    def doc(values: list) -> str:
        principal, account = values
        statement: dict = {
            "Effect": "Allow",
            "Principal": {"Service": principal},
            "Action": ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole",
        }
        if account:
            statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
        return _document(statement)

    return pulumi.Output.all(service, account_id).apply(doc)


def pod_identity_trust(account_id: str, cluster_arn: str, namespace: str, service_account: str) -> str:
    """Only `namespace/service_account` of this cluster may assume the role. EKS Pod Identity
    tags the session with eks-cluster-arn, kubernetes-namespace and kubernetes-service-account;
    the cluster ARN (not its name) also pins the account and the region."""
    return _document(
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
    )


def pod_identity_trust_output(
    account_id: pulumi.Input[str], cluster_arn: pulumi.Input[str], namespace: str, service_account: str
) -> pulumi.Output[str]:
    """`pod_identity_trust` over Inputs (the account id and cluster ARN are Outputs)."""
    return pulumi.Output.all(account_id, cluster_arn).apply(lambda a: pod_identity_trust(a[0], a[1], namespace, service_account))
