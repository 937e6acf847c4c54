"""The roles people assume to reach a stage's cluster (voip-infra cluster.access admins/viewers
name them): they exist before any stage, so a stage's first `pulumi up` can pin them."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.iam import policy_document

PEOPLE_PATH = "/voip-people/"
ROLES = {
    # name -> (managed policy, what for)
    "voip-platform-admin": ("arn:aws:iam::aws:policy/AdministratorAccess", "cluster admin of every stage (break-glass when CI is down)"),
    "voip-platform-viewer": ("arn:aws:iam::aws:policy/ReadOnlyAccess", "read-only: AWS console and the clusters (no Secrets)"),
}


def people_trust(account_id: str) -> str:
    """The account's IAM decides who may assume (users' or SSO permission sets' sts:AssumeRole)."""
    return policy_document(
        [
            {
                "Sid": "ThisAccountDelegates",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ]
    )


class PeopleRoles(pulumi.ComponentResource):
    def __init__(self, name: str, account_id: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:bootstrap:PeopleRoles", name, None, opts)
        self.roles: dict[str, aws.iam.Role] = {}
        for role_name, (policy, what) in ROLES.items():
            role = aws.iam.Role(
                role_name,
                name=role_name,
                path=PEOPLE_PATH,
                description=f"voip-infra people: {what}",
                assume_role_policy=people_trust(account_id),
                max_session_duration=3600,
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.iam.RolePolicyAttachment(f"{role_name}-policy", role=role.name, policy_arn=policy, opts=pulumi.ResourceOptions(parent=role))
            self.roles[role_name] = role
        self.register_outputs({"roleArns": {n: r.arn for n, r in self.roles.items()}})
