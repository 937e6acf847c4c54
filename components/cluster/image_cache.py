"""ECR pull-through cache of ghcr.io for the stage: nodes pull the apps' and signaling's images
in-region, and a GHCR outage or rate limit does not stop a scale-out of an image pulled once.

- The upstream credentials live in Secrets Manager under `ecr-pullthroughcache/` (AWS requires
  the prefix for a pull-through cache credential). Pulumi writes them when the stack holds the
  secret `voip-infra:ghcrToken`; otherwise the secret is created empty and filled once with
  `aws secretsmanager put-secret-value` (`pulumi up` never overwrites it then).
- The rule's repository prefix carries the stage (`ghcr-<stage>`): rules are per registry, and
  stages of one account (clones) must not collide.
- A repository creation template gives the cached repositories scan-on-push and a lifecycle
  that drops images not pulled for 90 days.
- `cached_repository()` maps `ghcr.io/<owner>/<image>` to `<account>.dkr.ecr.<region>.amazonaws.com/ghcr-<stage>/<owner>/<image>`;
  the node role may create and import only under that prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import DeliveryConfig
from components.context import StageContext
from components.iam import allow, policy_document

UPSTREAM = "ghcr.io"
SECRET_PREFIX = "ecr-pullthroughcache/"
UNUSED_DAYS = 90


def cache_prefix(stage: str) -> str:
    return f"ghcr-{stage}"


def cached_repository(repository: str, account_id: str, region: str, stage: str) -> str:
    """The ECR address of a ghcr.io repository through this stage's cache; others unchanged."""
    host, _, path = repository.partition("/")
    if host != UPSTREAM:
        return repository
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com/{cache_prefix(stage)}/{path}"


def node_pull_policy(account_id: str, region: str, stage: str) -> str:
    """What a node needs beyond AmazonEC2ContainerRegistryPullOnly to pull through the cache:
    create the cached repository on first pull and import the upstream image, under the prefix only."""
    return policy_document(
        [
            allow(
                "PullThroughCache",
                ["ecr:CreateRepository", "ecr:BatchImportUpstreamImage"],
                f"arn:aws:ecr:{region}:{account_id}:repository/{cache_prefix(stage)}/*",
            )
        ]
    )


@dataclass
class ImageCacheArgs:
    ctx: StageContext
    config: DeliveryConfig
    # secret Output, or None: the operator fills the secret once (see the module docstring).
    ghcr_token: pulumi.Input[str] | None
    # The EKS node role: it pulls, so it creates the cached repositories and imports images.
    node_role_name: pulumi.Input[str]


class ImageCache(pulumi.ComponentResource):
    """Secret + pull-through cache rule + repository creation template + the node role's pull
    rights under the prefix. Exposes `.prefix`, `.rule`, `.node_policy`, `.credential_secret_arn`."""

    def __init__(self, name: str, args: ImageCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("voip:delivery:ImageCache", name, None, opts)
        ctx = args.ctx
        stage = ctx.stage
        child = pulumi.ResourceOptions(parent=self)
        self.prefix = cache_prefix(stage)
        self.credential_secret = aws.secretsmanager.Secret(
            f"{stage}-ghcr-credentials",
            name=f"{SECRET_PREFIX}{stage}-ghcr",
            description=f"{stage}: GitHub user + read:packages token the ECR pull-through cache uses for ghcr.io",
            recovery_window_in_days=30 if ctx.protect else 0,  # the stage convention: 30 days where data lives, else none
            # The AWS-managed key on purpose: ECR reads the secret through its service-linked role
            # (AWSServiceRoleForECRPullThroughCache), whose policy grants secretsmanager:GetSecretValue
            # on ecr-pullthroughcache/* and no kms:Decrypt on a customer key.
            opts=child,
        )
        deps = []
        if args.ghcr_token is not None:
            # The document ECR reads: {"username": ..., "accessToken": ...}.
            document = pulumi.Output.secret(args.ghcr_token).apply(
                lambda token: json.dumps({"username": args.config.ghcr_username, "accessToken": token})
            )
            deps.append(
                aws.secretsmanager.SecretVersion(
                    f"{stage}-ghcr-credentials-version",
                    secret_id=self.credential_secret.id,
                    secret_string=document,
                    opts=pulumi.ResourceOptions(parent=self.credential_secret, additional_secret_outputs=["secretString"]),
                )
            )
        self.rule = aws.ecr.PullThroughCacheRule(
            f"{stage}-ghcr-cache",
            ecr_repository_prefix=self.prefix,
            upstream_registry_url=UPSTREAM,
            credential_arn=self.credential_secret.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps),
        )
        self.template = aws.ecr.RepositoryCreationTemplate(
            f"{stage}-ghcr-cache-template",
            prefix=self.prefix,
            description=f"{stage}: repositories the ghcr.io pull-through cache creates",
            applied_fors=["PULL_THROUGH_CACHE"],
            image_tag_mutability="MUTABLE",  # the cache follows the upstream tag; pods pull by digest
            encryption_configurations=[{"encryption_type": "AES256"}],
            lifecycle_policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"drop cached images not pulled for {UNUSED_DAYS} days",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "sinceImagePulled",
                                "countUnit": "days",
                                "countNumber": UNUSED_DAYS,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        self.node_policy = aws.iam.RolePolicy(
            f"{stage}-eks-node-ghcr-cache",
            role=args.node_role_name,
            policy=pulumi.Output.from_input(ctx.account_id).apply(lambda acct: node_pull_policy(acct, ctx.region, stage)),
            opts=child,
        )
        self.credential_secret_arn = self.credential_secret.arn
        self.register_outputs({"prefix": self.prefix, "credentialSecretArn": self.credential_secret.arn, "rule": self.rule.id})
