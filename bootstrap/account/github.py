"""GitHub Actions' way into the account: the OIDC provider, per stage a preview role (pull
requests of this repository only, read-only) and a deploy role (the stage's GitHub environment
only), and the CodeConnections connection the stages' CodeBuild-hosted runners use."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from account.state import STATE_PREFIX
from components.iam import policy_document

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
MAIN_PROJECT = "voip-infra"
# A first `pulumi up` of production runs ~45 minutes (tools plan: first_up_minutes); the
# workflows ask for this much (role-duration-seconds) and the role must allow it.
DEPLOY_SESSION_SECONDS = 3 * 3600


def preview_subject(repository: str) -> str:
    # The `sub` of a job run for a pull_request event (no environment on the job).
    return f"repo:{repository}:pull_request"


def deploy_subject(repository: str, stage: str) -> str:
    # The `sub` of a job that names `environment: <stage>`: GitHub's environment protection
    # rules (reviewers, branches) decide who gets it.
    return f"repo:{repository}:environment:{stage}"


def trust_policy(provider_arn: str, subject: str) -> str:
    """Exactly one audience and one subject, both StringEquals: no wildcard can widen it."""
    return policy_document(
        [
            {
                "Sid": "GithubActionsOidc",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subject,
                    }
                },
            }
        ]
    )


# The `review` stage's roles serve the review stacks of pull requests: stacks pr-<number>.
REVIEW_STAGE, REVIEW_STACKS = "review", "pr-*"
REVIEW_FILES = "review-stacks"


def stack_glob(stage: str) -> str:
    """The stacks a stage's CI roles may lock and write: its own, or every review stack."""
    return REVIEW_STACKS if stage == REVIEW_STAGE else stage


def state_statements(
    bucket_arn: str, region: str, stage: str, state_key_arn: str, secrets_key_arn: str, *, write_state: bool
) -> list[dict]:
    """Read the backend's files; write the stage's lock (preview) and also its stack, history
    and backups (deploy); decrypt the stage's secrets (awskms://), and only that stage's."""
    stacks = stack_glob(stage)
    stage_paths = [f"{bucket_arn}/{STATE_PREFIX}/locks/{MAIN_PROJECT}/{stacks}/*"]
    if write_state:
        stage_paths += [
            # <stack>.json (the checkpoint), .json.gz, .pulumi-tags (stack tags: the reaper's voip:expires)
            f"{bucket_arn}/{STATE_PREFIX}/stacks/{MAIN_PROJECT}/{stacks}.*",
            f"{bucket_arn}/{STATE_PREFIX}/history/{MAIN_PROJECT}/{stacks}/*",
            f"{bucket_arn}/{STATE_PREFIX}/backups/{MAIN_PROJECT}/{stacks}/*",
        ]
    secrets_actions = ["kms:Decrypt", "kms:DescribeKey"] + (["kms:Encrypt", "kms:GenerateDataKey"] if write_state else [])
    read_paths = [f"{bucket_arn}/{STATE_PREFIX}/*"]
    if stage == REVIEW_STAGE:
        # Review stacks' files (made in the workflow, never committed) kept for their tear-down.
        read_paths.append(f"{bucket_arn}/{REVIEW_FILES}/{REVIEW_STACKS}")
        if write_state:
            stage_paths.append(f"{bucket_arn}/{REVIEW_FILES}/{REVIEW_STACKS}")
    return [
        {"Sid": "ListState", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn},
        {"Sid": "ReadState", "Effect": "Allow", "Action": "s3:GetObject", "Resource": read_paths if len(read_paths) > 1 else read_paths[0]},
        {"Sid": "WriteStageState", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": stage_paths},
        {
            # The bucket's SSE-KMS key, only through S3.
            "Sid": "StateBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": state_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
        {"Sid": "StageSecrets", "Effect": "Allow", "Action": secrets_actions, "Resource": secrets_key_arn},
    ]


def guard_statement(account_id: str, region: str, bucket_arn: str, protected_key_arns: list[str]) -> dict:
    """What the deploy roles (AdministratorAccess for the program's ~280 resources of every
    kind) must never do: weaken the state bucket, the keys, the CI identities or the audit
    trail this project stands on."""
    return {
        "Sid": "NeverTouchTheBootstrap",
        "Effect": "Deny",
        "Action": [
            "s3:DeleteBucket",
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
            "s3:PutBucketVersioning",
            "s3:PutLifecycleConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:PutBucketPublicAccessBlock",
            "s3:PutBucketObjectLockConfiguration",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKey",
            "kms:PutKeyPolicy",
            "iam:CreateOpenIDConnectProvider",
            "iam:DeleteOpenIDConnectProvider",
            "iam:UpdateOpenIDConnectProviderThumbprint",
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:DeleteRole",
            "iam:PutRolePermissionsBoundary",
            "cloudtrail:StopLogging",
            "cloudtrail:DeleteTrail",
            "cloudtrail:UpdateTrail",
            "cloudtrail:PutEventSelectors",
            "guardduty:DeleteDetector",
            "guardduty:UpdateDetector",
            "securityhub:DisableSecurityHub",
            "securityhub:BatchDisableStandards",
            "access-analyzer:DeleteAnalyzer",
            "config:StopConfigurationRecorder",
            "config:DeleteConfigurationRecorder",
            "config:DeleteDeliveryChannel",
        ],
        "Resource": [
            bucket_arn,
            f"arn:aws:s3:::voip-audit-{account_id}-{region}",
            *protected_key_arns,
            f"arn:aws:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}",
            f"arn:aws:iam::{account_id}:role/{CI_ROLE_PATH.strip('/')}/*",
            f"arn:aws:cloudtrail:{region}:{account_id}:trail/*",
            f"arn:aws:guardduty:{region}:{account_id}:detector/*",
            f"arn:aws:securityhub:{region}:{account_id}:hub/default",
            f"arn:aws:access-analyzer:{region}:{account_id}:analyzer/*",
            "arn:aws:config:*:*:*",
        ],
    }


def other_stages_statement(bucket_arn: str, stage: str, stages: list[str], other_key_arns: list[str]) -> dict:
    """AdministratorAccess could use every key and object of the account: a deploy role must not
    touch another stage's state nor decrypt its secrets."""
    paths = [
        f"{bucket_arn}/{STATE_PREFIX}/{kind}/{MAIN_PROJECT}/{stack_glob(other)}{sep}"
        for other in stages
        if other != stage
        for kind, sep in (("stacks", ".*"), ("locks", "/*"), ("history", "/*"), ("backups", "/*"))
    ]
    return {
        "Sid": "NeverTheOtherStages",
        "Effect": "Deny",
        "Action": [
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:GetObject",
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:ReEncrypt*",
        ],
        "Resource": [*paths, *other_key_arns],
    }


CI_ROLE_PATH = "/voip-ci/"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"


@dataclass
class GithubCiArgs:
    account_id: str
    region: str
    repository: str
    stages: list[str]
    create_oidc_provider: bool
    codebuild_connection: bool
    state_bucket_arn: pulumi.Input[str]
    state_key_arn: pulumi.Input[str]
    secrets_key_arns: dict[str, pulumi.Input[str]]
    # Keys the deploy roles may not disable or delete (state, secrets, audit).
    guarded_key_arns: list[pulumi.Input[str]]


class GithubCi(pulumi.ComponentResource):
    """Attributes: `provider_arn`, `preview_roles` and `deploy_roles` (stage -> aws.iam.Role),
    `connection` (the CodeConnections connection, or None)."""

    def __init__(self, name: str, args: GithubCiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:bootstrap:GithubCi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.create_oidc_provider:
            provider = aws.iam.OpenIdConnectProvider(
                "github-oidc",
                url=f"https://{GITHUB_OIDC_HOST}",
                client_id_lists=[AUDIENCE],
                # No thumbprint: IAM validates GitHub's certificate against its own trusted CAs.
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
            self.provider_arn: pulumi.Output[str] = provider.arn
        else:
            self.provider_arn = pulumi.Output.from_input(f"arn:aws:iam::{args.account_id}:oidc-provider/{GITHUB_OIDC_HOST}")

        self.connection = None
        if args.codebuild_connection:
            # Created PENDING: someone with GitHub org admin approves it once in the console
            # (Developer Tools > Settings > Connections > "Update pending connection").
            self.connection = aws.codeconnections.Connection("github", name="voip-infra-github", provider_type="GitHub", opts=child)
            # CodeBuild reaches GitHub (runner webhooks, checkouts) through the connection.
            aws.codebuild.SourceCredential(
                "github-source-credential", auth_type="CODECONNECTIONS", server_type="GITHUB", token=self.connection.arn, opts=child
            )

        self.preview_roles: dict[str, aws.iam.Role] = {}
        self.deploy_roles: dict[str, aws.iam.Role] = {}
        guard = pulumi.Output.all(args.state_bucket_arn, *args.guarded_key_arns).apply(
            lambda a: guard_statement(args.account_id, args.region, a[0], list(a[1:]))
        )
        for stage in args.stages:
            preview = self._role(
                args,
                stage,
                "preview",
                f"pulumi preview from pull requests of {args.repository} (read-only)",
                preview_subject(args.repository),
                READ_ONLY,
                self._policy(args, stage, write_state=False),
            )
            deploy = self._role(
                args,
                stage,
                "deploy",
                f"pulumi up from {args.repository}, GitHub environment {stage} only",
                deploy_subject(args.repository, stage),
                ADMINISTRATOR,
                self._policy(args, stage, write_state=True, extra=guard),
                max_session_duration=DEPLOY_SESSION_SECONDS,
            )
            self.preview_roles[stage] = preview
            self.deploy_roles[stage] = deploy

        self.register_outputs(
            {
                "oidcProviderArn": self.provider_arn,
                "previewRoleArns": {s: r.arn for s, r in self.preview_roles.items()},
                "deployRoleArns": {s: r.arn for s, r in self.deploy_roles.items()},
            }
        )

    def _role(
        self,
        args: GithubCiArgs,
        stage: str,
        kind: str,
        what: str,
        subject: str,
        managed_policy: str,
        policy: pulumi.Output[str],
        **role_args: object,
    ) -> aws.iam.Role:
        """voip-ci/voip-infra-<stage>-<kind>: trusted for `subject` only, `managed_policy` plus
        the stage's state/key policy (`<stage>-<kind>-state`)."""
        role = aws.iam.Role(
            f"{stage}-{kind}",
            name=f"voip-infra-{stage}-{kind}",
            path=CI_ROLE_PATH,
            description=f"voip-infra {stage}: {what}",
            assume_role_policy=self.provider_arn.apply(lambda arn: trust_policy(arn, subject)),
            opts=pulumi.ResourceOptions(parent=self),
            **role_args,  # type: ignore[arg-type]
        )
        attachment = {"preview": "read-only", "deploy": "admin"}[kind]
        aws.iam.RolePolicyAttachment(
            f"{stage}-{kind}-{attachment}", role=role.name, policy_arn=managed_policy, opts=pulumi.ResourceOptions(parent=role)
        )
        aws.iam.RolePolicy(f"{stage}-{kind}-state", role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=role))
        return role

    @staticmethod
    def _policy(args: GithubCiArgs, stage: str, *, write_state: bool, extra: pulumi.Output | None = None) -> pulumi.Output[str]:
        others = [arn for s, arn in args.secrets_key_arns.items() if s != stage]
        return pulumi.Output.all(args.state_bucket_arn, args.state_key_arn, args.secrets_key_arns[stage], extra, *others).apply(
            lambda a: policy_document(
                [
                    *state_statements(a[0], args.region, stage, a[1], a[2], write_state=write_state),
                    # Both roles: ReadOnlyAccess / AdministratorAccess reach every stage otherwise.
                    other_stages_statement(a[0], stage, args.stages, list(a[4:])),
                    *([a[3]] if a[3] else []),
                ]
            )
        )
